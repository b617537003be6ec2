"""Language-side labels of logged frames: a navigation instruction, a scene description and a meta-action.

* the navigation instruction (an agent input) is what a navigation system knows: the route's next manoeuvre
  and its distance, or the lane the route needs (``irl_vla.data.instruction``); it never depends on other
  road users, lights or obstacles;
* the scene description (a supervision target) is what a driver sees: the speed limit, the light or give-way
  line ahead, the nearest road user in the lane, people, cyclists and road works nearby;
* the meta-action (a supervision target) names the expert's decision over the next ``HORIZON`` seconds, read
  from what it actually did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irl_vla.data.enums import AgentClass, BoundingBoxIndex, MetaAction
from irl_vla.data.instruction import FOLLOW_ROAD, junction_instruction, lane_instruction
from irl_vla.data.map import LaneConnector
from irl_vla.data.scene import Annotations
from sim_bridges.embedded.world import World

HORIZON = 3.0  # [s] the meta-action describes the decision over this look-ahead
LANE_CHANGE_SHIFT = 2.5  # [m] lateral shifts at least this large are lane changes, smaller ones nudges
STOPPED = 0.3  # [m/s]
SPEED_CHANGE = 1.5  # [m/s] over the horizon, to count as accelerating or slowing down


@dataclass(frozen=True)
class EgoTrace:
    """What the recorder keeps of the ego at each 10 Hz step for labelling."""

    time: float  # [s]
    speed: float  # [m/s]
    shift: float  # total lateral shift of the manoeuvre under way [m] (0: none), left positive
    turn: str  # turn of the lane connector the ego is on ("" if none)


def trace(world: World) -> EgoTrace:
    """The ego's label-relevant state now."""
    ego = world.ego
    shift = 0.0 if ego.manoeuvre is None else ego.manoeuvre.end - ego.manoeuvre.start
    turn = ""
    for stop in ego.stops:
        conn = world.map.get_lane(stop.connector_id)
        if stop.s <= ego.s + ego.length / 2 <= stop.s + conn.length:
            turn = conn.turn if isinstance(conn, LaneConnector) else ""
    return EgoTrace(world.time, ego.speed, shift, turn)


def meta_action(steps: list[EgoTrace], now: float) -> MetaAction:
    """The decision at time ``now`` [s] from the trace ``steps`` (10 Hz) over the next ``HORIZON`` seconds.

    Order: stop (stopped or coming to a stop), lane change, nudge, turn, slow down, accelerate, keep lane.
    """
    window = [s for s in steps if now - 1e-6 <= s.time <= now + HORIZON + 1e-6]
    if not window:
        raise ValueError(f"meta_action: no trace steps at t = {now} s")
    v_now, v_end = window[0].speed, window[-1].speed
    if v_end < STOPPED and (v_now < STOPPED or min(s.speed for s in window) < STOPPED):
        return MetaAction.STOP
    shift = next((s.shift for s in window if s.shift != 0.0), 0.0)
    if abs(shift) >= LANE_CHANGE_SHIFT:
        return MetaAction.CHANGE_LANE_LEFT if shift > 0 else MetaAction.CHANGE_LANE_RIGHT
    if shift != 0.0:
        return MetaAction.NUDGE_LEFT if shift > 0 else MetaAction.NUDGE_RIGHT
    turn = next((s.turn for s in window if s.turn in ("left", "right")), "")
    if turn:
        return MetaAction.TURN_LEFT if turn == "left" else MetaAction.TURN_RIGHT
    if v_end < v_now - SPEED_CHANGE:
        return MetaAction.SLOW_DOWN
    if v_end > v_now + SPEED_CHANGE:
        return MetaAction.ACCELERATE
    return MetaAction.KEEP_LANE


def navigation_instruction(world: World) -> str:
    """The ego's navigation instruction now, from its route alone (where it is on it and in which lane)."""
    ego = world.ego
    front = ego.s + ego.length / 2
    if np.isfinite(ego.lane_change_before) and abs(ego.lateral - ego.home_lateral) > LANE_CHANGE_SHIFT / 2:
        # Outside the route lane where the route needs it (its own lane ends or cannot make the turn).
        return lane_instruction("left" if ego.home_lateral > ego.lateral else "right", ego.lane_change_before - front)
    for stop in ego.stops:
        conn = world.map.get_lane(stop.connector_id)
        dist = stop.s - front
        if dist < -conn.length:
            continue  # through this junction already
        turn = conn.turn if isinstance(conn, LaneConnector) and conn.turn in ("left", "right") else "straight"
        return junction_instruction(turn, dist)
    return FOLLOW_ROAD


def _facts(world: World, annotations: Annotations) -> list[str]:
    ego = world.ego
    facts = []
    lanes = world.map.lanes_containing(ego.pose[:2])
    limit = next((ln.speed_limit for ln in lanes if ln.speed_limit), None)
    if limit:
        facts.append(f"Speed limit {limit * 3.6:.0f} km/h; driving at {ego.speed * 3.6:.0f} km/h.")
    front = ego.s + ego.length / 2
    for stop in ego.stops:
        dist = stop.s - front
        if stop.kind == "light" and 0 <= dist < 80:
            state = world.light_state(stop.connector_id)
            if state is not None:
                facts.append(f"Traffic light {dist:.0f} m ahead is {state.name.lower()}.")
            break
        if stop.kind == "yield" and 0 <= dist < 60:
            facts.append(f"Give way at the junction {dist:.0f} m ahead.")
            break
    boxes, names = annotations.boxes, annotations.names
    x, y = boxes[:, BoundingBoxIndex.X], boxes[:, BoundingBoxIndex.Y]
    in_lane = np.flatnonzero((x > 0) & (np.abs(y) < 2.0) & (x < 60))
    if len(in_lane):
        k = in_lane[np.argmin(x[in_lane])]
        speed = float(np.hypot(*annotations.velocity_3d[k, :2]))
        what = names[k].replace("_", " ")
        facts.append(f"Nearest in lane: {what} {x[k]:.0f} m ahead at {speed * 3.6:.0f} km/h.")
    near = np.hypot(x, y)
    counts = {
        "pedestrian": sum(1 for n, d in zip(names, near, strict=True) if n == AgentClass.PEDESTRIAN.value and d < 30),
        "cyclist": sum(1 for n, d in zip(names, near, strict=True) if n == AgentClass.BICYCLE.value and d < 40),
    }
    for what, n in counts.items():
        if n:
            facts.append(f"{n} {what}{'s' if n > 1 else ''} nearby.")
    works = {AgentClass.TRAFFIC_CONE.value, AgentClass.BARRIER.value, AgentClass.CZONE_SIGN.value}
    if any(n in works and 0 < xi < 80 for n, xi in zip(names, x, strict=True)):
        facts.append("Road works ahead.")
    return facts


def scene_description(world: World, annotations: Annotations) -> str:
    """What is on the road now (from the world and the frame's ``annotations``): a supervision target."""
    return " ".join(_facts(world, annotations))
