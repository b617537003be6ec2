"""A tiny VLA on synthetic batches and a known analytic reward, for the PPO tests (no data, no reward model)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from irl_vla.common.checkpoint import save_checkpoint
from irl_vla.data.enums import SE2Index
from irl_vla.models.reward.config import load_reward_config
from irl_vla.models.reward.inputs import reward_builder_params
from irl_vla.models.reward.model import RewardWorldModel, compute_reward_normalization
from irl_vla.models.vla.model import VLAModel
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore
from irl_vla.training.ppo.config import BCConfig, PPOSettings
from irl_vla.training.ppo.update import PPOModule
from tests.models.vla.helpers import ready_model, synthetic_batch, tiny_config

#: Final forward position [m] at which the analytic reward's progress saturates.
FULL_PROGRESS = 40.0


class ProgressReward:
    """A known reward: every sub-score passes except ego progress, ``final x / FULL_PROGRESS`` clipped to [0, 1].

    EC is undefined (NaN), as for a single-frame reward model.
    """

    def predict_sub_scores(self, features: Mapping[str, Tensor], trajectories: Tensor) -> Tensor:
        """Sub-scores ``(B, N, n_sub)`` of ``trajectories`` ``(B, N, T, 3)``."""
        sub = torch.ones(*trajectories.shape[:2], NUM_SUB_SCORES)
        sub[..., SubScore.EP] = (trajectories[..., -1, SE2Index.X] / FULL_PROGRESS).clamp(0, 1)
        sub[..., SubScore.EC] = float("nan")
        return sub


def tiny_policy(seed: int = 0) -> tuple[VLAModel, dict[str, Tensor], dict[str, Tensor]]:
    """A tiny VLA (statistics and anchors from two synthetic batches) and a fixed batch of 4 scenes."""
    cfg = tiny_config()
    batches = [synthetic_batch(cfg, 4, s) for s in range(2)]
    features, targets = batches[0]
    return ready_model(cfg, batches, seed=seed), features, targets


def tiny_module(seed: int = 0, **settings: object) -> tuple[PPOModule, dict[str, Tensor], dict[str, Tensor]]:
    """A PPO module over ``tiny_policy`` with ``settings`` (``bc`` as a dict of ``BCConfig`` fields)."""
    bc = BCConfig(**settings.pop("bc", {}))  # type: ignore[arg-type]
    model, features, targets = tiny_policy(seed)
    torch.manual_seed(seed)
    return PPOModule(model, PPOSettings(**settings), bc), features, targets  # type: ignore[arg-type]


def untrained_reward_checkpoint(path: Path, raster_cells: int) -> Path:
    """A ``tiny`` reward world model with random weights as ``stage=rwm`` saves it, its rasters
    ``raster_cells`` cells a side over the shipped range (the policy's or others: each model reads its own)."""
    torch.manual_seed(0)
    cfg = load_reward_config("tiny", {"inputs": {"bev_height": raster_cells, "bev_width": raster_cells}})
    model = RewardWorldModel(cfg)
    model.set_normalization(compute_reward_normalization(torch.randn(4, 4, 7), torch.randn(4, 6, 8, 3)))
    features, privileged = reward_builder_params(cfg)
    config = {"model": dataclasses.asdict(cfg), "features": features, "privileged": privileged}
    return save_checkpoint(path, weights=model.state_dict(), config=config, normalization=model.normalization())
