"""A tiny embedded split (two logs, a few scenes each) and its labels, shared by the labelling and stage-2 tests."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch

from irl_vla.common.config import to_dataclass
from irl_vla.data.rendered_sensors import RenderedSensors
from irl_vla.data.split import SceneLoader
from irl_vla.labeling.pipeline import LabelConfig, run_label
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.embedded.render.rig import LidarConfig, RigConfig
from sim_bridges.embedded.render.sensors import SensorRenderer


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
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return to_dataclass(base, LabelConfig, where="label")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def label_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/synth_navtrain``: a stop-and-go and a parked-cars log."""
    root = tmp_path_factory.mktemp("label_split")
    cfg = GenerateConfig(
        data_root=str(root), families=["stop_and_go", "parked_cars"], num_log_frames=20, workers=1, progress=False
    )
    generate_split("synth_navtrain", SplitSpec(logs_per_family=1, frame_interval=3), cfg)
    return root


@pytest.fixture(scope="session")
def label_source(label_root: Path) -> partial[SceneLoader]:
    """The split, with the LiDAR the reward model reads."""
    rig = RigConfig(cameras=())
    renderer = RenderedSensors(partial(SensorRenderer, rig, LidarConfig()))
    return partial(SceneLoader, str(label_root / "synth_navtrain"), renderer=renderer)


@pytest.fixture(scope="session")
def labels_dir(label_root: Path, label_source: partial[SceneLoader]) -> Path:
    """The split labelled once (read-only for the tests that share it)."""
    cfg = label_config(label_root, "labels")
    run_label(cfg, label_source)
    return cfg.label_dir
