"""Open-loop (NAVSIM-style, non-reactive) evaluation of an agent on a split.

One-stage (``synth_navtest``): every scene is scored; EC pairs each scene with the agent's plan one frame
(0.5 s) earlier in the same log; the human filter forgives what the logged expert also fails; the split score is
the plain mean. Two-stage (``synth_navhard`` with its re-simulated stage-2 scenes): groups of a real scene, its
predecessor and stage-2 (now, previous) pairs started around the expert's endpoint, combined with Gaussian
proximity weights (NAVSIM's pseudo-simulation aggregation). A scene that fails (the agent raises, or returns a
non-finite or implausibly large plan) is reported with ``valid = false`` and its error, and scores
``FAILED_SCORE`` (0) in the split's EPDMS, so failing never raises a score; summaries also report the mean
over the valid scenes, labelled as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from irl_vla.agents.agent import Agent
from irl_vla.data.enums import XY
from irl_vla.data.geometry import relative_to_absolute
from irl_vla.data.scene import Scene
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory
from irl_vla.data.two_stage import Group
from irl_vla.scoring.aggregation import aggregate
from irl_vla.scoring.comfort import extended_comfort
from irl_vla.scoring.metric_cache import MetricCacheError
from irl_vla.scoring.reactive_traffic import TrafficMode, simulate_reactive_traffic_rows
from irl_vla.scoring.scene_aggregation import group_score, human_filter, mean_defined, proximity_weights
from irl_vla.scoring.scene_cache import SceneCache
from irl_vla.scoring.scorer import Scorer
from irl_vla.scoring.simulation import simulate_plans
from irl_vla.scoring.states import POSE, initial_state
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore

#: What a failed scene scores in the split's EPDMS.
FAILED_SCORE = 0.0


class AgentError(RuntimeError):
    """The agent raised while planning a scene (wraps its exception, naming the agent and the token)."""


@dataclass
class SceneResult:
    """Scores of one scene.

    Attributes:
        token: scene token.
        valid: whether scoring succeeded.
        sub_scores: ``(n_sub,)`` after the human filter (NaN when invalid).
        score: EPDMS of the scene (NaN when invalid; ``split_score`` is what it counts for).
        endpoint: global (x, y) of the plan's last pose (two-stage weights).
        error: why it failed.
        start: global (x, y) of the scene's initial rear axle, once its cache is read (two-stage weights).
    """

    token: str
    valid: bool
    sub_scores: np.ndarray = field(default_factory=lambda: np.full(NUM_SUB_SCORES, np.nan))
    score: float = float("nan")
    endpoint: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))
    error: str = ""
    start: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))

    @property
    def split_score(self) -> float:
        """The scene's EPDMS in split averages: ``FAILED_SCORE`` when it failed."""
        return self.score if self.valid else FAILED_SCORE

    def fail(self, error: str) -> None:
        """Mark the scene failed with ``error`` (its sub-scores and score become undefined)."""
        self.valid, self.error = False, error
        self.sub_scores[:], self.score = np.nan, float("nan")


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
        self.planned: dict[str, Trajectory] = {}  # plans made ahead (``roll_out_together``), used once

    def plan(self, scene: Scene) -> Trajectory:
        """The agent's plan in ``scene`` (the one made ahead for it, if any).

        Raises:
            AgentError: whatever the agent raised, naming the agent and the scene token.
        """
        ahead = self.planned.pop(scene.token, None)
        if ahead is not None:
            return ahead
        try:
            return self.agent.compute_trajectory(scene.get_agent_input(), scene if self.agent.requires_scene else None)
        except MetricCacheError:
            raise  # the suite's data (a privileged agent reads the metric cache), not the agent, failed: stop
        except Exception as e:  # an agent's failure on a scene is a result (it scores 0), not a crash
            raise AgentError(f"agent {self.agent.name()} failed on scene {scene.token}: {type(e).__name__}: {e}") from e

    def score_pair(
        self, scene: Scene, previous: Scene | None, *, score_previous: bool = True
    ) -> tuple[SceneResult, SceneResult | None]:
        """Score ``scene`` and pair it with the agent's plan in the previous frame's scene ``previous``.

        EC of the scene is the two-frame comfort between the two plans' simulated states; without ``previous``
        it is NaN (its weight is then dropped). With ``score_previous`` the previous scene is scored as a scene
        of its own (two-stage groups) and gets the same EC; otherwise its plan is only simulated from its logged
        ego state (one-stage EC) and no result is returned for it; if the agent fails there, the scene fails.
        When either scene of a scored pair fails, the other keeps an undefined EC.
        """
        first, states = self._score(scene)
        if previous is None:
            return first, None
        second: SceneResult | None = None
        try:
            if score_previous:
                second, prev_states = self._score(previous)
            else:
                prev_states = None if states is None else self._simulate(previous, self.plan(previous))
            if states is None or prev_states is None:
                return first, second
            dt = (scene.current_frame.timestamp - previous.current_frame.timestamp) / 1e6
            ec = float(
                extended_comfort(
                    states, prev_states, dt, self.scorer.simulation.dt, self.scorer.config.extended_comfort
                )
            )
        except (AgentError, ValueError, KeyError) as e:
            first.fail(f"previous frame {previous.token}: {type(e).__name__}: {e}")
            return first, second
        for result in (first, second):
            if result is not None:
                result.sub_scores[SubScore.EC] = ec
                result.score = self._aggregate(result.sub_scores)
        return first, second

    def _simulate(self, scene: Scene, plan: Trajectory) -> np.ndarray:
        """Simulated states ``(T, n_state)`` of a plan from the scene's logged current ego state."""
        ego = scene.current_frame.ego_status
        start = initial_state(ego.ego_pose, ego.ego_velocity, ego.ego_acceleration)
        return simulate_plans(
            plan.poses[None], plan.trajectory_sampling, start, self.scorer.simulation, where=f"scene {scene.token}"
        )[0]

    def _aggregate(self, sub_scores: np.ndarray) -> float:
        return float(aggregate(sub_scores[None], self.scorer.config.aggregation)[0])

    def _human_sub_scores(self, cache: SceneCache) -> np.ndarray:
        """Sub-scores ``(n_sub,)`` of the logged human's plan for the filter, kept with the scene for every agent."""
        scorer = self.scorer
        key = f"human_filter/{scorer.name}/{scorer.config}/{scorer.simulation}"
        if key not in cache._derived:
            plan = cache.human_plan[None]
            human = scorer.score(cache, plan, DEFAULT_SAMPLING, normalizer="batch", with_history=False)
            cache._derived[key] = human.sub_scores[0]
        return cache._derived[key]

    def _score(self, scene: Scene) -> tuple[SceneResult, np.ndarray | None]:
        """The scene's result and the simulated states of the agent's plan ``(T, n_state)`` (None on failure)."""
        token = scene.token
        start = np.full(2, np.nan)
        try:
            cache = self.cache_of(token)
            start = cache.initial_state[XY].copy()
            plan = self.plan(scene)
            result = self.scorer.score(cache, plan.poses[None], plan.trajectory_sampling)
            sub = result.sub_scores[0].copy()
            if self.scorer.config.human_penalty_filter and not cache.synthetic and cache.human_plan is not None:
                sub = human_filter(sub, self._human_sub_scores(cache))
            end = relative_to_absolute(plan.poses[-1].astype(np.float64), cache.initial_state[POSE])[XY]
            return SceneResult(token, True, sub, self._aggregate(sub), end, start=start), result.states[0]
        except (AgentError, ValueError, KeyError, FileNotFoundError) as e:
            return SceneResult(token, False, error=f"{type(e).__name__}: {e}", start=start), None


# ---------------------------------------------------------------------------------------------- one stage
def evaluate_one_stage(
    tokens: list[str],
    scene_of: Callable[[str], Scene],
    previous_of: Callable[[str], Scene | None],
    evaluator: AgentEvaluator,
    progress: Callable[[int, int], None] | None = None,
    *,
    pair_listed_only: bool = False,
) -> list[SceneResult]:
    """Score every token (EC against the previous frame where the log has one).

    With ``pair_listed_only`` (NAVSIM splits), EC pairs a token with the previous frame only when that frame is
    itself among ``tokens``, as navsim's one-stage script does; otherwise EC is undefined there.
    """
    listed = set(tokens) if pair_listed_only else None
    results = []
    for i, token in enumerate(tokens):
        try:
            scene = scene_of(token)
            previous = previous_of(token)
            if listed is not None and previous is not None and previous.token not in listed:
                previous = None
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

    Failed scenes count as ``FAILED_SCORE`` in the three scores; the sub-score columns are means over the valid
    scenes (NaN where none is).

    Attributes:
        token: the real scene's token.
        valid: whether every scene of the group was scored.
        stage_one: sub-scores of stage 1, mean of the real scene and its predecessor ``(n_sub,)``.
        stage_two: proximity-weighted stage-2 sub-scores, mean of the now and previous sides ``(n_sub,)``.
        score: the group's two-stage EPDMS ``1/2 [S1(orig) sum_j w_j S2(now_j) + S1(prev) sum_j w_j S2(prev_j)]``.
        stage_one_scenes: results of the real scene and its predecessor (what of them was scored).
        stage_two_scenes: results of the stage-2 scenes, the "now" sides then the "previous" sides.
        stage_one_score: mean EPDMS of the two stage-1 scenes.
        stage_two_score: mean over the two sides of the proximity-weighted stage-2 EPDMS.
    """

    token: str
    valid: bool
    stage_one: np.ndarray
    stage_two: np.ndarray
    score: float
    stage_one_scenes: list[SceneResult]
    stage_two_scenes: list[SceneResult]
    stage_one_score: float
    stage_two_score: float

    @property
    def scenes(self) -> list[SceneResult]:
        """Every scene's result, stage 1 first."""
        return self.stage_one_scenes + self.stage_two_scenes


def _valid_mean(results: list[SceneResult], weights: np.ndarray | None = None) -> np.ndarray:
    """Sub-scores ``(n_sub,)`` averaged over the valid results (weights renormalised over them); NaN if none."""
    w = np.ones(len(results)) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = np.array([r.valid for r in results], dtype=bool)
    if not ok.any() or w[ok].sum() <= 0.0:
        return np.full(NUM_SUB_SCORES, np.nan)
    sub = np.stack([r.sub_scores for r in results])[ok]
    return (w[ok] / w[ok].sum()) @ sub


def _group_result(
    token: str, orig: SceneResult, prev: SceneResult, now_results: list[SceneResult], prev_results: list[SceneResult]
) -> GroupResult:
    """Aggregate one group's scene results (NAVSIM's proximity weights; failed scenes score 0)."""
    # a failed stage-1 plan has no endpoint: its weights are uniform, as NAVSIM's NaN fallback gives
    w_now = proximity_weights(orig.endpoint, np.stack([r.start for r in now_results]))
    w_prev = proximity_weights(prev.endpoint, np.stack([r.start for r in prev_results]))
    s_now = np.array([r.split_score for r in now_results])
    s_prev = np.array([r.split_score for r in prev_results])
    stage_one = mean_defined([_valid_mean([orig]), _valid_mean([prev])])
    stage_two = mean_defined([_valid_mean(now_results, w_now), _valid_mean(prev_results, w_prev)])
    score = group_score(orig.split_score, prev.split_score, s_now, s_prev, w_now, w_prev)
    scenes_two = now_results + prev_results
    valid = all(r.valid for r in [orig, prev, *scenes_two])
    return GroupResult(
        token,
        valid,
        stage_one,
        stage_two,
        score,
        [orig, prev],
        scenes_two,
        0.5 * (orig.split_score + prev.split_score),
        0.5 * (float(w_now @ s_now) + float(w_prev @ s_prev)),
    )


#: What scores an agent on two-stage groups: its real scenes (scene, previous scene), its stage-2 scenes, its evaluator.
AgentRun = tuple[tuple[Callable[[str], Scene], Callable[[str], Scene | None]], Callable[[str], Scene], AgentEvaluator]


def evaluate_two_stage(
    groups: list[Group],
    stage_one: tuple[Callable[[str], Scene], Callable[[str], Scene | None]],
    stage_two_scene_of: Callable[[str], Scene],
    evaluator: AgentEvaluator,
    progress: Callable[[int, int], None] | None = None,
) -> list[GroupResult]:
    """Score every group; a failed scene scores 0 in its group, and the group is reported invalid.

    A group whose scenes cannot be read at all scores 0 in every stage.
    """
    return evaluate_two_stage_agents(groups, [(stage_one, stage_two_scene_of, evaluator)], progress)[0]


def evaluate_two_stage_agents(
    groups: list[Group], agents: list[AgentRun], progress: Callable[[int, int], None] | None = None
) -> list[list[GroupResult]]:
    """``evaluate_two_stage`` for several agents, group by group; each agent's group results, in their order.

    Each group's metric caches are then read once, and what they derive (the map's test structures, PDM-Closed's
    states, reactive traffic's agents and footprints) serves every agent.
    """
    out: list[list[GroupResult]] = [[] for _ in agents]
    for i, group in enumerate(groups):
        runs = [_scenes_once(run) for run in agents]
        if len(runs) > 1:
            _roll_out_together(group, runs)
        for results, (stage_one, stage_two_scene_of, evaluator) in zip(out, runs, strict=True):
            results.append(_evaluate_group(group, stage_one, stage_two_scene_of, evaluator))
            evaluator.planned.clear()
        if progress:
            progress(i + 1, len(groups))
    return out


def _scenes_once(run: AgentRun) -> AgentRun:
    """``run`` whose scene readers read each scene once (for one group: planning ahead, then scoring)."""
    (scene_of, previous_of), stage_two_scene_of, evaluator = run
    read: dict[tuple[int, str], Scene | None] = {}

    def once(which: int, fn: Callable[[str], Scene | None]) -> Callable[[str], Scene | None]:
        def get(token: str) -> Scene | None:
            if (which, token) not in read:
                read[which, token] = fn(token)
            return read[which, token]

        return get

    return (once(0, scene_of), once(1, previous_of)), once(2, stage_two_scene_of), evaluator  # type: ignore[return-value]


def _roll_out_together(group: Group, runs: list[AgentRun]) -> None:
    """Plan every agent ahead in each scene of ``group`` and roll reactive traffic out for all plans at once.

    With reactive traffic every plan needs its own rollout, and a rollout's cost is mostly per step, not per plan:
    one rollout of the K plans of a scene (the agents', and the human filter's) costs much less than K rollouts. The
    scene keeps each plan's rollout (bit-identical to rolling it out alone), and scoring then finds it. Anything
    that fails here (reading a scene, an agent, a plan the simulation refuses, a rollout) is left for the scoring to
    meet and report as it always does; plans are made in the order the scoring asks for them.
    """
    scorer = runs[0][2].scorer
    if scorer.config.traffic != TrafficMode.REACTIVE or any(run[2].scorer is not scorer for run in runs):
        return
    plans: dict[str, list[np.ndarray]] = {}
    for (scene_of, previous_of), stage_two_scene_of, evaluator in runs:
        readers: list[tuple[str, Callable[[str], Scene | None]]] = [(group.orig, scene_of)]
        readers += [(group.prev, lambda _t, f=previous_of: f(group.orig))]  # the previous frame of the real scene
        readers += [(t, stage_two_scene_of) for pair in group.pairs for t in pair]
        for token, read in readers:
            try:
                scene = read(token)
                if scene is None or scene.token != token:
                    continue
                cache = evaluator.cache_of(token)
                plan = evaluator.plan(scene)
                evaluator.planned[token] = plan
                states = scorer.simulate(cache, plan.poses[None], plan.trajectory_sampling)
            except Exception:  # met again, and reported, when the scene is scored
                continue
            plans.setdefault(token, []).append(states)
    for token, states in plans.items():
        try:
            cache = runs[0][2].cache_of(token)
            if scorer.config.human_penalty_filter and not cache.synthetic and cache.human_plan is not None:
                states.append(scorer.simulate(cache, cache.human_plan[None], DEFAULT_SAMPLING))
            simulate_reactive_traffic_rows(cache, np.concatenate(states), scorer.config.reactive)
        except Exception:  # each plan is rolled out alone when scored, and fails there if it must
            continue


def _evaluate_group(
    group: Group,
    stage_one: tuple[Callable[[str], Scene], Callable[[str], Scene | None]],
    stage_two_scene_of: Callable[[str], Scene],
    evaluator: AgentEvaluator,
) -> GroupResult:
    """One group's result for one agent (see ``evaluate_two_stage``)."""
    scene_of, previous_of = stage_one
    try:
        previous = previous_of(group.orig)
        if previous is None or previous.token != group.prev:
            raise KeyError(f"group {group.orig}: previous frame {group.prev} not found")
        orig, prev = evaluator.score_pair(scene_of(group.orig), previous)
        assert prev is not None
        now_results, prev_results = [], []
        for now_token, prev_token in group.pairs:
            a, b = evaluator.score_pair(stage_two_scene_of(now_token), stage_two_scene_of(prev_token))
            assert b is not None
            now_results.append(a)
            prev_results.append(b)
        return _group_result(group.orig, orig, prev, now_results, prev_results)
    except (KeyError, ValueError, FileNotFoundError) as e:
        failed = SceneResult(group.orig, False, error=f"{type(e).__name__}: {e}")
        nan = np.full(NUM_SUB_SCORES, np.nan)
        return GroupResult(group.orig, False, nan, nan.copy(), FAILED_SCORE, [failed], [], FAILED_SCORE, FAILED_SCORE)
