"""Turning a scenario family and a seed into a ``World`` with an expert ego, traffic and lights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from irl_vla.data.enums import AgentClass
from scenarios.registry import ScenarioFamily
from sim_bridges.embedded.agents import Agent, StopPoint
from sim_bridges.embedded.idm import IDMParams
from sim_bridges.embedded.paths import Path
from sim_bridges.embedded.placement import DIMENSIONS, make_road_user
from sim_bridges.embedded.road_network import ARM_ANGLES, RoadNetwork, build_corridor, build_intersection
from sim_bridges.embedded.traffic_lights import SignalTiming, TrafficLightProgramme
from sim_bridges.embedded.world import World


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


def expert_idm(rng: np.random.Generator) -> IDMParams:
    """A human-like driving style: headway, comfortable acceleration and braking."""
    return IDMParams(
        min_gap=float(rng.uniform(2.0, 3.0)),
        headway=float(rng.uniform(1.3, 2.0)),
        accel_max=float(rng.uniform(1.0, 1.8)),
        decel_comfort=float(rng.uniform(1.5, 2.5)),
    )


def build_scenario(family: ScenarioFamily, seed: int) -> ScenarioInstance:
    """Sample the family's parameters with ``seed`` and build the world (deterministic)."""
    rng = np.random.default_rng(seed)
    params = family.sample(rng)
    road, ego_p, traffic = params["road"], params["ego"], params["traffic"]
    limit = float(road["speed_limit"])
    style_speed = limit * float(rng.uniform(0.8, 0.95))
    if road["type"] == "corridor":
        net = build_corridor(
            lanes_forward=road["lanes_forward"],
            lanes_backward=road["lanes_backward"],
            curve_angle=road["curve_angle"],
            curve_radius=road["curve_radius"],
            speed_limit=limit,
            length=450.0,
        )
        lane = str(rng.choice(net.arms["main"].in_lanes))
        lanes = [lane]
        lights: list[TrafficLightProgramme] = []
        priority: set[str] = set()
    else:
        arms = ("east", "north", "west", "south") if road["arms"] == 4 else ("east", "west", "south")
        net = build_intersection(
            arms=arms,
            lanes_in=road["lanes_in"],
            lanes_out=road["lanes_out"],
            speed_limit=limit,
            signalised=road["signalised"],
            protected_left=road["protected_left"],
        )
        src = "west" if len(arms) == 4 else "south"
        lanes = _turn_lanes(net, src, ego_p["turn"], rng)
        lights = [
            TrafficLightProgramme(phases, SignalTiming(), offset=float(traffic["light_offset"]))
            for phases in net.signal_phases.values()
        ]
        priority = set()
    ego = make_road_user(
        net,
        lanes,
        token="ego",
        s=ego_p["start_s"],
        speed=limit * ego_p["speed_fraction"],
        target_speed=style_speed,
        idm=expert_idm(rng),
    )
    agents: list[Agent] = []
    s = ego.s
    for k in range(traffic["leads"]):
        s += float(rng.uniform(*_as_range(traffic["lead_gap"])))
        v = limit * float(rng.uniform(*_as_range(traffic["lead_speed_fraction"])))
        agents.append(make_road_user(net, lanes, token=f"lead_{k}", s=s, speed=v, target_speed=v, idm=expert_idm(rng)))
    if road["type"] == "corridor":
        for k in range(traffic["oncoming"]):
            if "oncoming" not in net.arms:
                break
            lane = str(rng.choice(net.arms["oncoming"].in_lanes))
            v = limit * float(rng.uniform(0.7, 0.95))
            agents.append(
                make_road_user(
                    net,
                    [lane],
                    token=f"oncoming_{k}",
                    s=float(40 + 90 * k + rng.uniform(0, 40)),
                    speed=v,
                    target_speed=v,
                )
            )
    else:
        cross = _cross_traffic(net, lanes, traffic["cross_traffic"], limit, rng)
        agents.extend(agent for agent, _ in cross)
        if not road["signalised"]:
            # Main-road traffic has priority; yield lines already sit on the minor arm's connectors.
            priority = {agent.track_token for agent, arm in cross if arm in ("east", "west")}
        elif not road["protected_left"]:
            # Unprotected lefts give way to straight and right-turning traffic.
            priority = {a.track_token for a in [ego, *agents] if not _turns_left(a, net)}
            for a in [ego, *agents]:
                if _turns_left(a, net):
                    a.stops = [*a.stops, *[StopPoint(st.s, st.connector_id, "yield") for st in a.stops]]
        for k in range(traffic.get("pedestrians", 0)):
            agents.append(_pedestrian(net, lanes, k, float(traffic.get("pedestrian_delay", 0.0)), rng))
    world = World(net.map, agents, ego, lights, junction_half_size=net.junction_half_size, priority_tokens=priority)
    route = net.route_ids(lanes)
    centerline = net.map.route_centerline(route, ego.pose)
    return ScenarioInstance(family.name, seed, params, world, net, route, centerline)


def _as_range(value: Any) -> tuple[float, float]:
    return (float(value), float(value)) if not isinstance(value, list) else (float(value[0]), float(value[1]))


def _turn_lanes(net: RoadNetwork, src: str, turn: str, rng: np.random.Generator) -> list[str]:
    dst = next(d for (s, d), t in net.turns.items() if s == src and t == turn)
    candidates = [ln for ln in net.arms[src].in_lanes if net.connector(ln, dst)]
    lane = str(rng.choice(candidates))
    conn = net.connector(lane, dst)
    assert conn is not None
    return [lane, conn, net.map.get_lane(conn).outgoing_ids[0]]


def _turns_left(agent: Agent, net: RoadNetwork) -> bool:
    return any(net.map.get_lane(st.connector_id).turn == "left" for st in agent.stops)


def _cross_traffic(
    net: RoadNetwork, ego_lanes: list[str], count: int, limit: float, rng: np.random.Generator
) -> list[tuple[Agent, str]]:
    """Vehicles on the other arms going straight or right, each with the arm it comes from."""
    ego_arm = next(name for name, arm in net.arms.items() if ego_lanes[0] in arm.in_lanes)
    agents: list[tuple[Agent, str]] = []
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
            net, lanes, token=f"cross_{k}", s=s + 40.0, speed=v, target_speed=v, idm=expert_idm(rng)
        )
        agents.append((vehicle, arm))
    return agents


def _pedestrian(net: RoadNetwork, ego_lanes: list[str], k: int, delay: float, rng: np.random.Generator) -> Agent:
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
    return Agent(
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
