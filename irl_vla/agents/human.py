"""The human baseline: replays the logged expert's future (privileged: reads the scene)."""

from __future__ import annotations

from irl_vla.agents.agent import Agent
from irl_vla.agents.resample import resample
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.trajectory import Trajectory


class HumanAgent(Agent):
    """Replays the logged expert future, re-sampled at the agent's pose times."""

    requires_scene = True

    def name(self) -> str:
        """Inherited, see superclass."""
        return "human"

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """Inherited, see superclass."""
        if scene is None:
            raise ValueError("HumanAgent needs the scene (it is privileged)")
        future = scene.get_future_trajectory()
        return resample(future.poses, future.trajectory_sampling, self.trajectory_sampling)
