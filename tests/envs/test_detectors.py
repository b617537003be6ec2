"""Each infraction detector on a hand-made event, and not on a near miss."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.map import Map, StopLine, StopLineType
from irl_vla.data.map.map_objects import MapLayer
from irl_vla.data.vehicle import PACIFICA
from irl_vla.envs.collisions import CollisionDetector
from irl_vla.envs.env import TerminationReason
from irl_vla.envs.infractions import InfractionKind
from irl_vla.envs.lanes import LaneDetector
from irl_vla.envs.monitor import InfractionMonitor, MonitorConfig
from irl_vla.envs.route import Route, RouteProgress
from irl_vla.envs.route_rules import (
    BlockedDetector,
    MinSpeedDetector,
    RouteDeviationDetector,
    RouteTimeoutDetector,
    checkpoint_speed_ratios,
)
from irl_vla.envs.signals import RedLightDetector, StopSignDetector
from irl_vla.envs.tick import Tick
from irl_vla.scoring.fast_scorer import _boxes_overlap
from tests.fixtures import build_t_junction

DT = 0.1  # [s]
ROUTE_W_E = frozenset({"w_in", "rbc_w_e", "e_out"})


def box(x: float, y: float, heading: float = 0.0, length: float = 4.5, width: float = 2.0) -> list[float]:
    """A box row (x, y, z, length, width, height, heading)."""
    return [x, y, 0.0, length, width, 1.5, heading]


def make_tick(x: float, y: float, heading: float = 0.0, speed: float = 5.0, t: float = 0.0, objects=(), **kw) -> Tick:
    """A tick with the ego's rear axle at (x, y) and ``objects`` = [(id, class, box row, speed)]."""
    return Tick(
        time=t,
        ego_pose=np.array([x, y, heading]),
        ego_speed=speed,
        boxes=np.array([o[2] for o in objects], dtype=np.float64).reshape(-1, 7),
        names=[o[1] for o in objects],
        ids=[o[0] for o in objects],
        speeds=np.array([o[3] for o in objects], dtype=np.float64),
        **kw,
    )


def drive(detector_update, xs, y: float, heading: float = 0.0, speed=5.0, **kw) -> list:
    """Drive the ego along x positions at a fixed y; every infraction raised."""
    speeds = np.broadcast_to(np.asarray(speed, dtype=np.float64), (len(xs),))
    events = []
    for i, (x, v) in enumerate(zip(xs, speeds, strict=True)):
        events += detector_update(make_tick(x, y, heading, float(v), t=i * DT, **kw))
    return events


# ------------------------------------------------------------------------------------------------ collisions
FRONT = PACIFICA.front_length  # rear axle -> front bumper [m]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("vehicle", InfractionKind.COLLISION_VEHICLE),
        ("bicycle", InfractionKind.COLLISION_VEHICLE),
        ("pedestrian", InfractionKind.COLLISION_PEDESTRIAN),
        ("traffic_cone", InfractionKind.COLLISION_STATIC),
        ("barrier", InfractionKind.COLLISION_STATIC),
    ],
)
def test_collision_is_classified_by_the_other_objects_class(name: str, kind: InfractionKind) -> None:
    detector = CollisionDetector()
    other = ("obj_1", name, box(FRONT + 0.5, 0.0, length=2.0, width=1.0), 0.0)  # 0.5 m into the ego's nose
    (event,) = detector.update(make_tick(0.0, 0.0, objects=[other]))
    assert event.kind is kind and event.other_id == "obj_1"


def test_collision_near_miss_and_not_at_fault_cases_are_not_counted() -> None:
    near = ("car", "vehicle", box(FRONT + 0.3 + 2.25, 0.0), 0.0)  # rear bumper 0.3 m ahead of the ego's nose
    beside = ("car2", "vehicle", box(1.0, PACIFICA.width / 2 + 1.0 + 0.2), 0.0)  # 0.2 m beside the ego
    assert CollisionDetector().update(make_tick(0.0, 0.0, objects=[near, beside])) == []
    touching = ("car", "vehicle", box(FRONT + 2.0, 0.0), 0.0)
    assert CollisionDetector().update(make_tick(0.0, 0.0, speed=0.05, objects=[touching])) == []  # ego stopped



def test_collision_pre_test_keeps_every_overlap_of_the_full_test() -> None:
    """The ego-axes pre-test only drops boxes the full separating-axis test separates too (touching included)."""
    rng = np.random.default_rng(0)
    ego = np.array([3.0, -2.0, 0.7])
    tick = make_tick(*ego)
    center, half_ego = tick.ego_center, np.array([PACIFICA.length / 2, PACIFICA.width / 2])
    axis, normal = np.array([np.cos(ego[2]), np.sin(ego[2])]), np.array([-np.sin(ego[2]), np.cos(ego[2])])
    rows = []
    for _ in range(400):  # random boxes around the ego, many overlapping, many just clear
        heading = rng.uniform(-np.pi, np.pi)
        length, width = rng.uniform(0.3, 6.0), rng.uniform(0.3, 2.5)
        rows.append(box(*(center[:2] + rng.uniform(-7.0, 7.0, 2)), heading, length, width))
    for side in (-1.0, 1.0):  # exactly touching the ego's front, rear and sides (touching counts)
        for length, width in ((4.5, 2.0), (0.4, 0.4)):
            rows.append(box(*(center[:2] + side * (half_ego[0] + length / 2) * axis), ego[2], length, width))
            rows.append(box(*(center[:2] + side * (half_ego[1] + width / 2) * normal), ego[2], length, width))
    boxes = np.array(rows)
    objects = [(f"o{i}", "vehicle", row, 0.0) for i, row in enumerate(rows)]
    tick = make_tick(*ego, objects=objects)
    full = np.flatnonzero(
        _boxes_overlap(
            center[:2], center[2], half_ego, boxes[:, :2], boxes[:, 6], np.stack([boxes[:, 3], boxes[:, 4]], 1) / 2
        )
    )
    touching = CollisionDetector().touching(tick)
    assert len(full) > 50 and len(rows) - len(full) > 50
    assert touching.tolist() == full.tolist()


def test_collision_with_one_object_counts_once_within_five_seconds_and_five_metres() -> None:
    detector = CollisionDetector()
    car = ("car", "vehicle", box(FRONT + 2.0, 0.0), 0.0)
    assert len(detector.update(make_tick(0.0, 0.0, t=0.0, objects=[car]))) == 1
    assert detector.update(make_tick(0.1, 0.0, t=0.1, objects=[car])) == []
    other = ("cone", "traffic_cone", box(FRONT + 1.0, 0.0, length=0.5, width=0.5), 0.0)
    assert detector.update(make_tick(2.0, 0.0, t=1.0, objects=[other])) == []  # within 5 m of the last one
    moved = ("cone", "traffic_cone", box(8.0 + FRONT + 0.2, 0.0, length=0.5, width=0.5), 0.0)
    assert [e.kind for e in detector.update(make_tick(8.0, 0.0, t=2.0, objects=[moved]))] == [
        InfractionKind.COLLISION_STATIC
    ]


# ------------------------------------------------------------------------------------------------ red lights
def xs_to(stop_x: float) -> np.ndarray:
    """Rear-axle positions from -40 m towards ``stop_x``, 0.5 m apart."""
    return np.arange(-40.0, stop_x + 1e-9, 0.5)


def test_red_light_run_when_the_whole_car_crosses_the_line() -> None:
    detector = RedLightDetector(build_t_junction(), ROUTE_W_E)
    lights = {"red_connectors": frozenset({"c_w_e_0"}), "lit_connectors": frozenset({"c_w_e_0", "c_w_e_1", "c_w_s"})}
    events = drive(detector.update, xs_to(0.0), -1.75, **lights)
    assert [(e.kind, e.other_id) for e in events] == [(InfractionKind.RED_LIGHT, "c_w_e_0")]
    x = events[0].position[0]
    assert -10.0 <= x - PACIFICA.rear_length <= -9.4  # the rear bumper was at the connector's entry


def test_red_light_near_misses() -> None:
    lit = frozenset({"c_w_e_0", "c_w_e_1", "c_w_s"})
    # The nose over the line but the car stopped before it has passed: no infraction.
    stopped = RedLightDetector(build_t_junction(), ROUTE_W_E)
    assert drive(stopped.update, xs_to(-10.0), -1.75, red_connectors=frozenset({"c_w_e_0"}), lit_connectors=lit) == []
    # Green: no infraction.
    green = RedLightDetector(build_t_junction(), ROUTE_W_E)
    assert drive(green.update, xs_to(0.0), -1.75, red_connectors=frozenset(), lit_connectors=lit) == []
    # The right turn sharing lane 1's entry is red, but the route goes straight on a green connector.
    shared = RedLightDetector(build_t_junction(), ROUTE_W_E)
    assert drive(shared.update, xs_to(0.0), -5.25, red_connectors=frozenset({"c_w_s"}), lit_connectors=lit) == []
    # The red lane is the neighbour: the ego crosses its own (green) lane's line only.
    neighbour = RedLightDetector(build_t_junction(), ROUTE_W_E)
    assert drive(neighbour.update, xs_to(0.0), -5.25, red_connectors=frozenset({"c_w_e_0"}), lit_connectors=lit) == []


# ------------------------------------------------------------------------------------------------ stop signs
def stop_sign_map() -> Map:
    """The T-junction with the south arm's stop line a stop sign."""
    base = build_t_junction()
    line = base.get(MapLayer.STOP_LINE, "stop_s")
    assert isinstance(line, StopLine)
    sign = StopLine("stop_s", line.polygon, StopLineType.STOP_SIGN, list(line.lane_connector_ids))
    return Map("t_junction_stop", [o if o.id != "stop_s" else sign for o in base.all_objects()])


def drive_north(detector_update, ys, speeds) -> list:
    """Drive the ego north on the south arm (x = 1.75)."""
    events = []
    for i, (y, v) in enumerate(zip(ys, speeds, strict=True)):
        events += detector_update(make_tick(1.75, float(y), np.pi / 2, float(v), t=i * DT))
    return events


def test_stop_sign_run_without_stopping() -> None:
    detector = StopSignDetector(stop_sign_map())
    ys = np.arange(-40.0, 0.0, 0.5)
    events = drive_north(detector.update, ys, np.full(len(ys), 5.0))
    assert [(e.kind, e.other_id) for e in events] == [(InfractionKind.STOP_SIGN, "stop_s")]


def test_stop_sign_obeyed_when_the_ego_stops_near_the_line() -> None:
    detector = StopSignDetector(stop_sign_map())
    ys = np.concatenate([np.arange(-40.0, -16.0, 0.5), np.full(10, -16.0), np.arange(-16.0, 0.0, 0.5)])
    speeds = np.full(len(ys), 5.0)
    speeds[48:58] = 0.0  # standing at y = -16 (front bumper 2 m before the line, within the look-ahead)
    assert drive_north(detector.update, ys, speeds) == []
    # An ordinary stop sign does not apply to traffic on the main road passing by.
    assert drive(StopSignDetector(stop_sign_map()).update, xs_to(40.0), -1.75) == []


# ------------------------------------------------------------------------------------------------ lanes
def lane_run(y: float, heading: float, route_heading: float) -> list:
    """Drive along x at a fixed y with a straight route along the same line; every lane infraction."""
    xs = np.arange(-50.0, -20.0, 0.5) if route_heading == 0.0 else np.arange(-20.0, -50.0, -0.5)
    route = Route("r", np.stack([xs, np.full_like(xs, y), np.full_like(xs, route_heading)], axis=1))
    progress = RouteProgress(route)
    detector = LaneDetector(build_t_junction())
    events = []
    for i, x in enumerate(xs):
        tick = make_tick(float(x), y, heading, t=i * DT)
        events += detector.update(tick, progress.update(tick.ego_xy))
    return events + detector.finish()


def test_off_road_and_wrong_way_carry_the_route_distance_driven() -> None:
    (off,) = lane_run(-9.5, 0.0, 0.0)  # the outer lane's edge is at y = -7: the ego's centre is 2.5 m off it
    assert off.kind is InfractionKind.OFF_ROAD and off.value == pytest.approx(29.0, abs=1.5)
    (wrong,) = lane_run(-1.75, np.pi, np.pi)  # westwards in the eastbound lane
    assert wrong.kind is InfractionKind.WRONG_WAY and wrong.value == pytest.approx(29.0, abs=1.5)


def test_wrong_way_is_not_judged_inside_junctions_nor_on_the_centre_line() -> None:
    detector = LaneDetector(build_t_junction())
    centre_ahead = PACIFICA.rear_axle_to_center
    # heading west inside the intersection box, where westbound and eastbound connectors overlap, and in the
    # eastbound lane just outside it
    assert detector.state(make_tick(0.0 + centre_ahead, -1.75, np.pi)) is None
    assert detector.state(make_tick(-15.0 + centre_ahead, -1.75, np.pi)) is InfractionKind.WRONG_WAY
    # straddling the centre line (0.3 m into the eastbound lane) westwards is not wrong way; 0.7 m in is
    assert detector.state(make_tick(-15.0 + centre_ahead, -0.3, np.pi)) is None
    assert detector.state(make_tick(-15.0 + centre_ahead, -0.7, np.pi)) is InfractionKind.WRONG_WAY


def test_lane_near_misses() -> None:
    assert lane_run(-7.2, 0.0, 0.0) == []  # the centre 0.2 m outside the outer lane: within the margin
    assert lane_run(1.75, np.pi, np.pi) == []  # westwards in the westbound lane
    assert lane_run(-1.75, 0.0, 0.0) == []


# ------------------------------------------------------------------------------------------------ route rules
def straight_route(length: float = 100.0) -> Route:
    x = np.arange(0.0, length + 0.5, 1.0)
    return Route("straight", np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1))


def test_route_deviation_far_from_the_route_but_not_nearer() -> None:
    route = straight_route()
    for gap, expected in ((31.0, [InfractionKind.ROUTE_DEVIATION]), (29.0, [])):
        detector, progress = RouteDeviationDetector(), RouteProgress(route)
        events = detector.update(make_tick(0.0, gap), progress, 0.0)
        assert [e.kind for e in events] == expected


def test_route_deviation_when_too_much_of_the_route_is_driven_far_off_it() -> None:
    route = straight_route()
    detector, progress = RouteDeviationDetector(), RouteProgress(route)
    events = []
    for i, x in enumerate(np.arange(0.0, 40.0, 0.5)):
        tick = make_tick(float(x), 20.0, t=i * DT)  # 20 m beside the route: far, but not 30 m
        events += detector.update(tick, progress, progress.update(tick.ego_xy))
    assert [e.kind for e in events] == [InfractionKind.ROUTE_DEVIATION]
    assert events[0].position[0] == pytest.approx(31.0, abs=1.0)  # once 30 % of 100 m was driven far off


def test_blocked_after_the_blocked_time_and_not_before() -> None:
    detector = BlockedDetector(blocked_time=10.0)
    events = [e for i in range(101) for e in detector.update(make_tick(0.0, 0.0, speed=0.0, t=i * DT))]
    assert events == []  # 10.0 s standing still is not more than 10 s
    (event,) = detector.update(make_tick(0.0, 0.0, speed=0.0, t=10.2))
    assert event.kind is InfractionKind.BLOCKED
    moving = BlockedDetector(blocked_time=10.0)
    ticks = [make_tick(0.0, 0.0, speed=0.0 if i % 50 else 1.0, t=i * DT) for i in range(200)]
    assert [e for t in ticks for e in moving.update(t)] == []  # moving every 5 s resets the clock


def test_route_timeout_budget_grows_with_route_distance() -> None:
    detector = RouteTimeoutDetector(initial=10.0, speed_fraction=0.5)
    assert detector.update(make_tick(0.0, 0.0, t=9.0, speed_limit=10.0), route_distance=5.0) == []
    assert detector.budget == pytest.approx(11.0)  # 5 m / (0.5 x 10 m/s) = 1 s more
    assert detector.update(make_tick(0.0, 0.0, t=10.9, speed_limit=10.0), 0.0) == []
    (event,) = detector.update(make_tick(0.0, 0.0, t=11.1, speed_limit=10.0), 0.0)
    assert event.kind is InfractionKind.ROUTE_TIMEOUT


def test_min_speed_ratios_per_checkpoint() -> None:
    completion = np.array([0.0, 10.0, 20.0, 30.0, 50.0, 60.0, 70.0])
    ego = np.array([5.0, 5.0, 5.0, 10.0, 10.0, 10.0, 10.0])
    traffic = np.array([10.0, 10.0, 10.0, np.nan, 10.0, 10.0, 10.0])
    # parts of 25 %: [0, 10, 20] -> 50 %; [30] -> no traffic -> 100 %; [50, 60, 70] not closed yet
    np.testing.assert_allclose(checkpoint_speed_ratios(completion, ego, traffic, 4), [50.0, 100.0])
    detector = MinSpeedDetector(checkpoints=4)
    events = []
    for i, (c, v, tv) in enumerate(zip(completion, ego, traffic, strict=True)):
        events += detector.update(make_tick(0.0, 0.0, speed=v, t=i * DT, traffic_speed=None if np.isnan(tv) else tv), c)
    assert [(e.kind, e.value) for e in events] == [(InfractionKind.MIN_SPEED, 50.0)]


# ------------------------------------------------------------------------------------------------ monitor
def test_monitor_ends_the_episode_at_a_collision_and_at_route_completion() -> None:
    route = Route("w_e", np.stack([np.arange(-55.0, 40.0), np.full(95, -1.75), np.zeros(95)], axis=1), list(ROUTE_W_E))
    parked = ("parked", "vehicle", box(-20.0, -1.75), 0.0)
    monitor = InfractionMonitor(route, build_t_junction())
    reason = None
    for i, x in enumerate(np.arange(-55.0, 0.0, 0.5)):
        _, reason = monitor.update(make_tick(float(x), -1.75, t=i * DT, objects=[parked]))
        if reason is not None:
            break
    assert reason is TerminationReason.COLLISION
    assert [e.kind for e in monitor.infractions] == [InfractionKind.COLLISION_VEHICLE]
    clear = InfractionMonitor(route, build_t_junction(), MonitorConfig(min_speed_checkpoints=4))
    for i, x in enumerate(np.arange(-55.0, 45.0, 0.5)):
        _, reason = clear.update(make_tick(float(x), -1.75, t=i * DT, traffic_speed=5.0))
        if reason is not None:
            break
    assert reason is TerminationReason.ROUTE_COMPLETED and clear.completion == 100.0
    assert clear.infractions == []
    with pytest.raises(RuntimeError, match="after the episode ended"):
        clear.update(make_tick(45.0, -1.75, t=100.0))
