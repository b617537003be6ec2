"""The OpenDRIVE export of every scenario family parses in the ``carla`` client and matches the embedded map."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from irl_vla.data.map import MapLayer, StopLineType
from scenarios.registry import load_families
from sim_bridges.embedded.opendrive import SIGNAL_TYPE, to_opendrive, write_opendrive
from sim_bridges.embedded.road_network import RoadNetwork, build_corridor
from sim_bridges.embedded.scenario_world import build_scenario

carla = pytest.importorskip("carla", reason="the carla client (extra 'carla') is not installed")

FAMILIES = sorted(load_families())
TOLERANCE = 0.1  # [m]


def _network(family: str, seed: int = 0) -> RoadNetwork:
    return build_scenario(load_families()[family], seed).network


def _parse(net: RoadNetwork) -> carla.Map:
    return carla.Map(net.map.name, to_opendrive(net))


def _dropping_lane(net: RoadNetwork) -> int | None:
    """OpenDRIVE id of the lane that ends in a lane-drop taper (its shape cannot follow the embedded overlap)."""
    return -len(net.arms["main"].in_lanes) if "main_after" in net.arms else None


@pytest.mark.parametrize("family", FAMILIES)
def test_lane_waypoints_lie_on_the_embedded_centrelines_with_their_direction(family: str) -> None:
    net = _network(family)
    cmap = _parse(net)
    centrelines = {lid: net.map.get_lane(lid).centerline for lid in net.paths}
    lines = {lid: shapely.LineString(c[:, :2]) for lid, c in centrelines.items()}
    drop = _dropping_lane(net)
    waypoints = cmap.generate_waypoints(1.0)
    assert len(waypoints) > 100
    checked = 0
    for wp in waypoints:
        if drop is not None and wp.section_id == 1 and wp.lane_id == drop:
            continue
        loc = wp.transform.location
        point = shapely.Point(loc.x, -loc.y)  # CARLA mirrors y
        dist, lid = min((line.distance(point), lid) for lid, line in lines.items())
        assert dist < TOLERANCE, f"{family}: waypoint road {wp.road_id} lane {wp.lane_id} is {dist:.3f} m off"
        c = centrelines[lid]
        k = int(np.argmin(np.hypot(c[:, 0] - point.x, c[:, 1] - point.y)))
        heading = -np.radians(wp.transform.rotation.yaw)
        error = abs(np.remainder(heading - c[k, 2] + np.pi, 2 * np.pi) - np.pi)
        assert error < 0.2, f"{family}: road {wp.road_id} lane {wp.lane_id} drives the wrong way ({error:.2f} rad)"
        checked += 1
    assert checked > 0.9 * len(waypoints)


def _lane_count(cmap: carla.Map, road_id: int, s: float, sign: int) -> int:
    n = 0
    while n < 10:
        try:
            wp = cmap.get_waypoint_xodr(road_id, sign * (n + 1), s)
        except RuntimeError:
            wp = None
        if wp is None:
            break
        n += 1
    return n


@pytest.mark.parametrize("family", FAMILIES)
def test_roads_have_the_embedded_lane_counts(family: str) -> None:
    net = _network(family)
    cmap = _parse(net)
    for arm in net.arms.values():
        if arm.name in ("oncoming", "main_after"):
            continue
        if "main" in net.arms:
            road = int(arm.in_roadblock)
            assert _lane_count(cmap, road, 5.0, -1) == len(arm.in_lanes)
            oncoming = len(net.arms["oncoming"].in_lanes) if "oncoming" in net.arms else 0
            assert _lane_count(cmap, road, 5.0, +1) == oncoming
        else:
            road = int(arm.out_roadblock)
            assert _lane_count(cmap, road, 5.0, -1) == len(arm.out_lanes), f"{family}: arm {arm.name}"
            assert _lane_count(cmap, road, 5.0, +1) == len(arm.in_lanes), f"{family}: arm {arm.name}"


def _junction_families() -> list[str]:
    return [f for f in FAMILIES if "main" not in _network(f).arms]


@pytest.mark.parametrize("family", _junction_families())
def test_junction_connectivity_matches_the_lane_connectors(family: str) -> None:
    net = _network(family)
    cmap = _parse(net)
    out_lane = {
        lid: (int(arm.out_roadblock), -(i + 1)) for arm in net.arms.values() for i, lid in enumerate(arm.out_lanes)
    }
    checked = 0
    for arm in net.arms.values():
        for lid in arm.in_lanes:
            lane = net.map.get_lane(lid)
            end = lane.centerline[-2]
            wp = cmap.get_waypoint(carla.Location(x=float(end[0]), y=float(-end[1])))
            assert (wp.road_id, wp.lane_id) == (int(arm.out_roadblock), arm.in_lanes.index(lid) + 1)
            reached = set()
            for nxt in wp.next(3.0):
                assert nxt.is_junction, f"{family}: lane {lid} does not enter the junction"
                assert nxt.junction_id == int(next(iter(net.map.objects(MapLayer.INTERSECTION))).id)
                exits = nxt.next_until_lane_end(1.0)[-1].next(2.0)
                reached |= {(w.road_id, w.lane_id) for w in exits}
            expected = {out_lane[net.map.get_lane(c).outgoing_ids[0]] for c in lane.outgoing_ids}
            assert reached == expected, f"{family}: lane {lid} reaches {reached}, embedded {expected}"
            checked += 1
    assert checked == sum(len(a.in_lanes) for a in net.arms.values())


@pytest.mark.parametrize("family", ["signalised_intersection", "unsignalised_intersection"])
def test_stop_lines_become_signals(family: str) -> None:
    net = _network(family)
    cmap = _parse(net)
    landmarks = {lm.id: lm for lm in cmap.get_all_landmarks()}
    stops = net.map.objects(MapLayer.STOP_LINE)
    assert stops and set(landmarks) == {s.id for s in stops}
    for stop in stops:
        assert landmarks[stop.id].type == SIGNAL_TYPE[stop.stop_line_type]
    lights = [s for s in stops if s.stop_line_type == StopLineType.TRAFFIC_LIGHT]
    assert bool(lights) == (family == "signalised_intersection")


def test_lane_drop_taper_narrows_the_ending_lane_to_nothing() -> None:
    net = build_corridor(lanes_forward=2, lanes_backward=1, drop_lane_at=100.0)
    cmap = _parse(net)
    road = int(net.arms["main"].in_roadblock)
    widths = [cmap.get_waypoint_xodr(road, -2, s).lane_width for s in (99.0, 101.0, 120.0, 139.0)]
    assert widths[0] == pytest.approx(3.5, abs=1e-3) and widths[1] > 3.3
    assert widths[1] > widths[2] > widths[3] and widths[3] < 0.1
    assert _lane_count(cmap, road, 200.0, -1) == 1


def test_write_opendrive_writes_the_document(tmp_path) -> None:
    net = build_corridor(length=50.0)
    path = write_opendrive(net, tmp_path / "sub" / "corridor.xodr")
    text = path.read_text()
    assert text == to_opendrive(net) and "<![CDATA[+proj=tmerc" in text
    assert [p.name for p in path.parent.iterdir()] == ["corridor.xodr"]


def test_a_network_of_neither_kind_is_refused() -> None:
    net = build_corridor(length=50.0)
    net.arms.clear()
    with pytest.raises(ValueError, match="corridor"):
        to_opendrive(net)
