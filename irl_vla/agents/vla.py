"""The VLA agent: a policy trained by ``irl-vla train stage=il`` planning from what a real car has.

It reads only the sensors, the ego status history, the driving command and the navigation instruction,
through the feature builders saved with its checkpoint, so it may be submitted to a leaderboard. It plans a
batch of scenes in one forward pass (``compute_trajectories``) and returns its K candidate modes with their
confidence (``compute_candidates``). By default its plan is anchored to the ego's current motion
(``state_anchoring``): refitted to start with the measured velocity and acceleration, which keeps consecutive
frames' plans consistent (extended comfort).

``PolicyAgent`` is what every checkpoint-loading agent shares (the ego-status MLP agent too):
``agent.checkpoint`` names a checkpoint directory or a training run directory (its latest checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from irl_vla.agents.agent import Agent, AgentConfig, AgentContext, Candidates
from irl_vla.agents.resample import resample
from irl_vla.agents.sensor_blanking import BlankedSensor, blank_sensors, parse_blanked
from irl_vla.agents.state_anchoring import DEFAULT_JERK_WEIGHT, anchor_plan
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory, TrajectorySampling

if TYPE_CHECKING:
    from torch import Tensor

    from irl_vla.training.policy import Policy


@dataclass
class PolicyAgentConfig(AgentConfig):
    """Settings of an agent that runs a trained policy (``configs/agent/vla.yaml``, ``ego_mlp.yaml``).

    Attributes:
        checkpoint: a checkpoint directory, or a training run directory (its latest checkpoint).
        device: where the network runs (``cpu``, ``cuda``, ``cuda:1``).
    """

    checkpoint: str | None = None
    device: str = "cpu"


class PolicyAgent(Agent):
    """Plans with a trained ``Policy`` (its own feature builders turn each ``AgentInput`` into tensors).

    Built from settings, it loads its checkpoint in ``initialize`` (or on first use).

    Args:
        policy: the network and its feature builders (``None``: loaded from ``checkpoint``).
        trajectory_sampling: the plan's sampling (the network's poses are re-sampled when it differs).
        name: the agent's name in reports.
        checkpoint: a checkpoint or run directory (when ``policy`` is ``None``).
        device: where the loaded network runs.
    """

    #: The architecture the agent's checkpoints must hold.
    architecture: ClassVar[str] = ""

    def __init__(
        self,
        policy: Policy | None = None,
        trajectory_sampling: TrajectorySampling = DEFAULT_SAMPLING,
        name: str = "",
        *,
        checkpoint: str | None = None,
        device: str = "cpu",
    ) -> None:
        super().__init__(trajectory_sampling)
        self._policy = policy
        self._name = name or self.architecture
        self.checkpoint, self.device = checkpoint, device

    @classmethod
    def from_config(cls, config: AgentConfig, context: AgentContext) -> PolicyAgent:
        """The agent of ``config.checkpoint`` (loaded by ``initialize``)."""
        assert isinstance(config, PolicyAgentConfig)
        return cls(None, config.trajectory_sampling, config.name, checkpoint=config.checkpoint, device=config.device)

    def initialize(self) -> None:
        """Load the checkpoint (see ``policy``)."""
        self.policy  # noqa: B018 - loads it now

    @property
    def policy(self) -> Policy:
        """The policy, loaded from the checkpoint on first use.

        Raises:
            ValueError: when no checkpoint is named, or it holds another architecture.
            FileNotFoundError, DataFormatError: naming a missing or damaged checkpoint file.
        """
        if self._policy is None:
            from irl_vla.training.policy import load_policy  # torch and the models load only when one is used

            if not self.checkpoint:
                raise ValueError(
                    f"agent {self._name} runs a trained policy: name it with agent.checkpoint=<checkpoint or run "
                    "dir> (irl-vla train stage=il writes one)"
                )
            self._policy, _ = load_policy(self.checkpoint, architecture=self.architecture, device=self.device)
        return self._policy

    def name(self) -> str:
        """Inherited, see superclass."""
        return self._name

    def get_sensor_config(self) -> SensorConfig:
        """The sensors the policy's feature builders read."""
        return self.policy.sensor_config()

    @property
    def network_sampling(self) -> TrajectorySampling:
        """The sampling of the network's poses (0.5 s apart)."""
        return TrajectorySampling(num_poses=self._num_poses(), interval_length=DEFAULT_SAMPLING.interval_length)

    def _num_poses(self) -> int:
        cfg = self.policy.model.cfg
        return int(getattr(cfg, "num_poses", None) or cfg.inputs.num_poses)

    def _plan(self, poses: np.ndarray) -> Trajectory:
        """A network plan ``(T, 3)`` at the agent's sampling."""
        if self.network_sampling == self.trajectory_sampling:
            return Trajectory(poses.astype(np.float32), self.trajectory_sampling)
        return resample(poses, self.network_sampling, self.trajectory_sampling)

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """Inherited, see superclass."""
        return self.compute_trajectories([agent_input])[0]

    def compute_trajectories(
        self, agent_inputs: list[AgentInput], scenes: list[Scene] | None = None
    ) -> list[Trajectory]:
        """One forward pass over the batch (``scenes`` are not read: the agent is not privileged)."""
        if scenes is not None and len(scenes) != len(agent_inputs):
            raise ValueError(f"compute_trajectories: {len(agent_inputs)} inputs but {len(scenes)} scenes")
        trajectories = self._predict(agent_inputs)["trajectory"].numpy()  # (B, T, 3)
        return [self._plan_of(t, x) for t, x in zip(trajectories, agent_inputs, strict=True)]

    def _predict(self, agent_inputs: list[AgentInput]) -> dict[str, Tensor]:
        """The network's outputs for ``agent_inputs`` (as the agent shows them to it)."""
        return self.policy.predict(agent_inputs)

    def _plan_of(self, poses: np.ndarray, agent_input: AgentInput) -> Trajectory:
        """The agent's plan from the network's poses ``(T, 3)`` for ``agent_input`` (here: re-sampled)."""
        return self._plan(poses)


@dataclass
class VLAAgentConfig(PolicyAgentConfig):
    """Settings of ``agent=vla`` (``configs/agent/vla.yaml``).

    Attributes:
        anchor_to_state: refit the plan (its most confident mode) to start with the ego's current velocity
            and acceleration (``irl_vla.agents.state_anchoring``); ``false`` returns the network's mode as is.
        anchor_jerk_weight: the refit's weight of the integrated squared jerk [s^5].
        blank_sensors: a diagnostic: sensor kinds (``cameras``, ``lidar``) the network is shown blank (cameras
            as its training mean image, the LiDAR without returns; ``irl_vla.agents.sensor_blanking``), to measure
            how much its plans depend on them. Empty (the default): the sensors as they are.
    """

    anchor_to_state: bool = True
    anchor_jerk_weight: float = DEFAULT_JERK_WEIGHT
    blank_sensors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.anchor_jerk_weight < 0:
            raise ValueError(f"agent {self.name}: anchor_jerk_weight must be >= 0, got {self.anchor_jerk_weight}")
        parse_blanked(self.blank_sensors, f"agent {self.name}: blank_sensors")


class VLAAgent(PolicyAgent):
    """The stage-1 VLA (``irl_vla.models.vla``): its plan is its most confident mode, anchored to the ego state.

    Args:
        policy, trajectory_sampling, name, checkpoint, device: as ``PolicyAgent``.
        anchor_to_state: refit the plan to start with the ego's velocity and acceleration (see the module).
        anchor_jerk_weight: the refit's jerk weight [s^5].
        blank_sensors: sensor kinds shown blank to the network (a diagnostic, see ``VLAAgentConfig``).
    """

    architecture = "vla"

    def __init__(
        self,
        policy: Policy | None = None,
        trajectory_sampling: TrajectorySampling = DEFAULT_SAMPLING,
        name: str = "",
        *,
        checkpoint: str | None = None,
        device: str = "cpu",
        anchor_to_state: bool = VLAAgentConfig.anchor_to_state,
        anchor_jerk_weight: float = DEFAULT_JERK_WEIGHT,
        blank_sensors: list[str] | tuple[str, ...] = (),
    ) -> None:
        super().__init__(policy, trajectory_sampling, name, checkpoint=checkpoint, device=device)
        self.anchor_to_state, self.anchor_jerk_weight = anchor_to_state, anchor_jerk_weight
        self.blanked: frozenset[BlankedSensor] = parse_blanked(blank_sensors, f"agent {self._name}: blank_sensors")

    @classmethod
    def from_config(cls, config: AgentConfig, context: AgentContext) -> VLAAgent:
        """The agent of ``config.checkpoint`` (loaded by ``initialize``)."""
        if not isinstance(config, VLAAgentConfig):
            return super().from_config(config, context)  # type: ignore[return-value]
        return cls(
            None,
            config.trajectory_sampling,
            config.name,
            checkpoint=config.checkpoint,
            device=config.device,
            anchor_to_state=config.anchor_to_state,
            anchor_jerk_weight=config.anchor_jerk_weight,
            blank_sensors=config.blank_sensors,
        )

    def _plan_of(self, poses: np.ndarray, agent_input: AgentInput) -> Trajectory:
        """The network's plan ``(T, 3)`` anchored to the input's ego state (``anchor_to_state``), re-sampled."""
        return self._plan(self._anchored(poses, agent_input))

    def _anchored(self, poses: np.ndarray, agent_input: AgentInput) -> np.ndarray:
        """The network's poses ``(T, 3)`` refitted to the ego state (``anchor_to_state``), at the network's sampling."""
        if not self.anchor_to_state:
            return poses
        ego = agent_input.current
        times = self.network_sampling.times
        return anchor_plan(poses, times, ego.ego_velocity, ego.ego_acceleration, self.anchor_jerk_weight)

    def _predict(self, agent_inputs: list[AgentInput]) -> dict[str, Tensor]:
        """The network's outputs, the ``blank_sensors`` of each input blanked first."""
        if self.blanked:
            mean = self.policy.model.image_norm.mean.detach().cpu().numpy().reshape(-1)  # (3,) of images in [0, 1]
            colour = np.clip(np.round(mean * 255.0), 0, 255).astype(np.uint8)
            agent_inputs = [blank_sensors(x, self.blanked, colour) for x in agent_inputs]
        return super()._predict(agent_inputs)

    def compute_candidates(self, agent_input: AgentInput, scene: Scene | None = None) -> Candidates | None:
        """The K denoised modes ``(K, T, 3)`` with their confidence logits as scores."""
        out = self._predict([agent_input])
        modes = out["modes"][0].numpy()  # (K, T, 3)
        poses = np.stack([self._plan(m).poses for m in modes])
        return Candidates(poses, out["mode_logits"][0].numpy().astype(np.float32), self.trajectory_sampling)
