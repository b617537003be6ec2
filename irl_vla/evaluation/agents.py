"""Agents that turn what they see into a plan: NAVSIM's ``AbstractAgent`` contract in the suite's types.

Baselines available without training: constant velocity, the logged expert ("human", privileged) and PDM-Closed
(privileged: it plans with the map, the route and perfect detections from the metric cache).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import interpolate_poses
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory, TrajectorySampling
from irl_vla.scoring.scene_cache import SceneCache
from irl_vla.scoring.scorer import PDM_SAMPLING


class Agent(ABC):
    """A driving agent.

    Attributes:
        requires_scene: privileged agents read the whole ``Scene``; they may not be submitted.
        reads_metric_cache: the agent plans from the scene's metric cache (so every frame it runs on needs one).
    """

    requires_scene = False
    reads_metric_cache = False

    def __init__(self, trajectory_sampling: TrajectorySampling = DEFAULT_SAMPLING) -> None:
        self.trajectory_sampling = trajectory_sampling

    @abstractmethod
    def name(self) -> str:
        """Name used in reports and file names."""

    def initialize(self) -> None:  # noqa: B027 - optional hook
        """Load weights or other resources once before the first call."""

    def get_sensor_config(self) -> SensorConfig:
        """The sensors the agent reads (none by default)."""
        return SensorConfig.build_no_sensors()

    @abstractmethod
    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """The plan for the current frame of ``agent_input`` (``scene`` only for privileged agents)."""


class ConstantVelocityAgent(Agent):
    """Keeps the current speed and heading: poses ``(k dt |v|, 0, 0)``."""

    def name(self) -> str:
        """Inherited, see superclass."""
        return "constant_velocity"

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """Inherited, see superclass."""
        v = float(np.linalg.norm(agent_input.current.ego_velocity))
        poses = np.zeros((self.trajectory_sampling.num_poses, len(SE2Index)), dtype=np.float32)
        poses[:, SE2Index.X] = v * self.trajectory_sampling.times
        return Trajectory(poses, self.trajectory_sampling)


class HumanAgent(Agent):
    """Replays the logged expert future (privileged)."""

    requires_scene = True

    def name(self) -> str:
        """Inherited, see superclass."""
        return "human"

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """Inherited, see superclass."""
        if scene is None:
            raise ValueError("HumanAgent needs the scene (it is privileged)")
        future = scene.get_future_trajectory()
        return _resample(future.poses, future.trajectory_sampling, self.trajectory_sampling)


class PDMClosedAgent(Agent):
    """Returns the PDM-Closed plan of the scene's metric cache (privileged).

    Args:
        cache_of: looks up the metric cache of a scene token (the evaluator binds its store).
    """

    requires_scene = True
    reads_metric_cache = True

    def __init__(
        self,
        cache_of: Callable[[str], SceneCache] | None = None,
        trajectory_sampling: TrajectorySampling = DEFAULT_SAMPLING,
    ) -> None:
        super().__init__(trajectory_sampling)
        self.cache_of = cache_of

    def name(self) -> str:
        """Inherited, see superclass."""
        return "pdm_closed"

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """Inherited, see superclass."""
        if scene is None or self.cache_of is None:
            raise ValueError("PDMClosedAgent needs the scene and a metric cache (it is privileged)")
        cache = self.cache_of(scene.token)
        if cache.pdm_plan is None:
            raise ValueError(f"scene {scene.token}: the metric cache has no PDM-Closed plan")
        return _resample(cache.pdm_plan, PDM_SAMPLING, self.trajectory_sampling)


def _resample(poses: np.ndarray, source: TrajectorySampling, target: TrajectorySampling) -> Trajectory:
    """Relative poses at ``source`` times re-sampled at ``target`` times (the current pose as t = 0)."""
    times = np.concatenate([[0.0], source.times])
    with_origin = np.concatenate([np.zeros((1, len(SE2Index))), poses], axis=0)
    out = interpolate_poses(times, with_origin, target.times)
    return Trajectory(out.astype(np.float32), target)


#: Agents by config name.
AGENTS: dict[str, type[Agent]] = {
    "constant_velocity": ConstantVelocityAgent,
    "human": HumanAgent,
    "pdm_closed": PDMClosedAgent,
}


def make_agent(name: str, **kwargs: Any) -> Agent:
    """The agent called ``name``, built with ``kwargs``.

    Raises:
        ValueError: naming the unknown agent and the known ones.
    """
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; available: {sorted(AGENTS)}")
    return AGENTS[name](**kwargs)
