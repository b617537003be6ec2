"""CARLA events and map answers -> backend-neutral infractions (leaderboard rules)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from irl_vla.envs.infractions import InfractionKind
from sim_bridges.carla.infractions import (
    CollisionFilter,
    LaneRule,
    StopLine,
    StopLineCrossing,
    StopSignRule,
    collision_kind_of,
)


@pytest.mark.parametrize(
    ("type_id", "kind"),
    [
        ("walker.pedestrian.0012", InfractionKind.COLLISION_PEDESTRIAN),
        ("vehicle.tesla.model3", InfractionKind.COLLISION_VEHICLE),
        ("vehicle.bh.crossbike", InfractionKind.COLLISION_VEHICLE),
        ("static.prop.streetbarrier", InfractionKind.COLLISION_STATIC),
        ("traffic.traffic_light", InfractionKind.COLLISION_STATIC),
        ("static.sidewalk", None),
        ("sensor.camera.rgb", None),
    ],
)
def test_actor_types_map_to_collision_kinds(type_id: str, kind: InfractionKind | None) -> None:
    assert collision_kind_of(type_id) is kind


def test_collisions_are_counted_once_as_the_leaderboard_does() -> None:
    f = CollisionFilter()
    hit = f.update(1.0, [0.0, 0.0], 5.0, [(7, "vehicle.audi.a2")])
    assert [(e.kind, e.other_id) for e in hit] == [(InfractionKind.COLLISION_VEHICLE, "7")]
    assert f.update(1.05, [0.2, 0.0], 5.0, [(7, "vehicle.audi.a2")]) == []  # same actor, same place
    assert f.update(3.0, [10.0, 0.0], 5.0, [(7, "vehicle.audi.a2")]) == []  # same actor within 5 s
    assert len(f.update(3.1, [10.5, 0.0], 5.0, [(8, "walker.pedestrian.1")])) == 1  # another actor, moved away
    assert f.update(9.0, [30.0, 0.0], 0.05, [(9, "vehicle.x")]) == []  # ego stopped: not at fault
    assert f.update(9.1, [30.0, 0.0], 3.0, [(0, "static.building")])[0].kind is InfractionKind.COLLISION_STATIC


def test_a_red_stop_line_crossed_along_the_lane_is_one_infraction() -> None:
    line = StopLine("17", center=(10.0, 0.0), heading=0.0, half_length=2.1)
    rule = StopLineCrossing([line])
    events = []
    for x in np.arange(0.0, 20.0, 0.5):
        events += rule.update(float(x), [x, 0.5, 0.0], red={"17"})
    assert [(e.kind, e.other_id) for e in events] == [(InfractionKind.RED_LIGHT, "17")]
    green = StopLineCrossing([line])
    assert [e for x in np.arange(0.0, 20.0, 0.5) for e in green.update(float(x), [x, 0.5, 0.0], red=set())] == []
    against = StopLineCrossing([line])  # crossing the other way is not running this light
    assert [e for t in range(20) for e in against.update(float(t), [20.0 - t, 0.5, math.pi], red={"17"})] == []
    beside = StopLineCrossing([line])  # in the next lane
    assert [e for x in range(20) for e in beside.update(float(x), [x, 3.5, 0.0], red={"17"})] == []


def test_a_stop_sign_needs_one_stop_inside_its_zone() -> None:
    rule = StopSignRule({"s1": ((10.0, 0.0), 3.0)})
    out = [e for x in range(20) for e in rule.update(float(x), [float(x), 0.0], ego_speed=5.0)]
    assert [(e.kind, e.other_id) for e in out] == [(InfractionKind.STOP_SIGN, "s1")]
    good = StopSignRule({"s1": ((10.0, 0.0), 3.0)})
    speeds = [5.0] * 9 + [0.0] + [5.0] * 10
    assert [e for x, v in enumerate(speeds) for e in good.update(float(x), [float(x), 0.0], v)] == []


def test_off_road_and_wrong_way_stretches_with_their_length() -> None:
    def lane_at(xy: np.ndarray) -> tuple[float, float, float] | None:
        if xy[0] > 30:
            return None
        return (0.0, abs(xy[1]), 3.5)

    rule = LaneRule(lane_at)
    out = []
    poses = [[x, 0.0, 0.0] for x in range(10)] + [[x, 0.0, math.pi] for x in range(10, 20)]
    poses += [[x, 0.0, 0.0] for x in range(20, 35)]
    for t, pose in enumerate(poses):
        out += rule.update(float(t), pose)
    out += rule.finish()
    kinds = [(e.kind, e.value) for e in out]
    assert kinds == [(InfractionKind.WRONG_WAY, pytest.approx(10.0)), (InfractionKind.OFF_ROAD, pytest.approx(4.0))]
    inside = LaneRule(lambda xy: (0.0, 2.0, 3.5))  # 2.0 m from the centre < 1.75 + 0.5: on the road
    assert inside.update(0.0, [0.0, 2.0, 0.0]) == [] and inside.finish() == []
