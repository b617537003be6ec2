"""A tiny embedded training split (stop-and-go: constant velocity fails there) with a small camera rig."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from irl_vla.data.split import SceneLoader
from irl_vla.models.vla.config import model_config_path
from irl_vla.training.il import ILConfig
from tests.helpers import SMALL_RIG, config_from, one_torch_thread, rendered_source, tiny_split

__all__ = ["SMALL_RIG", "SMALL_VLA", "il_config", "model_doc", "one_torch_thread"]

#: The shipped ``tiny`` VLA on small inputs (small images and grids) so that tests train in seconds.
SMALL_VLA: dict[str, Any] = {
    "inputs": {
        "image_height": 32,
        "image_width": 64,
        "bev_height": 32,
        "bev_width": 32,
        "max_instruction_tokens": 16,
        "max_agents": 5,
    },
    "language": {"max_target_tokens": 24},
    "planner": {"num_anchors": 4},
}


def model_doc(name: str, **overrides: Any) -> dict[str, Any]:
    """``configs/model/<name>.yaml`` (``tiny``: on small inputs) merged with ``overrides``."""
    doc = OmegaConf.load(model_config_path(name))
    if name == "tiny":
        doc = OmegaConf.merge(doc, SMALL_VLA)
    merged = OmegaConf.to_container(OmegaConf.merge(doc, overrides), resolve=True)
    assert isinstance(merged, dict)
    return merged


def il_config(root: Path, out: str, **overrides: Any) -> ILConfig:
    """Stage-1 settings for the tiny split: no validation, no progress bars, small batches, a shared cache."""
    base: dict[str, Any] = {
        "data_root": str(root),
        "cache_dir": str(root / "features"),
        "batch_size": 2,
        "max_steps": 4,
        "checkpoint_every": 2,
        "log_every": 1,
        "stats_scenes": 4,
        "val_split": None,
        "progress": False,
        "workers": 1,
        "threads": 1,
        "output_dir": str(root / out),
        "optimizer": {"lr": 1e-3, "warmup_steps": 2},
    }
    return config_from(ILConfig, base, overrides, "train")


@pytest.fixture(scope="session")
def split_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/synth_navtrain``: one stop-and-go log, 4 scenes."""
    root = tmp_path_factory.mktemp("training_split")
    tiny_split(root, "synth_navtrain", ["stop_and_go"], frame_interval=2)
    return root


@pytest.fixture(scope="session")
def source(split_root: Path) -> partial[SceneLoader]:
    """The split with the small rig's sensors."""
    return rendered_source(split_root / "synth_navtrain", SMALL_RIG)
