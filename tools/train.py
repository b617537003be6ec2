"""``irl-vla train stage=il [model=<name>] [overrides]``: train a policy (DDP when started by ``torchrun``)."""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.common.config import to_dataclass
from irl_vla.training.il import ILConfig, run_il
from tools.sources import scene_sources

#: Stages ``irl-vla train`` runs (``configs/train/<stage>.yaml``).
STAGES = ("il",)


def rewrite_args(args: list[str]) -> list[str]:
    """``stage=<name>`` is short for ``train=<name>`` (the config group of the stage)."""
    return [f"train={a.split('=', 1)[1]}" if a.startswith("stage=") else a for a in args]


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="train")
def main(cfg: DictConfig) -> None:
    """Train the stage's policy; print where its checkpoints, TensorBoard logs and metrics are."""
    stage = cfg.train.get("stage")
    if stage not in STAGES:
        raise ValueError(f"train: stage {stage!r} is not one of {list(STAGES)}")
    config = to_dataclass(OmegaConf.to_container(cfg.train, resolve=True), ILConfig, where="train")
    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(model, dict)
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
