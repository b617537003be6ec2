"""What the tests of several packages share: tiny embedded splits, their rendered sources, small settings.

A conftest that wants torch on one thread for each of its tests imports ``one_torch_thread`` (an autouse
fixture) and lists it in ``__all__``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch

from irl_vla.common.config import to_dataclass
from irl_vla.data.rendered_sensors import RenderedSensors
from irl_vla.data.split import SceneLoader
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.embedded.render.rig import LidarConfig, RigConfig
from sim_bridges.embedded.render.sensors import SensorRenderer

T = TypeVar("T")

#: A rig drawing small pictures (a camera builder resizes them to its model's size anyway).
SMALL_RIG = dataclasses.replace(RigConfig(), width=64, height=36)


def tiny_split(root: Path, split: str, families: list[str], frame_interval: int, num_log_frames: int = 20) -> Path:
    """Generate ``<root>/<split>``: one short log of each of ``families``, a scene every ``frame_interval`` frames.

    Returns:
        the split's directory.
    """
    cfg = GenerateConfig(
        data_root=str(root), families=families, num_log_frames=num_log_frames, workers=1, progress=False
    )
    generate_split(split, SplitSpec(logs_per_family=1, frame_interval=frame_interval), cfg)
    return root / split


def rendered_source(split_dir: Path | str, rig: RigConfig | None = None) -> partial[SceneLoader]:
    """A picklable factory of the split's loader, its sensors drawn on load on ``rig`` (default: the default rig)."""
    renderer = RenderedSensors(partial(SensorRenderer, rig or RigConfig(), LidarConfig()))
    return partial(SceneLoader, str(split_dir), renderer=renderer)


def config_from(cls: type[T], base: Mapping[str, Any], overrides: Mapping[str, Any], where: str) -> T:
    """The config dataclass ``cls`` from ``base`` with ``overrides`` over it (a mapping merged one level deep).

    Args:
        cls: the config dataclass.
        base: the tests' settings.
        overrides: one test's changes; ``{"optimizer": {"lr": 1.0}}`` keeps the base's other optimiser keys.
        where: the config's name in error messages (``train``, ``label``).
    """
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, Mapping) else value
    return to_dataclass(merged, cls, where=where)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One torch thread: on a shared machine competing threads slow small networks down many times."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
