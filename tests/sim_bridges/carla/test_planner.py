"""Route interpolation over ``carla.Map`` (offline, on the OpenDRIVE export of embedded maps)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from sim_bridges.carla.coordinates import suite_to_location
from sim_bridges.carla.planner import RoadOption, RoutePlanner
from sim_bridges.embedded.opendrive import to_opendrive
from sim_bridges.embedded.road_network import build_corridor, build_intersection

carla = pytest.importorskip("carla", reason="the carla client (extra 'carla') is not installed")

NET = build_intersection(lanes_in=2, lanes_out=2)
PLANNER = RoutePlanner(carla.Map("junction", to_opendrive(NET)))


@pytest.mark.parametrize(
    ("dst", "option"), [("east", RoadOption.STRAIGHT), ("north", RoadOption.LEFT), ("south", RoadOption.RIGHT)]
)
def test_a_turn_follows_the_embedded_lanes_and_is_named(dst: str, option: RoadOption) -> None:
    turn_lane = {"east": 0, "north": 0, "south": 1}[dst]
    src_lane = NET.arms["west"].in_lanes[turn_lane]
    conn = NET.connector(src_lane, dst)
    assert conn is not None
    lanes = [src_lane, conn, NET.map.get_lane(conn).outgoing_ids[0]]
    path = NET.lane_sequence_path(lanes).xy
    start, end = path[10], path[-10]
    route = PLANNER.trace([suite_to_location(start), suite_to_location(end)])
    line = shapely.LineString(path)
    distances = [line.distance(shapely.Point(*p)) for p in route.poses[:, :2]]
    assert max(distances) < 0.1
    assert option in route.options and all(o in (option, RoadOption.LANEFOLLOW) for o in route.options)
    np.testing.assert_allclose(route.poses[0, :2], start, atol=0.6)
    np.testing.assert_allclose(route.poses[-1, :2], end, atol=0.6)
    expected = line.project(shapely.Point(*end)) - line.project(shapely.Point(*start))
    assert route.length == pytest.approx(expected, abs=1.5)
    assert np.all(np.hypot(*np.diff(route.poses[:, :2], axis=0).T) > 0.5)  # no repeated points


def test_a_lane_change_is_planned_where_the_route_needs_one() -> None:
    net = build_corridor(length=200.0, lanes_forward=2, lanes_backward=1)
    planner = RoutePlanner(carla.Map("corridor", to_opendrive(net)))
    left, right = (net.map.get_lane(i).centerline for i in net.arms["main"].in_lanes)
    route = planner.trace([suite_to_location(left[5, :2]), suite_to_location(right[150, :2])])
    assert RoadOption.CHANGELANERIGHT in route.options
    np.testing.assert_allclose(route.poses[-1, :2], right[150, :2], atol=0.6)
    straight = planner.trace([suite_to_location(left[5, :2]), suite_to_location(left[150, :2])])
    assert set(straight.options) == {RoadOption.LANEFOLLOW}


def test_unreachable_and_off_road_keypoints_are_refused() -> None:
    out_lane = NET.map.get_lane(NET.arms["east"].out_lanes[0]).centerline
    in_lane = NET.map.get_lane(NET.arms["east"].in_lanes[0]).centerline
    with pytest.raises(ValueError, match="no lane path"):
        PLANNER.trace([suite_to_location(out_lane[50, :2]), suite_to_location(in_lane[10, :2])])
    with pytest.raises(ValueError, match="at least 2"):
        PLANNER.trace([suite_to_location(out_lane[50, :2])])
