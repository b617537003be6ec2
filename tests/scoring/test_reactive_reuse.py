"""Work that does not change between agents is done once: a plan's reactive rollout, the human filter's score.

Hand-made scenes on the T-junction fixture (``tests/scoring/scenes.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.agents.agent import Agent
from irl_vla.benchmarks.scorer_bench import ScorerBenchConfig, _traffic_side_by_side
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory
from irl_vla.evaluation.open_loop import AgentEvaluator
from irl_vla.scoring import reactive_traffic
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.pdm_closed import PDMClosedPlanner, plan_scene
from irl_vla.scoring.reactive_traffic import simulate_reactive_traffic
from irl_vla.scoring.scene_cache import build_scene_cache
from irl_vla.scoring.scorer import ScorerConfig
from tests.scoring.scenes import Obj, make_cache, make_scene, straight_plan

REACTIVE = ScorerConfig(traffic="reactive")
FOLLOWER = (Obj("vehicle", -52.0, -1.75, 0.0, 9.0, token="behind"), Obj("vehicle", -25.0, -1.75, 0.0, 6.0))


def _states(cache, *speeds: float) -> np.ndarray:
    return FastScorer().simulate(cache, np.stack([straight_plan(v) for v in speeds]), DEFAULT_SAMPLING)


def test_the_same_ego_states_get_the_rollout_they_got_before_and_others_their_own(monkeypatch):
    cache = make_cache(objects=FOLLOWER, ego_speed=8.0)
    runs = []
    run = reactive_traffic._Rollout.run

    def counting(self):
        runs.append(self.k)
        return run(self)

    monkeypatch.setattr(reactive_traffic._Rollout, "run", counting)
    stop, drive = _states(cache, 0.0), _states(cache, 9.0)
    first = simulate_reactive_traffic(cache, stop)
    assert simulate_reactive_traffic(cache, stop.copy()) is first  # same values: no second rollout
    other = simulate_reactive_traffic(cache, drive)
    assert runs == [1, 1]
    follower = first.index("behind")
    assert other.poses[0, -1, follower, 0] > first.poses[0, -1, follower, 0] + 1.0  # it reacts to each plan
    with pytest.raises(ValueError, match="read-only"):
        first.poses[0, 0, 0, 0] = 0.0  # a kept rollout cannot be changed by whoever gets it
    # equal to a rollout computed afresh
    fresh = simulate_reactive_traffic(make_cache(objects=FOLLOWER, ego_speed=8.0), stop)
    for name in ("poses", "speeds", "valid", "velocities", "is_idm"):
        np.testing.assert_array_equal(getattr(first, name), getattr(fresh, name), err_msg=name)


def test_a_scene_keeps_a_bounded_number_of_rollouts(monkeypatch):
    monkeypatch.setattr(reactive_traffic, "ROLLOUT_CACHE_SIZE", 2)
    cache = make_cache(objects=FOLLOWER, ego_speed=8.0)
    batches = [simulate_reactive_traffic(cache, _states(cache, v)) for v in (0.0, 4.0, 9.0)]
    kept = next(v for k, v in cache._derived.items() if k.startswith("reactive_rollouts/"))
    assert len(kept) == 2 and all(any(b is k for k in kept.values()) for b in batches[1:])
    assert simulate_reactive_traffic(cache, _states(cache, 0.0)) is not batches[0]  # the oldest went


class Straight(Agent):
    """Drives straight at a fixed speed."""

    requires_scene = False

    def __init__(self, speed: float) -> None:
        super().__init__()
        self.speed = speed

    def name(self) -> str:
        return f"straight_{self.speed}"

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        return Trajectory(straight_plan(self.speed).astype(np.float32), DEFAULT_SAMPLING)


def test_the_human_filter_scores_the_human_once_per_scene_for_every_agent():
    scene = make_scene(objects=FOLLOWER, ego_speed=8.0, token="s")

    def fresh_cache():
        return plan_scene(build_scene_cache(scene), PDMClosedPlanner(FastScorer()))

    class Counting(FastScorer):
        human_runs = 0

        def score(self, cache, plans, sampling, *, normalizer="pdm", with_history=True):
            Counting.human_runs += normalizer == "batch"
            return super().score(cache, plans, sampling, normalizer=normalizer, with_history=with_history)

    cache = fresh_cache()
    assert not cache.synthetic and cache.human_plan is not None
    scorer = Counting(REACTIVE)
    shared = [AgentEvaluator(Straight(v), scorer, lambda _: cache)._score(scene)[0] for v in (0.0, 6.0, 12.0)]
    assert Counting.human_runs == 1
    for v, result in zip((0.0, 6.0, 12.0), shared, strict=True):  # each as if scored alone
        own = fresh_cache()
        alone = AgentEvaluator(Straight(v), FastScorer(REACTIVE), lambda _, c=own: c)._score(scene)[0]
        np.testing.assert_array_equal(result.sub_scores, alone.sub_scores)


def test_the_scorer_bench_pays_for_every_reactive_round_and_reports_the_ratio(monkeypatch):
    """Kept rollouts must not make the bench's reactive rounds free: each round rolls every plan out again."""
    caches = [make_cache(objects=FOLLOWER, ego_speed=8.0, token=f"b{i}") for i in range(2)]
    runs = []
    run = reactive_traffic._Rollout.run
    monkeypatch.setattr(reactive_traffic._Rollout, "run", lambda self: runs.append(self.k) or run(self))
    cfg = ScorerBenchConfig(split_dir="unused", reactive_batch_sizes=[1, 2])
    records = list(_traffic_side_by_side(cfg, caches, np.random.default_rng(0), repeats=2))
    assert [r["name"] for r in records] == [
        "fast_non_reactive_K1",
        "fast_reactive_K1",
        "reactive_over_non_reactive_K1",
        "fast_non_reactive_K2",
        "fast_reactive_K2",
        "reactive_over_non_reactive_K2",
    ]
    assert runs == [1] * 2 * 3 + [2] * 2 * 3  # 2 scenes x (1 warm-up + 2 timed rounds) for each K
    ratio = records[2]
    assert ratio["time_ratio_wall"] == pytest.approx(records[1]["median_s"] / records[0]["median_s"], rel=1e-2)
