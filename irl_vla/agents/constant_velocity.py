"""The constant-velocity baseline: holds the current speed and heading (reads no sensors)."""

from __future__ import annotations

import numpy as np

from irl_vla.agents.agent import Agent
from irl_vla.data.enums import SE2Index
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.trajectory import Trajectory


class ConstantVelocityAgent(Agent):
    """Keeps the current speed ``|v|`` and heading: poses ``(t_k |v|, 0, 0)``."""

    def name(self) -> str:
        """Inherited, see superclass."""
        return "constant_velocity"

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """Inherited, see superclass."""
        v = float(np.linalg.norm(agent_input.current.ego_velocity))
        poses = np.zeros((self.trajectory_sampling.num_poses, len(SE2Index)), dtype=np.float32)  # (T, 3)
        poses[:, SE2Index.X] = v * self.trajectory_sampling.times
        return Trajectory(poses, self.trajectory_sampling)
