"""Open-loop (NAVSIM-style, non-reactive) evaluation of an agent on a split.

One-stage (``synth_navtest``): every scene is scored; EC pairs each scene with the agent's plan one frame
(0.5 s) earlier in the same log; the human filter forgives what the logged expert also fails; the split score is
the plain mean. Two-stage (``synth_navhard`` with its re-simulated stage-2 scenes): groups of a real scene, its
predecessor and stage-2 (now, previous) pairs started around the expert's endpoint, combined with Gaussian
proximity weights (``reference/navsim.md`` §1.10). A scene that fails is reported with ``valid = false`` and its
error, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from irl_vla.agents.agent import Agent
from irl_vla.data.geometry import relative_to_absolute
from irl_vla.data.scene import Scene
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory
from irl_vla.data.two_stage import Group
from irl_vla.scoring.aggregation import aggregate
from irl_vla.scoring.comfort import extended_comfort
from irl_vla.scoring.scene_aggregation import group_score, human_filter, proximity_weights
from irl_vla.scoring.scene_cache import SceneCache
from irl_vla.scoring.scorer import Scorer
from irl_vla.scoring.simulation import simulate_plans
from irl_vla.scoring.states import POSE, initial_state
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore


@dataclass
class SceneResult:
    """Scores of one scene.

    Attributes:
        token: scene token.
        valid: whether scoring succeeded.
        sub_scores: ``(9,)`` after the human filter (NaN when invalid).
        score: EPDMS of the scene (NaN when invalid).
        endpoint: global (x, y) of the plan's last pose (two-stage weights).
        error: why it failed.
    """

    token: str
    valid: bool
    sub_scores: np.ndarray = field(default_factory=lambda: np.full(NUM_SUB_SCORES, np.nan))
    score: float = float("nan")
    endpoint: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))
    error: str = ""


class AgentEvaluator:
    """Runs an agent on scenes and scores its plans with a scorer and the split's metric caches.

    Args:
        agent: the agent.
        scorer: ``FastScorer`` or ``ReferenceScorer``.
        cache_of: metric cache of a token.
    """

    def __init__(self, agent: Agent, scorer: Scorer, cache_of: Callable[[str], SceneCache]) -> None:
        self.agent = agent
        self.scorer = scorer
        self.cache_of = cache_of

    def plan(self, scene: Scene) -> Trajectory:
        """The agent's plan in ``scene``."""
        return self.agent.compute_trajectory(scene.get_agent_input(), scene if self.agent.requires_scene else None)

    def score_pair(
        self, scene: Scene, previous: Scene | None, *, score_previous: bool = True
    ) -> tuple[SceneResult, SceneResult | None]:
        """Score ``scene`` and pair it with the agent's plan in the previous frame's scene ``previous``.

        EC of the scene is the two-frame comfort between the two plans' simulated states; without ``previous``
        it is NaN (its weight is then dropped). With ``score_previous`` the previous scene is scored as a scene
        of its own (two-stage groups) and gets the same EC; otherwise its plan is only simulated from its logged
        ego state (one-stage EC) and no result is returned for it.
        """
        first, states = self._score(scene)
        if previous is None or states is None:
            return first, None
        second: SceneResult | None = None
        try:
            if score_previous:
                second, prev_states = self._score(previous)
                if prev_states is None:
                    return first, second
            else:
                prev_states = self._simulate(previous, self.plan(previous))
            dt = (scene.current_frame.timestamp - previous.current_frame.timestamp) / 1e6
            ec = float(
                extended_comfort(
                    states, prev_states, dt, self.scorer.simulation.dt, self.scorer.config.extended_comfort
                )
            )
        except (ValueError, KeyError) as e:
            first.valid, first.error = False, f"previous frame {previous.token}: {type(e).__name__}: {e}"
            first.sub_scores[:], first.score = np.nan, float("nan")
            return first, second
        for result in (first, second):
            if result is not None:
                result.sub_scores[SubScore.EC] = ec
                result.score = self._aggregate(result.sub_scores)
        return first, second

    def _simulate(self, scene: Scene, plan: Trajectory) -> np.ndarray:
        """Simulated states ``(41, 11)`` of a plan from the scene's logged current ego state."""
        ego = scene.current_frame.ego_status
        start = initial_state(ego.ego_pose, ego.ego_velocity, ego.ego_acceleration)
        return simulate_plans(
            plan.poses[None], plan.trajectory_sampling, start, self.scorer.simulation, where=f"scene {scene.token}"
        )[0]

    def _aggregate(self, sub_scores: np.ndarray) -> float:
        return float(aggregate(sub_scores[None], self.scorer.config.aggregation)[0])

    def _score(self, scene: Scene) -> tuple[SceneResult, np.ndarray | None]:
        """The scene's result and the simulated states of the agent's plan ``(41, 11)`` (None on failure)."""
        token = scene.token
        try:
            cache = self.cache_of(token)
            plan = self.plan(scene)
            result = self.scorer.score(cache, plan.poses[None], plan.trajectory_sampling)
            sub = result.sub_scores[0].copy()
            if self.scorer.config.human_penalty_filter and not cache.synthetic and cache.human_plan is not None:
                human = self.scorer.score(
                    cache, cache.human_plan[None], DEFAULT_SAMPLING, normalizer="batch", with_history=False
                )
                sub = human_filter(sub, human.sub_scores[0])
            end = relative_to_absolute(plan.poses[-1].astype(np.float64), cache.initial_state[POSE])[:2]
            return SceneResult(token, True, sub, self._aggregate(sub), end), result.states[0]
        except (ValueError, KeyError, FileNotFoundError) as e:
            return SceneResult(token, False, error=f"{type(e).__name__}: {e}"), None


# ---------------------------------------------------------------------------------------------- one stage
def evaluate_one_stage(
    tokens: list[str],
    scene_of: Callable[[str], Scene],
    previous_of: Callable[[str], Scene | None],
    evaluator: AgentEvaluator,
    progress: Callable[[int, int], None] | None = None,
) -> list[SceneResult]:
    """Score every token (EC against the previous frame where the log has one)."""
    results = []
    for i, token in enumerate(tokens):
        try:
            scene = scene_of(token)
            previous = previous_of(token)
        except (KeyError, ValueError, FileNotFoundError) as e:
            results.append(SceneResult(token, False, error=f"{type(e).__name__}: {e}"))
            continue
        first, _ = evaluator.score_pair(scene, previous, score_previous=False)
        results.append(first)
        if progress:
            progress(i + 1, len(tokens))
    return results


# ---------------------------------------------------------------------------------------------- two stage
@dataclass
class GroupResult:
    """Scores of one group.

    Attributes:
        token: the real scene's token.
        valid: whether every scene of the group was scored.
        stage_one: sub-scores of stage 1, mean of the real scene and its predecessor ``(9,)``.
        stage_two: proximity-weighted stage-2 sub-scores, mean of the now and previous sides ``(9,)``.
        score: the group's two-stage EPDMS.
        scenes: the per-scene results.
    """

    token: str
    valid: bool
    stage_one: np.ndarray
    stage_two: np.ndarray
    score: float
    scenes: list[SceneResult]


def evaluate_two_stage(
    groups: list[Group],
    stage_one: tuple[Callable[[str], Scene], Callable[[str], Scene | None]],
    stage_two_scene_of: Callable[[str], Scene],
    evaluator: AgentEvaluator,
    progress: Callable[[int, int], None] | None = None,
) -> list[GroupResult]:
    """Score every group; a group with any failed scene is invalid (its score NaN) but still reported."""
    scene_of, previous_of = stage_one
    out = []
    for i, group in enumerate(groups):
        scenes: list[SceneResult] = []
        try:
            previous = previous_of(group.orig)
            if previous is None or previous.token != group.prev:
                raise KeyError(f"group {group.orig}: previous frame {group.prev} not found")
            orig, prev = evaluator.score_pair(scene_of(group.orig), previous)
            assert prev is not None
            scenes += [orig, prev]
            now_results, prev_results = [], []
            for now_token, prev_token in group.pairs:
                a, b = evaluator.score_pair(stage_two_scene_of(now_token), stage_two_scene_of(prev_token))
                assert b is not None
                now_results.append(a)
                prev_results.append(b)
            scenes += now_results + prev_results
        except (KeyError, ValueError, FileNotFoundError) as e:
            scenes.append(SceneResult(group.orig, False, error=f"{type(e).__name__}: {e}"))
        if not all(s.valid for s in scenes):
            nan = np.full(NUM_SUB_SCORES, np.nan)
            out.append(GroupResult(group.orig, False, nan, nan.copy(), float("nan"), scenes))
        else:
            cache_of = evaluator.cache_of
            w_now = proximity_weights(
                orig.endpoint, np.stack([cache_of(r.token).initial_state[:2] for r in now_results])
            )
            w_prev = proximity_weights(
                prev.endpoint, np.stack([cache_of(r.token).initial_state[:2] for r in prev_results])
            )
            now_sub = np.stack([r.sub_scores for r in now_results])
            prev_sub = np.stack([r.sub_scores for r in prev_results])
            stage_two = 0.5 * (w_now @ now_sub + w_prev @ prev_sub)
            stage_one = 0.5 * (orig.sub_scores + prev.sub_scores)
            score = group_score(
                orig.score,
                prev.score,
                np.array([r.score for r in now_results]),
                np.array([r.score for r in prev_results]),
                w_now,
                w_prev,
            )
            out.append(GroupResult(group.orig, True, stage_one, stage_two, score, scenes))
        if progress:
            progress(i + 1, len(groups))
    return out

