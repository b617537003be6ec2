"""``irl-vla train stage=il [model=<name>] [overrides]``: train a policy (DDP when started by ``torchrun``)."""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.common.command import Command
from irl_vla.training.il import ILConfig, run_il
from tools.sources import scene_sources

#: Stages ``irl-vla train`` runs (``configs/train/<stage>.yaml``).
STAGES = ("il",)
COMMAND = Command(
    "train",
    ILConfig,
    key="train",
    summary="Train a policy: stage=il imitates the expert (model=tiny|default|base VLA, or ego_mlp). Checkpoints, "
    "TensorBoard logs and metrics.jsonl go to train.output_dir (default <paths.output_root>/train/<stage>/<model "
    "size>); a rerun with the same settings resumes there. Runs with DDP under torchrun.",
)


def rewrite_args(args: list[str]) -> list[str]:
    """``stage=<name>`` is short for ``train=<name>`` (the config group of the stage)."""
    return [f"train={a.split('=', 1)[1]}" if a.startswith("stage=") else a for a in args]


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="train")
def main(cfg: DictConfig) -> None:
    """Train the stage's policy; print where its checkpoints, TensorBoard logs and metrics are."""
    stage = cfg.train.get("stage")
    if stage not in STAGES:
        raise ValueError(f"train: stage {stage!r} is not one of {list(STAGES)}")
    config = COMMAND.load(cfg)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(model, dict)
    if config.output_dir is None:  # one run directory per stage and model, so that a rerun resumes it
        config.output_dir = str(Path(str(cfg.paths.output_root)) / "train" / stage / str(model.get("size", "model")))
    roots = (config.navsim_root, config.maps_root, config.split_file)
    train = scene_sources(config.source, config.data_root, config.split, *roots)
    val = None
    if config.val_split is not None:
        val = scene_sources(config.source, config.data_root, config.val_split, *roots, config.sensor_cache).split
    path = run_il(config, model, train.split, val)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 wrote the outputs and says so
        return
    out = Path(config.output_dir)
    print(f"wrote {path}")
    print(f"tensorboard --logdir {out / 'tensorboard'}")
    print(f"metrics {out / 'metrics.jsonl'}")
