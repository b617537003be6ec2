"""The PDM-Closed baseline: the rule-based planner's plan stored in the scene's metric cache.

It is privileged: it plans with the map, the route and perfect detections.
"""

from __future__ import annotations

from irl_vla.agents.agent import Agent, AgentConfig, AgentContext
from irl_vla.agents.resample import resample
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory, TrajectorySampling
from irl_vla.scoring.scorer import PDM_SAMPLING


class PDMClosedAgent(Agent):
    """Returns the PDM-Closed plan of the scene's metric cache.

    Args:
        context: must hold the metric-cache lookup (the evaluator's store).
        trajectory_sampling: the times of the plan's poses.

    Raises:
        ValueError: when the context has no metric cache.
    """

    requires_scene = True
    requires_metric_cache = True

    def __init__(self, context: AgentContext, trajectory_sampling: TrajectorySampling = DEFAULT_SAMPLING) -> None:
        super().__init__(trajectory_sampling)
        if context.metric_cache is None:
            raise ValueError("agent pdm_closed plans from the metric cache: its AgentContext has none")
        self.cache_of = context.metric_cache

    @classmethod
    def from_config(cls, config: AgentConfig, context: AgentContext) -> PDMClosedAgent:
        """Inherited, see superclass."""
        return cls(context, config.trajectory_sampling)

    def name(self) -> str:
        """Inherited, see superclass."""
        return "pdm_closed"

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """Inherited, see superclass."""
        if scene is None:
            raise ValueError("PDMClosedAgent needs the scene (it is privileged)")
        cache = self.cache_of(scene.token)
        if cache.pdm_plan is None:
            raise ValueError(f"scene {scene.token}: the metric cache has no PDM-Closed plan")
        return resample(cache.pdm_plan, PDM_SAMPLING, self.trajectory_sampling)
