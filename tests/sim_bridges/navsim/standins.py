"""Minimal stand-ins for the navsim and nuPlan modules the bridge targets (neither is installable here).

They reproduce only what the suite relies on: module paths, class names and attribute names of ``Trajectory``,
``TrajectorySampling``, ``SensorConfig``, ``AgentInput``, ``EgoStatus``, ``Cameras``, ``Camera``, ``Lidar`` and
the ``AbstractAgent`` constructor (``reference/navsim.md`` §2-3).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

MODULES = (
    "navsim",
    "navsim.common",
    "navsim.common.dataclasses",
    "navsim.agents",
    "navsim.agents.abstract_agent",
    "nuplan",
    "nuplan.planning",
    "nuplan.planning.simulation",
    "nuplan.planning.simulation.trajectory",
    "nuplan.planning.simulation.trajectory.trajectory_sampling",
)


@dataclass
class TrajectorySampling:
    num_poses: int | None = None
    time_horizon: float | None = None
    interval_length: float | None = None

    def __post_init__(self) -> None:
        if self.time_horizon is None:
            self.time_horizon = float(self.num_poses * self.interval_length)  # type: ignore[operator]
        if self.num_poses is None:
            self.num_poses = int(self.time_horizon / self.interval_length)  # type: ignore[operator]
        if self.interval_length is None:
            self.interval_length = float(self.time_horizon / self.num_poses)


@dataclass
class Trajectory:
    poses: np.ndarray
    trajectory_sampling: TrajectorySampling = field(default_factory=lambda: TrajectorySampling(8, 4.0, 0.5))

    def __post_init__(self) -> None:
        assert self.poses.ndim == 2 and self.poses.shape == (self.trajectory_sampling.num_poses, 3)


@dataclass
class EgoStatus:
    ego_pose: np.ndarray
    ego_velocity: np.ndarray
    ego_acceleration: np.ndarray
    driving_command: np.ndarray
    in_global_frame: bool = False


@dataclass
class Camera:
    image: np.ndarray | None = None
    sensor2lidar_rotation: np.ndarray | None = None
    sensor2lidar_translation: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    distortion: np.ndarray | None = None


@dataclass
class Cameras:
    cam_f0: Camera = field(default_factory=Camera)
    cam_l0: Camera = field(default_factory=Camera)
    cam_l1: Camera = field(default_factory=Camera)
    cam_l2: Camera = field(default_factory=Camera)
    cam_r0: Camera = field(default_factory=Camera)
    cam_r1: Camera = field(default_factory=Camera)
    cam_r2: Camera = field(default_factory=Camera)
    cam_b0: Camera = field(default_factory=Camera)


@dataclass
class Lidar:
    lidar_pc: np.ndarray | None = None


@dataclass
class AgentInput:
    ego_statuses: list[EgoStatus]
    cameras: list[Cameras]
    lidars: list[Lidar]


@dataclass
class SensorConfig:
    cam_f0: Any = False
    cam_l0: Any = False
    cam_l1: Any = False
    cam_l2: Any = False
    cam_r0: Any = False
    cam_r1: Any = False
    cam_r2: Any = False
    cam_b0: Any = False
    lidar_pc: Any = False


class AbstractAgent(torch.nn.Module):
    def __init__(self, trajectory_sampling: TrajectorySampling, requires_scene: bool = False) -> None:
        super().__init__()
        self._trajectory_sampling = trajectory_sampling
        self.requires_scene = requires_scene


@contextmanager
def navsim_modules() -> Iterator[types.SimpleNamespace]:
    """Put the stand-ins on ``sys.modules`` under navsim's and nuPlan's module paths for the block."""
    saved = {name: sys.modules.get(name) for name in MODULES}
    for name in MODULES:
        sys.modules[name] = types.ModuleType(name)
    placed = {
        "navsim.common.dataclasses": (Trajectory, EgoStatus, Camera, Cameras, Lidar, AgentInput, SensorConfig),
        "navsim.agents.abstract_agent": (AbstractAgent,),
        "nuplan.planning.simulation.trajectory.trajectory_sampling": (TrajectorySampling,),
    }
    try:
        for module, classes in placed.items():
            for cls in classes:
                cls.__module__ = module
                setattr(sys.modules[module], cls.__name__, cls)
        yield types.SimpleNamespace(**{c.__name__: c for cs in placed.values() for c in cs})
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
