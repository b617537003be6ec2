"""The VLA agent: a policy trained by ``irl-vla train stage=il`` planning from what a real car has.

It reads only the sensors, the ego status history, the driving command and the navigation instruction,
through the feature builders saved with its checkpoint, so it may be submitted to a leaderboard. It plans a
batch of scenes in one forward pass (``compute_trajectories``) and returns its K candidate modes with their
confidence (``compute_candidates``).

``PolicyAgent`` is what every checkpoint-loading agent shares (the ego-status MLP agent too):
``agent.checkpoint`` names a checkpoint directory or a training run directory (its latest checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from irl_vla.agents.agent import Agent, AgentConfig, AgentContext, Candidates
from irl_vla.agents.resample import resample
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory, TrajectorySampling

if TYPE_CHECKING:
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
        trajectories = self.policy.predict(agent_inputs)["trajectory"].numpy()  # (B, T, 3)
        return [self._plan(t) for t in trajectories]


class VLAAgent(PolicyAgent):
    """The stage-1 VLA (``irl_vla.models.vla``): its plan is its most confident mode."""

    architecture = "vla"

    def compute_candidates(self, agent_input: AgentInput, scene: Scene | None = None) -> Candidates | None:
        """The K denoised modes ``(K, T, 3)`` with their confidence logits as scores."""
        out = self.policy.predict([agent_input])
        modes = out["modes"][0].numpy()  # (K, T, 3)
        poses = np.stack([self._plan(m).poses for m in modes])
        return Candidates(poses, out["mode_logits"][0].numpy().astype(np.float32), self.trajectory_sampling)
