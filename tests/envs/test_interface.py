"""The closed-loop interface: infraction records, route completion, info keys named once."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.envs.info import InfoKey
from irl_vla.envs.infractions import (
    STATISTICS_INFRACTION_KEYS,
    Infraction,
    InfractionKind,
)
from irl_vla.envs.route import Route, RouteProgress


def straight_route(length: float = 100.0, spacing: float = 1.0) -> Route:
    """A route along +x from the origin."""
    x = np.arange(0.0, length + spacing / 2, spacing)
    return Route("straight", np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1))


def test_penalty_factors_are_the_leaderboard_2_factors() -> None:
    assert InfractionKind.COLLISION_PEDESTRIAN.penalty_factor == 0.5
    assert InfractionKind.COLLISION_VEHICLE.penalty_factor == 0.6
    assert InfractionKind.COLLISION_STATIC.penalty_factor == 0.65
    assert InfractionKind.RED_LIGHT.penalty_factor == 0.7
    assert InfractionKind.STOP_SIGN.penalty_factor == 0.8
    assert InfractionKind.SCENARIO_TIMEOUT.penalty_factor == 0.7
    for kind in (InfractionKind.ROUTE_DEVIATION, InfractionKind.BLOCKED, InfractionKind.ROUTE_TIMEOUT):
        assert kind.ends_route and kind.penalty_factor is None
    assert {k.statistics_key for k in InfractionKind} == set(STATISTICS_INFRACTION_KEYS)


def test_infraction_round_trips_and_refuses_missing_values() -> None:
    event = Infraction(InfractionKind.COLLISION_VEHICLE, 3.5, np.array([1.0, 2.0]), other_id="car_7")
    back = Infraction.from_dict(event.to_dict())
    assert back.kind is InfractionKind.COLLISION_VEHICLE and back.other_id == "car_7"
    assert "car_7" in back.message
    with pytest.raises(ValueError, match="off_road.*value"):
        Infraction(InfractionKind.OFF_ROAD, 1.0, np.zeros(2))
    with pytest.raises(ValueError, match="missing field 'time'"):
        Infraction.from_dict({"kind": "red_light", "position": [0, 0]})


def test_info_keys_are_unique() -> None:
    values = [k.value for k in InfoKey]
    assert len(values) == len(set(values))


def test_route_progress_counts_passed_points_and_completes_near_the_end() -> None:
    route = straight_route(100.0)
    progress = RouteProgress(route)
    for x in np.arange(0.0, 50.5, 0.5):
        progress.update([x, 0.3])
    assert progress.completion == pytest.approx(50.0, abs=1.0)
    # Standing still does not progress; jumping far ahead does not either (only a window of points is tested).
    progress.update([90.0, 0.0])
    assert progress.completion < 55.0
    for x in np.arange(50.0, 101.0, 0.5):  # the final point is passed once the ego is beyond it
        progress.update([x, 0.0])
    assert progress.completed and progress.completion == 100.0


def test_route_refuses_degenerate_input() -> None:
    with pytest.raises(ValueError, match=r"Route\(r\)\.poses"):
        Route("r", np.zeros((1, 3)))
    with pytest.raises(ValueError, match="zero length"):
        Route("r", np.zeros((3, 3)))


def test_tick_from_frame_moves_boxes_to_the_global_frame() -> None:
    from irl_vla.data.enums import DrivingCommand
    from irl_vla.data.scene import Annotations, EgoStatus, Frame, one_hot_command
    from irl_vla.envs.tick import tick_from_frame

    boxes = np.array([[2.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.1], [0.0, -3.0, 0.0, 0.5, 0.5, 1.8, 0.0]])  # ego frame
    velocity = np.array([[3.0, 4.0, 0.0], [1.0, 0.0, 0.0]])
    annotations = Annotations(boxes, ["vehicle", "pedestrian"], velocity, ["i1", "i2"], ["car", "walker"])
    ego = EgoStatus(
        np.array([10.0, 5.0, np.pi / 2]), np.array([-2.0, 0.0]), np.zeros(2), one_hot_command(DrivingCommand.LEFT), True
    )
    frame = Frame("f0", 0, ["rb"], [("c1", True), ("c2", False)], annotations, ego)
    tick = tick_from_frame(frame, 1.5, speed_limit=8.0)
    np.testing.assert_allclose(tick.boxes[0, [0, 1, 6]], [10.0, 7.0, np.pi / 2 + 0.1], atol=1e-9)
    np.testing.assert_allclose(tick.boxes[1, [0, 1]], [13.0, 5.0], atol=1e-9)  # 3 m to the ego's right = +x
    np.testing.assert_allclose(tick.speeds, [5.0, 1.0])
    assert tick.ids == ["car", "walker"] and tick.ego_speed == -2.0  # reversing
    assert tick.red_connectors == {"c1"} and tick.lit_connectors == {"c1", "c2"}
    assert tick.traffic_speed == 5.0 and tick.speed_limit == 8.0 and tick.time == 1.5
