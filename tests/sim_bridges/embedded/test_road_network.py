"""Generated road networks: valid maps, legal turns, drivable junctions, signal phases without conflicts."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.map import MapLayer, load_map, save_map
from sim_bridges.embedded.road_network import build_corridor, build_intersection


def test_corridor_lanes_and_curve() -> None:
    net = build_corridor(lanes_forward=3, lanes_backward=2, curve_angle=np.pi / 2, curve_radius=60.0, length=250.0)
    main = net.arms["main"]
    assert len(main.in_lanes) == 3 and len(net.arms["oncoming"].in_lanes) == 2
    first = net.map.get_lane(main.in_lanes[0])
    assert first.centerline[0, 2] == pytest.approx(0.0, abs=1e-6)
    assert first.centerline[-1, 2] == pytest.approx(np.pi / 2, abs=0.02)  # turned left by 90 degrees
    oncoming = net.map.get_lane(net.arms["oncoming"].in_lanes[0])
    assert oncoming.centerline[0, 2] == pytest.approx(-np.pi / 2, abs=0.02)  # opposite direction
    # Lane 0 of the main direction lies just right of the centre line, lane 2 furthest right.
    assert net.map.lanes_containing((10.0, -1.75))[0].id == main.in_lanes[0]
    assert net.map.lanes_containing((10.0, -8.75))[0].id == main.in_lanes[2]


def test_intersection_turns_and_connectivity(tmp_path) -> None:
    net = build_intersection(lanes_in=2, lanes_out=2)
    west = net.arms["west"]
    assert net.turns[("west", "north")] == "left" and net.turns[("west", "south")] == "right"
    assert net.turns[("west", "east")] == "straight"
    left = net.connector(west.in_lanes[0], "north")
    right = net.connector(west.in_lanes[1], "south")
    assert left and right and net.connector(west.in_lanes[1], "north") is None
    assert net.map.get_lane(left).turn == "left" and net.map.get_lane(right).turn == "right"
    # A route through the junction: lane sequence and centreline follow it.
    lanes = [west.in_lanes[0], left, net.map.get_lane(left).outgoing_ids[0]]
    route = net.route_ids(lanes)
    start = net.map.get_lane(west.in_lanes[0]).centerline[5]
    assert net.map.route_lane_sequence(route, start) == lanes
    # Every point of every connector lies on drivable area (junction box or a roadblock).
    for conn in net.map.objects(MapLayer.LANE_CONNECTOR):
        for x, y, _ in conn.centerline:
            assert net.map.is_in_layer((x, y), MapLayer.INTERSECTION) or net.map.is_in_layer((x, y), MapLayer.ROADBLOCK)
    save_map(net.map, tmp_path / "m.json")
    assert load_map(tmp_path / "m.json") == net.map


def test_signal_phases_never_release_conflicting_movements() -> None:
    net = build_intersection(protected_left=True)
    (phases,) = net.signal_phases.values()
    assert len(phases) == 4
    for phase in phases:
        polys = [net.map.get_lane(c) for c in phase]
        for i, a in enumerate(polys):
            for b in polys[i + 1 :]:
                # Connectors green together may only touch where they share an entry or exit lane.
                shared = set(a.incoming_ids + a.outgoing_ids) & set(b.incoming_ids + b.outgoing_ids)
                if not shared:
                    assert not a.polygon.buffer(-0.6).intersects(b.polygon.buffer(-0.6)), (a.id, b.id)
    unprotected = build_intersection(protected_left=False)
    assert len(next(iter(unprotected.signal_phases.values()))) == 2


def test_unsignalised_t_junction_has_yield_lines_on_minor_arm_only() -> None:
    net = build_intersection(arms=("east", "west", "south"), signalised=False, priority_arms=("east", "west"))
    assert net.signal_phases == {}
    assert net.arms["south"].stop_line is not None and net.arms["east"].stop_line is None
    assert ("north", "south") not in net.turns
    with pytest.raises(ValueError, match="arms must be 3 or 4"):
        build_intersection(arms=("east", "up"))
