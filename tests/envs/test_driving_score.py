"""Driving-score arithmetic against hand-computed route results, and the statistics JSON layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from irl_vla.envs.driving_score import comfort_fraction, global_score, score_route
from irl_vla.envs.env import TerminationReason
from irl_vla.envs.infractions import STATISTICS_INFRACTION_KEYS, Infraction, InfractionKind
from irl_vla.envs.statistics import LABELS, write_statistics
from irl_vla.envs.trace import TraceIndex

K = InfractionKind


def event(kind: InfractionKind, value: float | None = None) -> Infraction:
    return Infraction(kind, 1.0, np.zeros(2), value=value)


def three_routes():
    a = score_route(
        "a", 100.0, 100.0, [event(K.COLLISION_VEHICLE), event(K.RED_LIGHT)], TerminationReason.ROUTE_COMPLETED
    )
    b = score_route(
        "b",
        200.0,
        50.0,
        [event(K.OFF_ROAD, 20.0), event(K.STOP_SIGN), event(K.BLOCKED)],
        TerminationReason.BLOCKED,
    )
    c = score_route("c", 300.0, 100.0, [], TerminationReason.ROUTE_COMPLETED)
    return a, b, c


def test_route_scores_by_hand() -> None:
    a, b, c = three_routes()
    assert a.penalty == pytest.approx(0.6 * 0.7) and a.driving_score == pytest.approx(42.0)
    assert a.status == "Completed" and not a.success
    # 20 m off-road of the 100 m driven = 20 % -> x0.8; stop sign x0.8; blocked ends the route, no factor
    assert b.penalty == pytest.approx(0.8 * 0.8) and b.driving_score == pytest.approx(32.0)
    assert b.status == "Failed - Agent got blocked"
    assert c.driving_score == 100.0 and c.status == "Perfect" and c.success
    slow = [event(K.MIN_SPEED, 50.0)]
    lb2 = score_route("d", 100.0, 100.0, slow, TerminationReason.ROUTE_COMPLETED)
    assert lb2.penalty == pytest.approx(1 - 0.3 * 0.5) and lb2.success  # min speed never fails a route
    b2d = score_route("d", 100.0, 100.0, slow, TerminationReason.ROUTE_COMPLETED, penalise_min_speed=False)
    assert b2d.penalty == 1.0
    with pytest.raises(ValueError, match="route e: route completion 120"):
        score_route("e", 100.0, 120.0, [], None)


def test_global_scores_are_means_over_routes() -> None:
    routes = list(three_routes())
    score = global_score(routes)
    assert score.driving_score == pytest.approx((42 + 32 + 100) / 3)  # not mean(RC) x mean(P) = 57.2
    assert score.route_completion == pytest.approx(250 / 3)
    assert score.penalty == pytest.approx((0.42 + 0.64 + 1.0) / 3)
    assert score.driving_score_std == pytest.approx(np.std([42, 32, 100]))
    assert score.success_rate == pytest.approx(1 / 3)
    # driven: 0.1 + 0.1 + 0.3 km
    assert score.infractions_per_km["collisions_vehicle"] == pytest.approx(2.0)
    assert score.infractions_per_km["outside_route_lanes"] == pytest.approx(2.0)
    padded = global_score(routes, expected_routes=4)  # a route that did not run counts 0
    assert padded.driving_score == pytest.approx(174 / 4) and padded.success_rate == pytest.approx(1 / 4)


def test_comfort_fraction_counts_uncomfortable_windows() -> None:
    t = np.arange(60) * 0.1
    trace = np.zeros((60, len(TraceIndex)))
    trace[:, TraceIndex.TIME] = t
    trace[:, TraceIndex.VELOCITY_X] = 10.0
    trace[:, TraceIndex.X] = 10.0 * t
    assert comfort_fraction(trace) == 1.0
    trace[40:, TraceIndex.ACCELERATION_X] = -8.0  # hard braking in the third window
    assert comfort_fraction(trace) == pytest.approx(2 / 3)


def test_statistics_json_has_the_leaderboard_layout(tmp_path) -> None:
    path = tmp_path / "statistics.json"
    write_statistics(path, list(three_routes()))
    doc = json.loads(path.read_text())
    records = doc["_checkpoint"]["records"]
    assert [r["route_id"] for r in records] == ["RouteScenario_a_rep0", "RouteScenario_b_rep0", "RouteScenario_c_rep0"]
    b = records[1]
    assert set(b) >= {"index", "route_id", "status", "num_infractions", "infractions", "scores", "meta"}
    assert list(b["infractions"]) == list(STATISTICS_INFRACTION_KEYS)
    assert len(b["infractions"]["outside_route_lanes"]) == 1 and len(b["infractions"]["vehicle_blocked"]) == 1
    assert b["scores"] == {
        "score_route": 50.0,
        "score_penalty": pytest.approx(0.64),
        "score_composed": pytest.approx(32),
    }
    assert set(b["meta"]) == {"route_length", "duration_game", "duration_system"}
    glob = doc["_checkpoint"]["global_record"]
    assert glob["scores_mean"]["score_composed"] == pytest.approx(58.0)
    assert set(glob["scores_std_dev"]) == {"score_route", "score_penalty", "score_composed"}
    assert set(glob["infractions"]) == set(STATISTICS_INFRACTION_KEYS)
    assert glob["status"] == "Failed" and glob["meta"]["exceptions"] == [["RouteScenario_b_rep0", b["status"]]]
    assert doc["labels"] == list(LABELS) and len(doc["values"]) == len(LABELS)
    assert float(doc["values"][0]) == pytest.approx(58.0, abs=1e-3)
    assert doc["entry_status"] == "Finished" and doc["_checkpoint"]["progress"] == [3, 3]
