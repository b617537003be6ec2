"""A tiny embedded training split (stop-and-go: constant velocity fails there) with a small camera rig."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from irl_vla.common.config import to_dataclass
from irl_vla.data.rendered_sensors import RenderedSensors
from irl_vla.data.split import SceneLoader
from irl_vla.models.vla.config import model_config_path
from irl_vla.training.il import ILConfig
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.embedded.render.rig import LidarConfig, RigConfig
from sim_bridges.embedded.render.sensors import SensorRenderer

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
#: A rig drawing small pictures (the camera builder resizes them to the model's size anyway).
SMALL_RIG = dataclasses.replace(RigConfig(), width=64, height=36)


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
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return to_dataclass(base, ILConfig, where="train")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a shared machine competing threads slow small networks down many times."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def split_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/synth_navtrain``: one stop-and-go log, 4 scenes."""
    root = tmp_path_factory.mktemp("training_split")
    cfg = GenerateConfig(data_root=str(root), families=["stop_and_go"], num_log_frames=20, workers=1, progress=False)
    generate_split("synth_navtrain", SplitSpec(logs_per_family=1, frame_interval=2), cfg)
    return root


@pytest.fixture(scope="session")
def source(split_root: Path) -> partial[SceneLoader]:
    """The split with the small rig's sensors."""
    renderer = RenderedSensors(partial(SensorRenderer, SMALL_RIG, LidarConfig()))
    return partial(SceneLoader, str(split_root / "synth_navtrain"), renderer=renderer)
