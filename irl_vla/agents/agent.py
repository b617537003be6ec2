"""The agent interface: NAVSIM's ``AbstractAgent`` contract in the suite's types.

It grows what learned and closed-loop agents need: a batched call, K candidate modes with scores, and
``reset`` between episodes.

An agent says which sensors it reads (``get_sensor_config``); every scene source delivers exactly those. A
privileged agent (``requires_scene``) also reads the whole ``Scene``, and one that plans from the scene's metric
cache (``requires_metric_cache``) gets the lookup through its ``AgentContext`` at construction; neither may be
submitted to a leaderboard.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import SE2Index
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory, TrajectorySampling
from irl_vla.data.validation import check_array

if TYPE_CHECKING:
    from irl_vla.scoring.scene_cache import SceneCache


@dataclass(frozen=True)
class AgentContext:
    """What the command running an agent gives it beyond its inputs (for privileged agents).

    Attributes:
        metric_cache: the metric cache of a scene token (agents with ``requires_metric_cache``).
    """

    metric_cache: Callable[[str], SceneCache] | None = None


@dataclass
class AgentConfig:
    """Settings every agent has (``configs/agent/<name>.yaml``); an agent with more subclasses it.

    Attributes:
        name: the agent's entry in the registry (``irl_vla.agents.registry.AGENTS``).
        num_poses: poses of a plan.
        interval_length: time between poses [s].
    """

    name: str = ""
    num_poses: int = 8
    interval_length: float = 0.5

    def __post_init__(self) -> None:
        self.trajectory_sampling  # noqa: B018 - validates the sampling now

    @property
    def trajectory_sampling(self) -> TrajectorySampling:
        """The plan's sampling."""
        return TrajectorySampling(num_poses=self.num_poses, interval_length=self.interval_length)


@dataclass
class Candidates:
    """K candidate plans of one scene with the agent's score of each.

    Attributes:
        poses: ``(K, T, 3)`` relative poses, columns by ``SE2Index`` [m], [rad].
        scores: ``(K,)`` the agent's preference (higher is better; e.g. a log-probability or a predicted EPDMS).
        trajectory_sampling: the times of the ``T`` poses.
    """

    poses: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    trajectory_sampling: TrajectorySampling = DEFAULT_SAMPLING

    def __post_init__(self) -> None:
        check_array(self.poses, "Candidates.poses", (None, self.trajectory_sampling.num_poses, len(SE2Index)))
        check_array(self.scores, "Candidates.scores", (len(self.poses),))

    def __len__(self) -> int:
        return len(self.poses)

    def best(self) -> Trajectory:
        """The highest-scoring candidate as a plan."""
        return Trajectory(self.poses[int(np.argmax(self.scores))], self.trajectory_sampling)


class Agent(ABC):
    """A driving policy.

    Attributes:
        requires_scene: privileged: reads the whole ``Scene`` (logged future, annotations, map).
        requires_metric_cache: privileged: plans from the scene's metric cache (given by ``AgentContext``).
        trajectory_sampling: the times of the plan's poses.
    """

    requires_scene: ClassVar[bool] = False
    requires_metric_cache: ClassVar[bool] = False

    def __init__(self, trajectory_sampling: TrajectorySampling = DEFAULT_SAMPLING) -> None:
        self.trajectory_sampling = trajectory_sampling

    @classmethod
    def from_config(cls, config: AgentConfig, context: AgentContext) -> Agent:
        """The agent with ``config``'s settings; privileged agents take what they read from ``context``."""
        return cls(config.trajectory_sampling)

    @property
    def privileged(self) -> bool:
        """Whether the agent reads anything a real vehicle would not have (so it may not be submitted)."""
        return self.requires_scene or self.requires_metric_cache

    @abstractmethod
    def name(self) -> str:
        """Name used in reports and file names."""

    def initialize(self) -> None:  # noqa: B027 - optional hook
        """Load weights or other resources once before the first call (in each worker process)."""

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget any state kept between calls (called before each closed-loop episode)."""

    def get_sensor_config(self) -> SensorConfig:
        """The sensors the agent reads (none by default)."""
        return SensorConfig.build_no_sensors()

    @abstractmethod
    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """The plan for the current frame of ``agent_input`` (``scene`` only for agents with ``requires_scene``)."""

    def compute_trajectories(
        self, agent_inputs: list[AgentInput], scenes: list[Scene] | None = None
    ) -> list[Trajectory]:
        """Plans of ``B`` scenes at once (one per input, in order).

        Learned agents override this to run one batched forward pass; the default calls ``compute_trajectory``.

        Raises:
            ValueError: when ``scenes`` is given with another length than ``agent_inputs``.
        """
        if scenes is not None and len(scenes) != len(agent_inputs):
            raise ValueError(f"compute_trajectories: {len(agent_inputs)} inputs but {len(scenes)} scenes")
        return [
            self.compute_trajectory(agent_input, None if scenes is None else scenes[b])
            for b, agent_input in enumerate(agent_inputs)
        ]

    def compute_candidates(self, agent_input: AgentInput, scene: Scene | None = None) -> Candidates | None:
        """The K candidate modes the plan was chosen from, with their scores; ``None`` for agents without modes."""
        return None
