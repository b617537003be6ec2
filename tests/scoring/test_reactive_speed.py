"""Reactive traffic's cheap corridor tests change nothing: rollouts and scores as before them, and as exact tests give.

``reactive_golden.json`` holds what the implementation before the cheap tests (every candidate of a corridor's
bounding box tested with shapely) gave on the scenes and plans below: sub-scores, raw progress, and each vehicle's
last pose, last speed and number of frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.scoring import reactive_traffic
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.lane_path import LanePath, PathTable
from irl_vla.scoring.reactive_traffic import simulate_reactive_traffic
from irl_vla.scoring.reference_scorer import ReferenceScorer
from irl_vla.scoring.scorer import ScorerConfig
from tests.scoring.scenes import Obj, make_cache, shifted_plan, straight_plan

GOLDEN = json.loads((Path(__file__).parent / "reactive_golden.json").read_text())
REACTIVE = ScorerConfig(traffic="reactive")


def _vehicles(*rows: tuple[float, float, float, float]) -> tuple[Obj, ...]:
    """Vehicles from (x, y, heading, speed) rows."""
    return tuple(Obj("vehicle", *row) for row in rows)


SCENES = {  # a queue, a neighbouring lane, oncoming and crossing traffic; a close follower; lane ends
    "queue_and_junction": dict(
        ego_speed=9.0,
        objects=(
            *_vehicles(
                (-52.0, -1.75, 0.0, 11.0),
                (-25.0, -1.75, 0.0, 6.0),
                (-35.0, -5.25, 0.0, 10.0),
                (-46.0, -5.25, 0.0, 12.0),
                (5.0, 1.75, np.pi, 6.0),
                (1.75, -30.0, np.pi / 2, 8.0),
                (30.0, 1.75, np.pi, 9.0),
            ),
            Obj("pedestrian", -15.0, -9.0, np.pi / 2, 1.4),
            Obj("barrier", -12.0, -5.25),
        ),
    ),
    "close_follower": dict(
        ego_speed=6.0,
        objects=_vehicles(
            (-47.5, -1.75, 0.0, 9.0),
            (-55.0, -1.75, 0.0, 12.0),
            (-41.0, -5.25, 0.0, 7.0),
            (-20.0, -1.75, 0.0, 0.0),
            (-8.0, -7.0, -0.6, 4.0),
        ),
    ),
    "lane_end": dict(
        ego_x=-30.0,
        ego_speed=4.0,
        objects=_vehicles(
            (-14.0, -1.75, 0.0, 5.0), (-22.0, -5.25, 0.0, 8.0), (-38.0, -1.75, 0.0, 10.0), (1.75, -15.0, np.pi / 2, 6.0)
        ),
    ),
}
PLANS = np.stack(
    [
        straight_plan(0.0),
        straight_plan(4.0),
        straight_plan(9.0),
        straight_plan(13.0),
        shifted_plan(8.0, -3.5),
        shifted_plan(11.0, -3.5, 1.5),
        straight_plan(7.0, -1.0),
        shifted_plan(3.0, 2.0),
    ]
)


@pytest.fixture(scope="module")
def caches():
    return {name: make_cache(token=name, **kwargs) for name, kwargs in SCENES.items()}


@pytest.mark.parametrize("name", sorted(SCENES))
def test_scores_and_rollouts_equal_those_before_the_cheap_tests(caches, name):
    cache, golden = caches[name], GOLDEN[name]
    fast = FastScorer(REACTIVE).score(cache, PLANS, DEFAULT_SAMPLING)
    ref = ReferenceScorer(REACTIVE).score(cache, PLANS, DEFAULT_SAMPLING)
    np.testing.assert_array_equal(np.round(fast.sub_scores[:, :-1], 12), golden["sub_scores"])
    np.testing.assert_array_equal(ref.sub_scores[:, :-1], fast.sub_scores[:, :-1])  # both scorers, exactly
    np.testing.assert_allclose(fast.raw_progress, golden["raw_progress"], rtol=0, atol=1e-9)
    traffic = fast.traffic
    assert traffic is not None
    vehicles = [i for i, n in enumerate(traffic.names) if n == "vehicle"]
    np.testing.assert_allclose(traffic.poses[:, -1, vehicles, :2], golden["final_xy"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(traffic.speeds[:, -1, vehicles], golden["final_speed"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(traffic.valid[:, :, vehicles].sum(axis=1), golden["valid"])


def test_the_cheap_tests_decide_what_the_exact_tests_decide(caches, monkeypatch):
    """Every rollout equals, bit for bit, the rollout that sends every live entity to shapely's exact tests."""
    decided = {"misses": 0, "meets": 0}
    cheap = reactive_traffic._Rollout._candidates

    def live(alive: np.ndarray) -> np.ndarray:
        """(candidate, agent, entity) with both alive, the entity not the agent ``(K, A, A + 1)``."""
        out = alive[:, :, None] & np.concatenate([alive, np.ones_like(alive[:, :1])], axis=1)[:, None, :]
        out[:, np.arange(alive.shape[1]), np.arange(alive.shape[1])] = False
        return out

    def counting(self, *args):
        cand = cheap(self, *args)
        decided["misses"] += int((live(self.alive) & ~cand.near).sum())
        decided["meets"] += int(cand.inside.sum())
        return cand

    def exact(self, *args):
        everything = live(self.alive)
        return reactive_traffic._Candidates(everything, np.zeros_like(everything))

    for name, cache in caches.items():
        states = FastScorer().simulate(cache, PLANS, DEFAULT_SAMPLING)
        monkeypatch.setattr(reactive_traffic._Rollout, "_candidates", counting)
        cache._derived.clear()  # no rollouts kept from the other tests
        fast = simulate_reactive_traffic(cache, states)
        monkeypatch.setattr(reactive_traffic._Rollout, "_candidates", exact)
        cache._derived.clear()  # no footprints kept from the other run
        slow = simulate_reactive_traffic(cache, states)
        for field in ("poses", "speeds", "valid", "is_idm"):
            np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field), err_msg=f"{name}: {field}")
    assert decided["misses"] > 100 and decided["meets"] > 100  # the cheap tests settle both ways


def test_a_paths_stretch_ends_are_its_poses():
    rng = np.random.default_rng(0)
    path = LanePath(np.cumsum(rng.uniform(0.2, 2.0, (40, 2)) * [1.0, 0.3], axis=0), "lane")
    for start in rng.uniform(-2.0, path.end + 2.0, 50):
        end = start + rng.uniform(0.0, 15.0)
        line = path.stretch(start, end)
        np.testing.assert_array_equal(line[[0, -1]], path.pose_at(np.array([start, end]))[:, :2])
        inner = path.progress[(path.progress > path.clamp(start)) & (path.progress < path.clamp(end))]
        assert len(line) == len(inner) + 2
        ahead = path.stretch(start)  # to the path end; from the end itself, the last two vertices
        np.testing.assert_array_equal(ahead[0], path.pose_at(start)[:2] if start < path.end else path.xy[-2])


def test_path_table_segments_are_a_search_in_each_path():
    """The segment of a progress value: the last vertex at or before it (as a per-path binary search finds it)."""
    rng = np.random.default_rng(1)
    paths = [LanePath(np.cumsum(rng.uniform(0.2, 2.0, (n, 2)), axis=0), f"lane {n}") for n in (3, 4, 17, 40)]
    table = PathTable(paths)
    values = rng.uniform(-3.0, 80.0, (50, len(paths)))
    values[:4] = np.stack([p.progress[np.arange(4) % len(p.progress)] for p in paths], axis=1)  # on vertices
    values[4] = table.end
    got = table.segment(values)
    for row, path in enumerate(paths):
        s = np.clip(values[:, row], 0.0, path.end)
        want = np.clip(np.searchsorted(path.progress, s, side="right") - 1, 0, len(path.progress) - 2)
        np.testing.assert_array_equal(got[:, row], want)


def test_one_agents_idm_step_on_floats_equals_the_vectorised_step():
    rng = np.random.default_rng(2)
    cfg = reactive_traffic.ReactiveTrafficConfig()
    p, v, v0, d, vl = (rng.uniform(lo, hi, 500) for lo, hi in ((0, 80), (0, 15), (5, 15), (0.5, 60), (-5, 15)))
    v[:20] = 0.0
    want_p, want_v = reactive_traffic.idm_step(p, v, v0, d, vl, np.zeros(500), cfg)
    for i in range(500):
        got = reactive_traffic.idm_step(float(p[i]), float(v[i]), float(v0[i]), float(d[i]), float(vl[i]), 0.0, cfg)
        assert got == (want_p[i], want_v[i])  # bit for bit
