"""The expert's lateral decisions: nudging round obstacles, lane changes to pass them or to reach the route lane.

Longitudinal control is the world's IDM (with the expert's style); this module only chooses a lateral target
every 0.5 s and starts a smooth ``LateralManoeuvre`` when the move is needed and safe:

* home: the route lane (``Agent.home_lateral``); the expert returns there when nothing blocks it;
* a blocker is a static object (parked car, cone, barrier) or a slow cyclist ahead whose box, widened by a
  clearance, overlaps the expert's corridor;
* options, in order: a nudge just wide enough to clear the nearest blocker, kept within ``nudge_room``
  (own lane, or a little into a free neighbouring lane); a change into another same-direction lane; else
  it stays and the IDM stops it behind the blocker;
* a move is safe when no road user in the swept corridor is too close: ahead or behind in the same
  direction (gaps grow with speed and closing speed) or oncoming within the time needed to pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from irl_vla.data.enums import AgentClass, SE2Index
from sim_bridges.embedded.agents import Agent, manoeuvre_length

if TYPE_CHECKING:
    from sim_bridges.embedded.world import World

DECISION_RANGE = 60.0  # [m] blockers considered ahead
ONCOMING_RANGE = 500.0  # [m] traffic considered for the safety of a move
CLEARANCE = {AgentClass.PEDESTRIAN: 1.3, AgentClass.BICYCLE: 1.3, AgentClass.VEHICLE: 0.7}
DEFAULT_CLEARANCE = 0.5  # [m] cones, barriers, signs, objects


def _clearance(other: Agent) -> float:
    return CLEARANCE.get(other.agent_class, DEFAULT_CLEARANCE)


def _is_blocker(agent: Agent, other: Agent) -> bool:
    if other.is_static:
        return True
    return other.agent_class is AgentClass.BICYCLE and other.reactive and other.speed < 0.6 * agent.target_speed


def _projected(agent: Agent, others: list[Agent]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arc length ahead [m], lateral [m] on ``agent``'s path and heading agreement (cos) of ``others``."""
    poses = np.stack([o.pose for o in others])  # (N, 3)
    s, lat = agent.path.project(poses[:, : SE2Index.HEADING])
    cos = np.cos(poses[:, SE2Index.HEADING] - agent.pose[SE2Index.HEADING])
    return s - agent.s, lat, cos


def _blocked(agent: Agent, target: float, blockers: list[tuple[float, float, Agent]]) -> float:
    """Distance [m] to the first blocker that overlaps the corridor at lateral ``target`` (inf if none)."""
    first = np.inf
    for ds, lat, other in blockers:
        half = (agent.width + other.width) / 2 + _clearance(other)
        if abs(lat - target) < half and -(agent.length + other.length) / 2 - 4.0 < ds < first:
            first = ds
    return first


def _safe(agent: Agent, target: float, movers: list[tuple[float, float, float, Agent]], time_out: float) -> bool:
    """Whether the corridor swept from the current lateral to ``target`` is free of traffic conflicts.

    ``time_out`` [s] is how long the move keeps the agent at ``target`` (oncoming traffic must not arrive
    within it).
    """
    lo, hi = min(agent.lateral, target), max(agent.lateral, target)
    v = agent.speed
    for ds, lat, cos, other in movers:
        half = (agent.width + other.width) / 2 + 0.5
        if lat < lo - half or lat > hi + half:
            continue
        gap = abs(ds) - (agent.length + other.length) / 2
        if cos < 0.0:  # oncoming: if we move towards it, it must not arrive while we are out there
            if abs(target - lat) < abs(agent.lateral - lat) and -5.0 < ds < (v + other.speed) * time_out + 20.0:
                return False
        elif ds >= 0.0:  # ahead, same direction
            if gap < max(6.0, 0.8 * v + 2.0 * (v - other.speed)):
                return False
        elif gap < max(6.0, 1.0 * other.speed + 3.0 * (other.speed - v)):  # behind, same direction
            return False
    return True


def plan_lateral(world: World, agent: Agent) -> None:
    """Start a lateral manoeuvre for ``agent`` (the expert) if one is needed and safe now."""
    if agent.manoeuvre is not None or agent.s + agent.length / 2 >= agent.lane_change_before:
        return
    others = [o for o in world.agents if np.hypot(*(o.pose[:2] - agent.pose[:2])) < ONCOMING_RANGE]
    if others:
        ds, lat, cos = _projected(agent, others)
    else:
        ds = lat = cos = np.zeros(0)
    blockers = [(d, la, o) for d, la, o in zip(ds, lat, others, strict=True) if _is_blocker(agent, o)]
    ahead = blockers  # the group passed in one go may reach beyond the decision range
    blockers = [b for b in blockers if b[0] < DECISION_RANGE]
    movers = [
        (d, la, c, o)
        for d, la, c, o in zip(ds, lat, cos, others, strict=True)
        if not o.is_static and o.agent_class is not AgentClass.PEDESTRIAN and not _is_blocker(agent, o)
    ]
    here = _blocked(agent, agent.lateral, blockers)
    home = agent.home_lateral
    back_length = manoeuvre_length(agent.speed, home - agent.lateral)
    if abs(agent.lateral - home) > 0.05 and _blocked(agent, home, blockers) > back_length + 15.0:
        # Home is free for long enough to get back (a blocker further on is dealt with when it comes). Where the
        # lane ends, the move must be complete by then: briskly if need be, else wait at the end for a gap.
        room = agent.lane_change_before - (agent.s + agent.length / 2)
        brisk = back_length > room
        if brisk and manoeuvre_length(agent.speed, home - agent.lateral, brisk=True) > room:
            return
        length = manoeuvre_length(agent.speed, home - agent.lateral, brisk=brisk)
        if _safe(agent, home, movers, length / max(agent.speed, 1.0) + 2.0):
            agent.start_manoeuvre(home, brisk=brisk)
        return
    if here == np.inf:
        agent.hold_s = np.inf
        return
    nearest = min((b for b in blockers if _blocked(agent, agent.lateral, [b]) == here), key=lambda b: b[0])
    ds_b, lat_b, blocker = nearest
    options = []
    for side in (1.0, -1.0):  # left first: passing on the left is the rule with right-hand traffic
        target = lat_b + side * ((agent.width + blocker.width) / 2 + _clearance(blocker) + 0.1)
        room_right, room_left = agent.nudge_room
        if home - room_right <= target <= home + room_left:
            options.append(target)
    options += sorted((o for o in agent.lane_offsets if o != home), key=lambda o: abs(o - agent.lateral))
    hold = np.inf
    for target in options:
        length = manoeuvre_length(agent.speed, target - agent.lateral)
        if ds_b - (agent.length + blocker.length) / 2 > length + 15.0:
            continue  # not yet: swerve no earlier than needed
        if _blocked(agent, target, blockers) < np.inf:
            continue
        if agent.s + agent.length / 2 + length >= agent.lane_change_before:
            continue
        # Out at ``target`` until past the blocker, and any others too close after it to get back in between
        # (at the closing speed), and back again.
        ds_end = ds_b
        for ds_next, lat_next, nxt in sorted(ahead, key=lambda b: b[0]):
            close = ds_next > ds_end and ds_next - ds_end < manoeuvre_length(agent.speed, target - home) + 25.0
            if close and _blocked(agent, home, [(ds_next, lat_next, nxt)]) < np.inf:
                ds_end = ds_next
        passing = (ds_end + agent.length + blocker.length + 10.0) / max(agent.speed - blocker.speed, 1.0)
        time_out = passing + 2.0 * length / max(agent.speed, 1.0) + 2.0
        if _safe(agent, target, movers, time_out):
            agent.start_manoeuvre(target)
            agent.hold_s = np.inf
            return
        # Not now: if nothing else works, wait far enough back to steer out from rest once it is safe.
        rear = agent.s + ds_b - blocker.length / 2
        hold = min(hold, rear - manoeuvre_length(0.0, target - agent.lateral) - 1.0)
    agent.hold_s = hold
