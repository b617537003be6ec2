"""Turning a scenario family and a seed into a ``World`` with an expert ego, traffic, objects and lights.

The family's ``road`` group picks the network (``corridor``, with an optional lane drop, or ``intersection``),
``ego`` places the expert, and ``traffic`` populates the world; every key is optional except the road's and
unknown keys are refused (``KNOWN_KEYS``). Distances are arc lengths along the ego's route path [m].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from irl_vla.common.io import DataFormatError
from irl_vla.data.enums import AgentClass
from irl_vla.data.vehicle import PACIFICA
from scenarios.registry import ScenarioFamily
from sim_bridges.embedded.background import KNOWN_KEYS as BACKGROUND_KEYS
from sim_bridges.embedded.background import Background
from sim_bridges.embedded.idm import IDMParams, driver_style
from sim_bridges.embedded.paths import Path
from sim_bridges.embedded.placement import DIMENSIONS, make_road_user
from sim_bridges.embedded.road_network import ARM_ANGLES, RoadNetwork, build_corridor, build_intersection
from sim_bridges.embedded.road_users import RoadUser, StopPoint
from sim_bridges.embedded.traffic_lights import SignalTiming, TrafficLightProgramme
from sim_bridges.embedded.world import World

LANE_WIDTH = 3.5  # [m]
CORRIDOR_LENGTH = 450.0  # [m]
IN_LANE_ROOM = (LANE_WIDTH - PACIFICA.width) / 2 + 0.1  # [m] a nudge within the lane may reach 0.1 m over the line

BACKGROUND_STREAM = 1  # second entropy word of the background's random stream

KNOWN_KEYS: dict[str, set[str]] = {
    "road": {
        "type",
        "lanes_forward",
        "lanes_backward",
        "curve_angle",
        "curve_radius",
        "speed_limit",
        "drop_lane_at",
        "arms",
        "lanes_in",
        "lanes_out",
        "signalised",
        "protected_left",
    },
    "ego": {"lane", "turn", "start_s", "speed_fraction", "wrong_lane"},
    "traffic": {
        "leads",
        "lead_gap",
        "lead_speed_fraction",
        "stop_and_go_period",
        "behind",
        "behind_gap",
        "oncoming",
        "cut_in",
        "cut_in_gap",
        "cut_in_time",
        "parked",
        "parked_protrusion",
        "obstacle",
        "obstacle_distance",
        "obstacle_coverage",
        "cyclists",
        "cyclist_speed",
        "cross_traffic",
        "light_offset",
        "pedestrians",
        "pedestrian_delay",
    },
}


@dataclass
class ScenarioInstance:
    """A built scenario: the world, its network, and the ego's route."""

    family: str
    seed: int
    params: dict[str, dict[str, Any]]
    world: World
    network: RoadNetwork
    route_ids: list[str]
    route_centerline: np.ndarray  # (N, 3)
    route_lanes: list[str]


def expert_idm(rng: np.random.Generator) -> IDMParams:
    """A human-like driving style: headway, comfortable acceleration and braking."""
    return driver_style(rng)


def _check_keys(family: ScenarioFamily, params: dict[str, dict[str, Any]]) -> None:
    for group, keys in {**KNOWN_KEYS, "background": BACKGROUND_KEYS}.items():
        unknown = sorted(set(params[group]) - keys)
        if unknown:
            raise DataFormatError(f"{family.source or family.name}: unknown {group} keys {unknown}")


def _range(value: Any) -> tuple[float, float]:
    return (float(value), float(value)) if not isinstance(value, list) else (float(value[0]), float(value[1]))


class _Builder:
    """Shared state while populating one scenario (network, ego lanes, rng, road users)."""

    def __init__(self, family: ScenarioFamily, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.params = family.sample(self.rng)
        # The background draws from its own stream: tuning it leaves the scenario itself unchanged.
        self.background_rng = np.random.default_rng([seed, BACKGROUND_STREAM])
        self.params["background"] = family.sample_background(self.background_rng)
        _check_keys(family, self.params)
        self.road, self.ego_p, self.traffic = self.params["road"], self.params["ego"], self.params["traffic"]
        self.limit = float(self.road["speed_limit"])
        self.road_users: list[RoadUser] = []
        self.lights: list[TrafficLightProgramme] = []
        self.priority: set[str] = set()

    def t(self, key: str, default: Any = 0) -> Any:
        return self.traffic.get(key, default)

    def uniform(self, key: str, default: Any) -> float:
        return float(self.rng.uniform(*_range(self.t(key, default))))

    # ------------------------------------------------------------------ network and ego
    def build_network(self) -> None:
        road = self.road
        if road["type"] == "corridor":
            self.net = build_corridor(
                lanes_forward=road.get("lanes_forward", 1),
                lanes_backward=road.get("lanes_backward", 1),
                curve_angle=road.get("curve_angle", 0.0),
                curve_radius=road.get("curve_radius", 120.0),
                speed_limit=self.limit,
                drop_lane_at=road.get("drop_lane_at"),
                lane_width=LANE_WIDTH,
                length=CORRIDOR_LENGTH,
            )
            self._corridor_ego_lanes()
        else:
            arms = ("east", "north", "west", "south") if road.get("arms", 4) == 4 else ("east", "west", "south")
            self.net = build_intersection(
                arms=arms,
                lanes_in=road.get("lanes_in", 1),
                lanes_out=road.get("lanes_out", 1),
                speed_limit=self.limit,
                signalised=road.get("signalised", True),
                protected_left=road.get("protected_left", True),
                lane_width=LANE_WIDTH,
            )
            self._junction_ego_lanes("west" if len(arms) == 4 else "south")
            self.lights = [
                TrafficLightProgramme(phases, SignalTiming(), offset=float(self.t("light_offset", 0.0)))
                for phases in self.net.signal_phases.values()
            ]

    def _corridor_ego_lanes(self) -> None:
        main = self.net.arms["main"].in_lanes
        n = len(main)
        drop = "main_after" in self.net.arms
        choice = self.ego_p.get("lane", "any")
        if drop:
            start, home = n - 1, n - 2  # on the lane that ends, routed along its left neighbour
        else:
            start = n - 1 if choice == "rightmost" else int(self.rng.integers(n))
            home = start
        self.route_lanes = self._follow(main[home])
        self.start_offset = (home - start) * LANE_WIDTH
        self.lane_offsets = tuple((home - j) * LANE_WIDTH for j in range(n))
        self.change_before = self.net.paths[main[home]].length if drop else np.inf
        has_left = home > 0 or "oncoming" in self.net.arms
        room_left = IN_LANE_ROOM + (0.7 * LANE_WIDTH if has_left else 0.0)
        room_right = IN_LANE_ROOM + (0.7 * LANE_WIDTH if home < n - 1 else 0.0)
        self.nudge_room = (room_right, room_left)

    def _follow(self, lane: str) -> list[str]:
        """``lane`` and its straight successors to the end of the map."""
        out = [lane]
        while True:
            outgoing = self.net.map.get_lane(out[-1]).outgoing_ids
            if not outgoing:
                return out
            out.append(outgoing[0])

    def _junction_ego_lanes(self, src: str) -> None:
        turn = self.ego_p.get("turn", "straight")
        self.route_lanes = _turn_lanes(self.net, src, turn, self.rng)
        in_lanes = self.net.arms[src].in_lanes
        home = in_lanes.index(self.route_lanes[0])
        start = home
        if self.ego_p.get("wrong_lane", False) and len(in_lanes) > 1:
            start = 1 - home if len(in_lanes) == 2 else (home + 1) % len(in_lanes)
        self.start_offset = (home - start) * LANE_WIDTH
        self.lane_offsets = tuple((home - j) * LANE_WIDTH for j in range(len(in_lanes)))
        self.change_before = self.net.paths[self.route_lanes[0]].length - 8.0
        self.nudge_room = (IN_LANE_ROOM, IN_LANE_ROOM)

    def make_ego(self) -> RoadUser:
        ego = make_road_user(
            self.net,
            self.route_lanes,
            token="ego",
            s=float(self.ego_p.get("start_s", 40.0)),
            speed=self.limit * float(self.ego_p.get("speed_fraction", 0.7)),
            target_speed=self.limit * float(self.rng.uniform(0.8, 0.95)),
            idm=expert_idm(self.rng),
            lateral=self.start_offset,
            dimensions=(PACIFICA.length, PACIFICA.width, PACIFICA.height),
        )
        ego.lane_offsets = self.lane_offsets
        ego.lane_change_before = self.change_before
        ego.nudge_room = self.nudge_room
        ego.expert = True
        self.ego = ego
        return ego

    # ------------------------------------------------------------------ traffic
    def on_route(self, token: str, s: float, speed: float, *, lateral: float = 0.0, **kw: Any) -> RoadUser:
        user = make_road_user(self.net, self.route_lanes, token=token, s=s, speed=speed, lateral=lateral, **kw)
        self.road_users.append(user)
        return user

    def add_leads(self) -> None:
        s = self.ego.s
        period = self.t("stop_and_go_period", None)
        for k in range(self.t("leads")):
            s += self.uniform("lead_gap", [20.0, 40.0])
            v = self.limit * self.uniform("lead_speed_fraction", [0.5, 0.8])
            lead = self.on_route(f"lead_{k}", s, v, target_speed=v, idm=expert_idm(self.rng))
            if period is not None:
                # Stop-and-go: the queue's target speed alternates between crawling and moving.
                half = float(period) / 2
                phase = float(self.rng.uniform(0.0, half))
                lead.speed_schedule = [
                    (phase + i * half, 0.0 if i % 2 == 0 else v) for i in range(int(60.0 / half) + 1)
                ]

    def add_behind(self) -> None:
        """Vehicles on the route lane behind the ego (the traffic a merging ego slots into)."""
        s = self.ego.s + 25.0
        for k in range(self.t("behind")):
            s -= self.uniform("behind_gap", [20.0, 40.0])
            v = self.limit * float(self.rng.uniform(0.7, 0.9))
            self.on_route(f"behind_{k}", s, v, target_speed=v, idm=expert_idm(self.rng))

    def add_oncoming(self) -> None:
        if "oncoming" not in self.net.arms:
            return
        for k in range(self.t("oncoming")):
            lane = str(self.rng.choice(self.net.arms["oncoming"].in_lanes))
            v = self.limit * float(self.rng.uniform(0.7, 0.95))
            s = float(40 + 90 * k + self.rng.uniform(0, 40))
            user = make_road_user(self.net, [lane], token=f"oncoming_{k}", s=s, speed=v, target_speed=v)
            self.road_users.append(user)

    def add_cut_in(self) -> None:
        """A vehicle in the neighbouring lane that moves into the ego's lane ahead of it."""
        sides = [o for o in self.lane_offsets if abs(o - self.ego.home_lateral) > 1.0]
        for k in range(self.t("cut_in")):
            if not sides:
                return
            side = sides[int(self.rng.integers(len(sides)))]
            v = self.ego.speed * float(self.rng.uniform(0.95, 1.15))
            s = self.ego.s + self.uniform("cut_in_gap", [12.0, 25.0]) + self.ego.length
            user = self.on_route(f"cut_in_{k}", s, v, lateral=side, target_speed=v, idm=expert_idm(self.rng))
            user.home_lateral = side
            user.lane_change_at = self.uniform("cut_in_time", [1.0, 4.0])
            user.lane_change_to = 0.0

    def add_parked(self) -> None:
        """Cars parked along the right kerb of the ego's road, some sticking into the lane."""
        right_edge = min(self.lane_offsets) - LANE_WIDTH / 2
        length, width, _ = DIMENSIONS[AgentClass.VEHICLE]
        s = self.ego.s + float(self.rng.uniform(30.0, 50.0))
        for k in range(self.t("parked")):
            protrusion = self.uniform("parked_protrusion", [0.0, 0.5])
            lateral = right_edge - width / 2 + protrusion
            self.on_route(f"parked_{k}", s, 0.0, lateral=lateral, target_speed=0.0)
            s += length + float(self.rng.uniform(2.0, 12.0))

    def add_obstacle(self) -> None:
        """Cones, barriers or debris in the ego's lane: a construction zone covering part of the lane."""
        kind = self.t("obstacle", "none")
        if kind == "none":
            return
        s0 = self.ego.s + self.uniform("obstacle_distance", [45.0, 70.0])
        coverage = self.uniform("obstacle_coverage", [0.3, 0.6])  # fraction of the lane width, from the right
        right = -LANE_WIDTH / 2
        edge = right + coverage * LANE_WIDTH
        if kind == "debris":
            cls = AgentClass.GENERIC_OBJECT
            size = (right + edge) / 2, edge - right
            self.on_route(
                "debris_0",
                s0,
                0.0,
                lateral=size[0],
                target_speed=0.0,
                agent_class=cls,
                dimensions=(1.2, max(size[1], 0.4), 0.5),
            )
            return
        # A taper of cones from the kerb to the zone's edge, then barriers (or cones) along the edge.
        n_taper, zone = 4, float(self.rng.uniform(15.0, 30.0))
        for i in range(n_taper):
            lat = right + 0.2 + (edge - right - 0.2) * (i + 1) / n_taper
            self.on_route(
                f"cone_{i}", s0 + 3.0 * i, 0.0, lateral=lat, target_speed=0.0, agent_class=AgentClass.TRAFFIC_CONE
            )
        s, i = s0 + 3.0 * n_taper, 0
        while s < s0 + 3.0 * n_taper + zone:
            if kind == "barrier":
                dims = DIMENSIONS[AgentClass.BARRIER]
                self.on_route(
                    f"barrier_{i}",
                    s,
                    0.0,
                    lateral=edge - dims[1] / 2,
                    target_speed=0.0,
                    agent_class=AgentClass.BARRIER,
                    dimensions=(dims[1], dims[0], dims[2]),
                )
                s += 2.5
            else:
                self.on_route(
                    f"cone_{n_taper + i}",
                    s,
                    0.0,
                    lateral=edge - 0.2,
                    target_speed=0.0,
                    agent_class=AgentClass.TRAFFIC_CONE,
                )
                s += 4.0
            i += 1
        self.on_route(
            "czone_sign_0", s0 - 25.0, 0.0, lateral=right - 1.0, target_speed=0.0, agent_class=AgentClass.CZONE_SIGN
        )

    def add_cyclists(self) -> None:
        """Cyclists riding near the right edge of the ego's lane."""
        s = self.ego.s
        for k in range(self.t("cyclists")):
            s += float(self.rng.uniform(30.0, 50.0))
            v = self.uniform("cyclist_speed", [3.5, 5.5])
            lateral = -LANE_WIDTH / 2 + 0.8
            self.on_route(
                f"cyclist_{k}",
                s,
                v,
                lateral=lateral,
                target_speed=v,
                agent_class=AgentClass.BICYCLE,
                idm=IDMParams(accel_max=0.8),
            )

    def add_junction_traffic(self) -> None:
        if self.road["type"] != "intersection":
            return
        cross = _cross_traffic(self.net, self.route_lanes, self.t("cross_traffic"), self.limit, self.rng)
        self.road_users.extend(user for user, _ in cross)
        if not self.road.get("signalised", True):
            # Main-road traffic has priority; yield lines already sit on the minor arm's connectors.
            self.priority = {user.track_token for user, arm in cross if arm in ("east", "west")}
        elif not self.road.get("protected_left", True):
            # Unprotected lefts give way to straight and right-turning traffic.
            movers = [self.ego, *self.road_users]
            self.priority = {a.track_token for a in movers if not _turns_left(a, self.net)}
            for a in movers:
                if _turns_left(a, self.net):
                    a.stops = [*a.stops, *[StopPoint(st.s, st.connector_id, "yield") for st in a.stops]]
        for k in range(self.t("pedestrians")):
            delay = self.uniform("pedestrian_delay", 0.0)
            self.road_users.append(_pedestrian(self.net, self.route_lanes, k, delay, self.rng))


def build_scenario(family: ScenarioFamily, seed: int) -> ScenarioInstance:
    """Sample the family's parameters with ``seed`` and build the world (deterministic).

    Raises:
        DataFormatError: on a parameter key the builder does not know (naming the family file).
    """
    b = _Builder(family, seed)
    b.build_network()
    ego = b.make_ego()
    b.add_leads()
    b.add_behind()
    b.add_oncoming()
    b.add_cut_in()
    b.add_parked()
    b.add_obstacle()
    b.add_cyclists()
    Background(b, b.params["background"], b.background_rng).add()
    b.add_junction_traffic()
    world = World(
        b.net.map, b.road_users, ego, b.lights, junction_half_size=b.net.junction_half_size, priority_tokens=b.priority
    )
    route = b.net.route_ids(b.route_lanes)
    centerline = b.net.map.route_centerline(route, ego.pose)
    return ScenarioInstance(family.name, seed, b.params, world, b.net, route, centerline, list(b.route_lanes))


def _turn_lanes(net: RoadNetwork, src: str, turn: str, rng: np.random.Generator) -> list[str]:
    dst = next(d for (s, d), t in net.turns.items() if s == src and t == turn)
    candidates = [ln for ln in net.arms[src].in_lanes if net.connector(ln, dst)]
    lane = str(rng.choice(candidates))
    conn = net.connector(lane, dst)
    assert conn is not None
    return [lane, conn, net.map.get_lane(conn).outgoing_ids[0]]


def _turns_left(user: RoadUser, net: RoadNetwork) -> bool:
    return any(net.map.get_lane(st.connector_id).turn == "left" for st in user.stops)


def _cross_traffic(
    net: RoadNetwork, ego_lanes: list[str], count: int, limit: float, rng: np.random.Generator
) -> list[tuple[RoadUser, str]]:
    """Vehicles on the other arms going straight or right, each with the arm it comes from."""
    ego_arm = next(name for name, arm in net.arms.items() if ego_lanes[0] in arm.in_lanes)
    users: list[tuple[RoadUser, str]] = []
    used: dict[str, float] = {}
    for k in range(count):
        arm = str(rng.choice([a for a in net.arms if a != ego_arm]))
        options = [(d, t) for (s, d), t in net.turns.items() if s == arm and t in ("straight", "right")]
        dst, _ = options[int(rng.integers(len(options)))]
        lanes = _turn_lanes(net, arm, net.turns[(arm, dst)], rng)
        s = used.get(lanes[0], float(rng.uniform(10.0, 40.0)))
        used[lanes[0]] = s + float(rng.uniform(18.0, 30.0))
        v = limit * float(rng.uniform(0.6, 0.9))
        vehicle = make_road_user(
            net, lanes, token=f"cross_{k}", s=s + 120.0, speed=v, target_speed=v, idm=expert_idm(rng)
        )
        users.append((vehicle, arm))
    return users


def _pedestrian(net: RoadNetwork, ego_lanes: list[str], k: int, delay: float, rng: np.random.Generator) -> RoadUser:
    """A pedestrian crossing the crosswalk of the arm the ego drives into."""
    exit_lane = ego_lanes[-1]
    arm_name = next(name for name, arm in net.arms.items() if exit_lane in arm.out_lanes)
    u = np.array([np.cos(ARM_ANGLES[arm_name]), np.sin(ARM_ANGLES[arm_name])])
    n = np.array([-u[1], u[0]])
    # The crosswalk band spans 0.5..3.5 m outside the 2 m inner junction margin; one walking line per person.
    centre = u * (net.junction_half_size - 2.0 + (k % 2 - 0.5) * 1.2)
    half_width = 10.0
    start, end = (
        (centre - n * half_width, centre + n * half_width)
        if rng.uniform() < 0.5
        else (centre + n * half_width, centre - n * half_width)
    )
    length, width, height = DIMENSIONS[AgentClass.PEDESTRIAN]
    speed = float(rng.uniform(1.1, 1.6))
    return RoadUser(
        f"pedestrian_{k}",
        AgentClass.PEDESTRIAN,
        length,
        width,
        height,
        Path(np.stack([start, end])),
        s=0.0,
        speed=speed,
        target_speed=speed,
        start_time=delay + 0.8 * k,
        reactive=False,
    )
