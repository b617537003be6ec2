"""Reactive traffic (navsim's two-stage policy) on hand-made T-junction scenes, and its use by both scorers.

Lane ``w_in_0`` runs east from x = -60 to -10 at y = -1.75; the ego starts at x = -40. An agent's path is its one
starting lane, ending at x = -11 (the final baseline vertex is dropped), where it stops as if behind a parked car.
"""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.lane_path import LanePath, PathTable
from irl_vla.scoring.reactive_traffic import ReactiveTrafficConfig, simulate_reactive_traffic
from irl_vla.scoring.reference_scorer import ReferenceScorer
from irl_vla.scoring.scene_cache import load_scene_cache, save_scene_cache
from irl_vla.scoring.scorer import Geometric, ScorerConfig
from irl_vla.scoring.states import footprint
from irl_vla.scoring.sub_scores import SubScore
from tests.scoring.scenes import Obj, make_cache, straight_plan

REACTIVE = ScorerConfig(traffic="reactive")


def _rollout(cache, plans: np.ndarray):
    states = FastScorer().simulate(cache, plans, DEFAULT_SAMPLING)
    return states, simulate_reactive_traffic(cache, states)


def _gap_behind(states: np.ndarray, follower_x: np.ndarray, length: float) -> np.ndarray:
    """Bumper gap [m] from a follower (centre x ``(T,)``) to the ego's true rear (states ``(T, 11)``)."""
    ego_rear = footprint(states)[:, 1, 0]  # rear-left corner x
    return ego_rear - (follower_x + length / 2)


def test_a_vehicle_behind_brakes_when_the_ego_stops_and_stops_in_time_if_it_can():
    cache = make_cache(objects=(Obj("vehicle", -58.0, -1.75, 0.0, 5.0, token="behind"),))
    states, traffic = _rollout(cache, np.stack([straight_plan(10.0), straight_plan(0.0)]))
    j = traffic.index("behind")
    go, stop = traffic.speeds[0, :, j], traffic.speeds[1, :, j]
    np.testing.assert_array_equal(go[:2], stop[:2])  # step 1 sees the ego's t = 0 state: same in both
    assert np.all(stop[2:] < go[2:])  # then it reacts to the ego of its own plan, a step late
    assert stop[-1] < go[-1] - 3.0  # it slows down behind the stopped ego, speeds up behind the other
    assert _gap_behind(states[1], traffic.poses[1, :, j, 0], 4.5).min() > 0.0  # no contact
    for scorer in (FastScorer(REACTIVE), ReferenceScorer(REACTIVE)):
        sub = scorer.score(cache, np.stack([straight_plan(0.0)]), DEFAULT_SAMPLING).sub_scores[0]
        assert sub[SubScore.NC] == 1.0


def test_a_vehicle_behind_that_cannot_stop_rear_ends_the_ego_and_it_is_not_the_egos_fault():
    cache = make_cache(objects=(Obj("vehicle", -53.5, -1.75, 0.0, 10.0, token="behind"),))
    states, traffic = _rollout(cache, np.stack([straight_plan(0.0)]))
    j = traffic.index("behind")
    v = traffic.speeds[0, :, j]
    assert np.all(np.diff(v[4:]) <= 0.0) and v[-1] < 10.0  # it brakes ...
    assert np.diff(v).min() >= -0.2 - 1e-9  # ... at most 2 m/s^2 ...
    assert _gap_behind(states[0], traffic.poses[0, :, j, 0], 4.5).min() < 0.0  # ... which is not enough
    for scorer in (FastScorer(REACTIVE), ReferenceScorer(REACTIVE)):
        result = scorer.score(cache, np.stack([straight_plan(0.0)]), DEFAULT_SAMPLING)
        assert result.sub_scores[0, SubScore.NC] == 1.0  # rear-ended: not at fault


def test_a_vehicle_ahead_is_unaffected_by_the_ego():
    cache = make_cache(ego_speed=5.0, objects=(Obj("vehicle", -25.0, -1.75, 0.0, 8.0, token="ahead"),))
    _, traffic = _rollout(cache, np.stack([straight_plan(0.0), straight_plan(5.0), straight_plan(3.0, 0.5)]))
    j = traffic.index("ahead")
    for k in (1, 2):
        np.testing.assert_array_equal(traffic.poses[k, :, j], traffic.poses[0, :, j])
        np.testing.assert_array_equal(traffic.speeds[k, :, j], traffic.speeds[0, :, j])
    assert traffic.speeds[0, 1, j] == pytest.approx(8.0 - 0.2)  # it brakes for its lane's end (-11 m), 14 m ahead
    assert traffic.poses[0, -1, j, 0] <= -11.0 + 1e-9
    assert traffic.is_idm[:, 1:, j].all()


def test_pedestrians_and_static_objects_are_replayed_unchanged_even_under_the_initial_ego():
    objects = (
        Obj("pedestrian", -20.0, -8.0, np.pi / 2, 1.5, token="walker"),
        Obj("traffic_cone", -30.0, 2.0, token="cone"),
        Obj("traffic_cone", -38.5, -1.75, token="under_ego"),  # overlaps the ego's box at t = 0
    )
    cache = make_cache(objects=objects)
    replay = cache.traffic.replay
    assert "under_ego" not in cache.tracks.tokens  # log replay drops it ...
    _, traffic = _rollout(cache, np.stack([straight_plan(10.0), straight_plan(0.0)]))
    for token in ("walker", "cone", "under_ego"):  # ... reactive traffic keeps it, every step, every candidate
        j, r = traffic.index(token), replay.tokens.index(token)
        for k in range(2):
            np.testing.assert_array_equal(traffic.poses[k, :, j], replay.poses[:, r])
            np.testing.assert_array_equal(traffic.valid[k, :, j], replay.valid[:, r])
        assert not traffic.is_idm[:, :, j].any()
    # the ego overlaps a static object at t = 0 while moving: at fault (navsim keeps it in frame 0)
    result = FastScorer(REACTIVE).score(cache, np.stack([straight_plan(10.0)]), DEFAULT_SAMPLING)
    assert result.sub_scores[0, SubScore.NC] == 0.5


def test_parked_vehicles_stay_frozen_and_off_lane_movers_vanish():
    objects = (
        Obj("vehicle", -30.0, -9.5, 0.0, 0.0, token="parked"),  # off every lane, stationary
        Obj("vehicle", -20.0, -9.5, 0.0, 3.0, token="mover"),  # off every lane, moving
    )
    cache = make_cache(objects=objects)
    _, traffic = _rollout(cache, np.stack([straight_plan(10.0)]))
    parked, mover = traffic.index("parked"), traffic.index("mover")
    assert traffic.valid[0, :, parked].all()
    np.testing.assert_array_equal(traffic.poses[0, :, parked], np.broadcast_to([-30.0, -9.5, 0.0], (41, 3)))
    assert traffic.valid[0, 0, mover] and not traffic.valid[0, 1:, mover].any()


def test_the_pdm_closed_reference_is_scored_against_the_traffic_of_the_agents_plan(monkeypatch):
    cache = make_cache(objects=(Obj("vehicle", -53.5, -1.75, 0.0, 10.0), Obj("vehicle", -25.0, -1.75, 0.0, 8.0)))
    scorer = FastScorer(REACTIVE)
    seen = []
    original = FastScorer.geometric_metrics

    def spy(self, cache_, states, traffic=None):
        seen.append((states, traffic))
        return original(self, cache_, states, traffic)

    monkeypatch.setattr(FastScorer, "geometric_metrics", spy)
    plans = np.stack([straight_plan(0.0), straight_plan(6.0)])
    result = scorer.score(cache, plans, DEFAULT_SAMPLING)
    (_, agent_traffic), (pdm_states, pdm_traffic) = seen
    assert agent_traffic is result.traffic and pdm_traffic is result.traffic  # one rollout per plan, shared
    np.testing.assert_array_equal(pdm_states, np.repeat(scorer.reference_states(cache), 2, axis=0))
    # the traffic each plan saw differs, so PDM-Closed is scored twice, once against each
    assert not np.array_equal(result.traffic.poses[0], result.traffic.poses[1])
    monkeypatch.setattr(FastScorer, "geometric_metrics", original)
    own = scorer.traffic(cache, scorer.reference_states(cache))
    ref = scorer.geometric_metrics(cache, pdm_states, result.traffic)
    mult = [Geometric.NC, Geometric.DAC, Geometric.DDC, Geometric.TLC]
    norm = np.maximum(result.raw_progress * result.multiplier, ref[:, Geometric.PROGRESS] * ref[:, mult].prod(1))
    np.testing.assert_allclose(result.sub_scores[:, SubScore.EP], np.clip(result.raw_progress / norm, 0, 1))
    assert not np.array_equal(own.poses[0], result.traffic.poses[0])  # not the traffic of its own plan


def test_fast_and_reference_scorers_agree_with_reactive_traffic():
    rng = np.random.default_rng(3)
    objects = (
        Obj("vehicle", -53.0, -1.75, 0.0, 11.0),
        Obj("vehicle", -30.0, -5.25, 0.0, 9.0),
        Obj("vehicle", -48.0, -5.25, 0.0, 12.0),
        Obj("vehicle", -22.0, -1.75, 0.0, 6.0),
        Obj("vehicle", 20.0, 1.75, np.pi, 9.0),
        Obj("pedestrian", -15.0, -9.0, np.pi / 2, 1.4),
        Obj("barrier", -12.0, -5.25),
    )
    cache = make_cache(objects=objects)
    speeds = rng.uniform(0.0, 14.0, 12)
    laterals = rng.uniform(-4.0, 1.0, 12)
    plans = np.stack([straight_plan(s, lat) for s, lat in zip(speeds, laterals, strict=True)])
    fast = FastScorer(REACTIVE).score(cache, plans, DEFAULT_SAMPLING)
    ref = ReferenceScorer(REACTIVE).score(cache, plans, DEFAULT_SAMPLING)
    np.testing.assert_array_equal(fast.sub_scores[:, :-1] != ref.sub_scores[:, :-1], False)
    np.testing.assert_allclose(fast.raw_progress, ref.raw_progress, atol=1e-6)
    assert set(fast.sub_scores[:, SubScore.NC]) > {1.0}  # collisions happen, so agreement is not vacuous
    plain = FastScorer().score(cache, plans, DEFAULT_SAMPLING)
    assert not np.array_equal(plain.sub_scores, fast.sub_scores)


def test_one_rollout_per_candidate_equals_the_rollouts_of_single_candidates():
    cache = make_cache(objects=(Obj("vehicle", -53.5, -1.75, 0.0, 10.0), Obj("vehicle", -48.0, -5.25, 0.0, 12.0)))
    plans = np.stack([straight_plan(0.0), straight_plan(8.0), straight_plan(4.0, -3.5)])
    _, batch = _rollout(cache, plans)
    for k in range(len(plans)):
        _, one = _rollout(cache, plans[k : k + 1])
        np.testing.assert_allclose(batch.poses[k], one.poses[0], atol=1e-9)
        np.testing.assert_array_equal(batch.valid[k], one.valid[0])


def test_the_traffic_inputs_survive_the_cache_file(tmp_path):
    cache = make_cache(objects=(Obj("vehicle", -53.5, -1.75, 0.0, 10.0), Obj("pedestrian", -20.0, 5.0)))
    save_scene_cache(cache, tmp_path / "c.npz")
    loaded = load_scene_cache(tmp_path / "c.npz")
    a, b = cache.traffic, loaded.traffic
    assert a is not None and b is not None
    assert (a.vehicle_tokens, a.segment_ids, a.replay.tokens) == (b.vehicle_tokens, b.segment_ids, b.replay.tokens)
    np.testing.assert_array_equal(a.vehicle_snapped, b.vehicle_snapped)
    np.testing.assert_array_equal(a.segment_baselines[0], b.segment_baselines[0])
    plans = np.stack([straight_plan(0.0)])
    states = FastScorer().simulate(cache, plans, DEFAULT_SAMPLING)
    np.testing.assert_array_equal(
        simulate_reactive_traffic(cache, states).poses, simulate_reactive_traffic(loaded, states).poses
    )


def test_a_scorer_config_names_its_traffic_mode():
    with pytest.raises(ValueError, match="traffic"):
        ScorerConfig(traffic="replay")
    with pytest.raises(ValueError, match="headway"):
        ReactiveTrafficConfig(headway=0.0)


def test_lane_paths_drop_the_final_and_repeated_vertices_and_tables_agree():
    path = LanePath(np.array([[0.0, 0.0], [5.0, 0.0], [5.0, 0.0], [9.0, 3.0], [9.0, 8.0]]), "lane")
    np.testing.assert_array_equal(path.xy, [[0.0, 0.0], [5.0, 0.0], [9.0, 3.0]])  # the last vertex is gone
    assert path.end == pytest.approx(10.0)
    np.testing.assert_allclose(
        path.pose_at(np.array([-1.0, 2.5, 20.0])), [[0, 0, 0], [2.5, 0, 0.3218], [9, 3, np.pi / 2]], atol=1e-4
    )
    with pytest.raises(ValueError, match="fewer than 2"):
        LanePath(np.array([[0.0, 0.0], [1.0, 0.0]]), "short lane")
    arc = LanePath(np.stack([10 * np.cos(np.linspace(0, 3, 40)), 10 * np.sin(np.linspace(0, 3, 40))], 1), "arc")
    table = PathTable([path, arc])
    q = np.array([[0.0, 3.3], [7.5, 100.0], [10.0, -2.0]])
    expected = np.stack([np.stack([path.pose_at(a), arc.pose_at(b)]) for a, b in q])
    np.testing.assert_array_equal(table.pose_at(q), expected)
    expected = np.stack([np.stack([path.bounds_ahead(a), arc.bounds_ahead(b)]) for a, b in q])
    np.testing.assert_array_equal(table.bounds_ahead(q), expected)
