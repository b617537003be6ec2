"""A tiny embedded split (two logs, a few scenes each) and its labels, shared by the labelling and stage-2 tests."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from irl_vla.data.split import SceneLoader
from irl_vla.labeling.pipeline import LabelConfig, run_label
from sim_bridges.embedded.render.rig import RigConfig
from tests.helpers import config_from, one_torch_thread, rendered_source, tiny_split

__all__ = ["label_config", "one_torch_thread"]


def label_config(root: Path, out: str, **overrides: Any) -> LabelConfig:
    """Labelling settings for the tiny split: a small vocabulary, few perturbations, sequential, no bars."""
    base: dict[str, Any] = {
        "data_root": str(root),
        "max_scenes": None,
        "output_dir": str(root / out),
        "metric_cache_dir": str(root / "metric_cache"),
        "vocabulary_size": 4,
        "vocabulary_iterations": 10,
        "vocabulary_scenes": None,
        "perturbations": {"random": 6},
        "shard_size": 2,
        "executor": {"backend": "sequential", "workers": 1},
        "progress": False,
    }
    return config_from(LabelConfig, base, overrides, "label")


@pytest.fixture(scope="session")
def label_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/synth_navtrain``: a stop-and-go and a parked-cars log."""
    root = tmp_path_factory.mktemp("label_split")
    tiny_split(root, "synth_navtrain", ["stop_and_go", "parked_cars"], frame_interval=3)
    return root


@pytest.fixture(scope="session")
def label_source(label_root: Path) -> partial[SceneLoader]:
    """The split, with the LiDAR the reward model reads."""
    return rendered_source(label_root / "synth_navtrain", RigConfig(cameras=()))


@pytest.fixture(scope="session")
def labels_dir(label_root: Path, label_source: partial[SceneLoader]) -> Path:
    """The split labelled once (read-only for the tests that share it)."""
    cfg = label_config(label_root, "labels")
    run_label(cfg, label_source)
    return cfg.label_dir
