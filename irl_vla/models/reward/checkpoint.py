"""Loading a trained reward world model with the builders of the inputs it reads.

A checkpoint of ``irl-vla train stage=rwm`` records, in its ``config.json``: ``model`` (the
``RewardModelConfig``), ``features`` and ``privileged`` (the builders' parameters), and the training settings;
its ``normalization.safetensors`` holds the statistics (``NORMALIZATION_KEYS``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from irl_vla.common.checkpoint import Checkpoint, load_checkpoint
from irl_vla.models.reward.config import REWARD_ARCHITECTURE, reward_config_from_dict
from irl_vla.models.reward.inputs import RewardInputBuilders
from irl_vla.models.reward.model import RewardWorldModel
from irl_vla.training.policy import resolve_checkpoint


@dataclass
class LoadedRewardModel:
    """A reward model ready to score, the builders of its inputs and the checkpoint it came from."""

    model: RewardWorldModel
    builders: RewardInputBuilders
    checkpoint: Checkpoint


def load_reward_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """The ``stage=rwm`` checkpoint at ``path`` (or the newest of a run directory), its model config checked.

    Raises:
        FileNotFoundError, DataFormatError: naming a missing or damaged checkpoint file.
        ValueError: naming a checkpoint that holds no reward model.
    """
    ck = load_checkpoint(resolve_checkpoint(path))
    model_doc = ck.config.get("model")
    if not isinstance(model_doc, dict) or model_doc.get("architecture") != REWARD_ARCHITECTURE:
        found = model_doc.get("architecture") if isinstance(model_doc, dict) else None
        raise ValueError(f"{ck.path}: holds no reward model (architecture {found!r}; train one with stage=rwm)")
    return ck


def load_reward_model(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> LoadedRewardModel:
    """The reward model of a checkpoint (or of the newest checkpoint of a run directory), in eval mode.

    Raises:
        FileNotFoundError, DataFormatError: naming a missing or damaged checkpoint file.
        ValueError: naming a checkpoint that holds no reward model.
    """
    ck = load_reward_checkpoint(path)
    model = RewardWorldModel(reward_config_from_dict(ck.config["model"]))
    model.load_state_dict(ck.weights)
    model.set_normalization(ck.normalization)
    builders = RewardInputBuilders.from_params(ck.config.get("features", {}), ck.config.get("privileged", {}))
    return LoadedRewardModel(model.to(device).eval(), builders, ck)
