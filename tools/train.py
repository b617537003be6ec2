"""``irl-vla train stage=il|ppo [model=<name>] [overrides]``: train a policy (DDP when started by ``torchrun``).

Each stage declares its settings dataclass in ``STAGES``; ``rewrite_args`` reads the stage from the command line
and registers that dataclass as the ``train`` schema before hydra composes, so ``--cfg job`` and ``--help`` show
the chosen stage's keys and defaults.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.common.checkpoint import CONFIG
from irl_vla.common.command import Command
from irl_vla.data.union_source import union_factory
from irl_vla.training.il import ILConfig, run_il
from irl_vla.training.policy import resolve_checkpoint
from irl_vla.training.ppo.config import PPOConfig
from irl_vla.training.rwm import RWMConfig, run_rwm
from tools.sources import config_sources

#: Stages ``irl-vla train`` runs (``configs/train/<stage>.yaml``) and the dataclass of their settings.
STAGES: dict[str, type] = {"il": ILConfig, "rwm": RWMConfig, "ppo": PPOConfig}
#: The model a stage trains when none is named (the others default to the VLA of configs/train.yaml).
DEFAULT_MODELS: dict[str, str] = {"rwm": "reward_default"}
SUMMARY = (
    "Train a policy: stage=il imitates the expert (model=tiny|small|default|base VLA, or ego_mlp; model=default, the "
    "default, trains by its recipe configs/recipe/il_default.yaml, whose values replace the defaults listed below: "
    "irl-vla train --cfg job shows them, ~recipe drops them); stage=rwm learns "
    "the reward world model from irl-vla label's candidates (model=reward_default|reward_tiny); stage=ppo fine-tunes a "
    "stage-1 VLA (train.init_checkpoint) by PPO against a reward model (train.reward_checkpoint), no simulator in "
    "the loop. Checkpoints, TensorBoard logs and metrics.jsonl go to train.output_dir (default "
    "<paths.output_root>/train/<stage>/<model size>); a rerun with the same settings resumes there. Runs with DDP "
    "under torchrun."
)


def command_for(stage: str) -> Command[Any]:
    """The ``train`` command with ``stage``'s settings as its schema (registered as ``train_schema``).

    Raises:
        ValueError: for an unknown stage.
    """
    if stage not in STAGES:
        raise ValueError(f"train: stage {stage!r} is not one of {list(STAGES)}")
    return Command("train", STAGES[stage], key="train", summary=SUMMARY)


COMMAND = command_for("il")


def stage_of(args: list[str]) -> str:
    """The stage named on the command line (``stage=`` or ``train=``; the last one wins), ``il`` by default."""
    stage = "il"
    for a in args:
        if a.startswith(("stage=", "train=")):
            stage = a.split("=", 1)[1]
    return stage


def rewrite_args(args: list[str]) -> list[str]:
    """``stage=<name>`` is short for ``train=<name>``; the stage's settings become the ``train`` schema."""
    global COMMAND
    stage = stage_of(args)
    if stage in STAGES:  # an unknown stage is refused by hydra, naming the options
        COMMAND = command_for(stage)
    if stage in DEFAULT_MODELS and not any(a.startswith("model=") for a in args):
        args = [*args, f"model={DEFAULT_MODELS[stage]}"]
    return [f"train={a.split('=', 1)[1]}" if a.startswith("stage=") else a for a in args]


def _init_size(checkpoint: str) -> str:
    """The model size of a stage-1 checkpoint (or run directory), for PPO's default run directory."""
    config = json.loads((resolve_checkpoint(checkpoint) / CONFIG).read_text())
    return str(config.get("model", {}).get("size", "model"))


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="train")
def main(cfg: DictConfig) -> None:
    """Train the stage's policy; print where its checkpoints, TensorBoard logs and metrics are."""
    stage = cfg.train.get("stage")
    config = command_for(str(stage)).load(cfg)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(model, dict)
    if config.output_dir is None:  # one run directory per stage and model, so that a rerun resumes it
        size = _init_size(config.init_checkpoint) if stage == "ppo" else str(model.get("size", "model"))
        config.output_dir = str(Path(str(cfg.paths.output_root)) / "train" / stage / size)
    train = config_sources(config, render_cache=False)
    val = None
    if config.val_split is not None:
        val = config_sources(config, config.val_split).split
    if stage == "ppo":
        from irl_vla.training.ppo.stage import load_reward, run_ppo  # imported by the stage that needs it

        reward_model, reward_builders, reward_config = load_reward(config.reward_checkpoint)
        path = run_ppo(config, train.split, val, reward_model, reward_builders, reward_config)
    elif stage == "rwm":
        path = run_rwm(config, model, train.split, val)
    else:
        extra = [config_sources(config, name, render_cache=False).split for name in config.extra_splits]
        path = run_il(config, model, union_factory([train.split, *extra]), val)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 wrote the outputs and says so
        return
    out = Path(config.output_dir)
    print(f"wrote {path}")
    print(f"tensorboard --logdir {out / 'tensorboard'}")
    print(f"metrics {out / 'metrics.jsonl'}")
