"""The expert's lateral decisions: nudging round obstacles, lane changes to pass them or to reach the route lane.

Longitudinal control is the world's IDM (with the expert's style); this module only chooses a lateral target
every 0.5 s and starts a smooth ``LateralManoeuvre`` when the move is needed and safe:

* home: the route lane (``RoadUser.home_lateral``); the expert returns there when nothing blocks it;
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
from sim_bridges.embedded.road_users import RoadUser, manoeuvre_length

if TYPE_CHECKING:
    from sim_bridges.embedded.world import World

DECISION_RANGE = 60.0  # [m] blockers considered ahead
ONCOMING_RANGE = 500.0  # [m] traffic considered for the safety of a move
CLEARANCE = {AgentClass.PEDESTRIAN: 1.3, AgentClass.BICYCLE: 1.3, AgentClass.VEHICLE: 0.7}
DEFAULT_CLEARANCE = 0.5  # [m] cones, barriers, signs, objects


def _clearance(other: RoadUser) -> float:
    return CLEARANCE.get(other.agent_class, DEFAULT_CLEARANCE)


def _is_blocker(user: RoadUser, other: RoadUser) -> bool:
    if other.is_static:
        return True
    return other.agent_class is AgentClass.BICYCLE and other.reactive and other.speed < 0.6 * user.target_speed


def _projected(user: RoadUser, others: list[RoadUser]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arc length ahead [m], lateral [m] on ``user``'s path and heading agreement (cos) of ``others``."""
    poses = np.stack([o.pose for o in others])  # (N, 3)
    s, lat = user.path.project(poses[:, : SE2Index.HEADING])
    cos = np.cos(poses[:, SE2Index.HEADING] - user.pose[SE2Index.HEADING])
    return s - user.s, lat, cos


def _blocked(user: RoadUser, target: float, blockers: list[tuple[float, float, RoadUser]]) -> float:
    """Distance [m] to the first blocker that overlaps the corridor at lateral ``target`` (inf if none)."""
    first = np.inf
    for ds, lat, other in blockers:
        half = (user.width + other.width) / 2 + _clearance(other)
        if abs(lat - target) < half and -(user.length + other.length) / 2 - 4.0 < ds < first:
            first = ds
    return first


def _safe(user: RoadUser, target: float, movers: list[tuple[float, float, float, RoadUser]], time_out: float) -> bool:
    """Whether the corridor swept from the current lateral to ``target`` is free of traffic conflicts.

    ``time_out`` [s] is how long the move keeps the user at ``target`` (oncoming traffic must not arrive
    within it).
    """
    lo, hi = min(user.lateral, target), max(user.lateral, target)
    v = user.speed
    for ds, lat, cos, other in movers:
        half = (user.width + other.width) / 2 + 0.5
        if lat < lo - half or lat > hi + half:
            continue
        gap = abs(ds) - (user.length + other.length) / 2
        if cos < 0.0:  # oncoming: if we move towards it, it must not arrive while we are out there
            if abs(target - lat) < abs(user.lateral - lat) and -5.0 < ds < (v + other.speed) * time_out + 20.0:
                return False
        elif ds >= 0.0:  # ahead, same direction
            if gap < max(6.0, 0.8 * v + 2.0 * (v - other.speed)):
                return False
        elif abs(lat - user.lateral) < (user.width + other.width) / 2:
            continue  # behind in the lane being left: it follows whether the user moves or not (no new conflict)
        elif gap < max(6.0, 1.0 * other.speed + 3.0 * (other.speed - v)):  # behind, same direction
            return False
    return True


def plan_lateral(world: World, user: RoadUser) -> None:
    """Start a lateral manoeuvre for ``user`` (the expert) if one is needed and safe now."""
    if user.manoeuvre is not None or user.s + user.length / 2 >= user.lane_change_before:
        return
    others = [
        o for o in world.road_users if not o.background and np.hypot(*(o.pose[:2] - user.pose[:2])) < ONCOMING_RANGE
    ]
    if others:
        ds, lat, cos = _projected(user, others)
    else:
        ds = lat = cos = np.zeros(0)
    blockers = [(d, la, o) for d, la, o in zip(ds, lat, others, strict=True) if _is_blocker(user, o)]
    ahead = blockers  # the group passed in one go may reach beyond the decision range
    blockers = [b for b in blockers if b[0] < DECISION_RANGE]
    movers = [
        (d, la, c, o)
        for d, la, c, o in zip(ds, lat, cos, others, strict=True)
        if not o.is_static and o.agent_class is not AgentClass.PEDESTRIAN and not _is_blocker(user, o)
    ]
    here = _blocked(user, user.lateral, blockers)
    home = user.home_lateral
    back_length = manoeuvre_length(user.speed, home - user.lateral)
    if abs(user.lateral - home) > 0.05 and _blocked(user, home, blockers) > back_length + 15.0:
        # Home is free for long enough to get back (a blocker further on is dealt with when it comes). Where the
        # lane ends, the move must be complete by then: briskly if need be, else wait at the end for a gap.
        room = user.lane_change_before - (user.s + user.length / 2)
        brisk = back_length > room
        if brisk and manoeuvre_length(user.speed, home - user.lateral, brisk=True) > room:
            return
        length = manoeuvre_length(user.speed, home - user.lateral, brisk=brisk)
        if _safe(user, home, movers, length / max(user.speed, 1.0) + 2.0):
            user.start_manoeuvre(home, brisk=brisk)
        return
    if here == np.inf:
        user.hold_s = np.inf
        return
    nearest = min((b for b in blockers if _blocked(user, user.lateral, [b]) == here), key=lambda b: b[0])
    ds_b, lat_b, blocker = nearest
    options = []
    for side in (1.0, -1.0):  # left first: passing on the left is the rule with right-hand traffic
        target = lat_b + side * ((user.width + blocker.width) / 2 + _clearance(blocker) + 0.1)
        room_right, room_left = user.nudge_room
        if home - room_right <= target <= home + room_left:
            options.append(target)
    options += sorted((o for o in user.lane_offsets if o != home), key=lambda o: abs(o - user.lateral))
    hold = np.inf
    for target in options:
        length = manoeuvre_length(user.speed, target - user.lateral)
        if ds_b - (user.length + blocker.length) / 2 > length + 15.0:
            continue  # not yet: swerve no earlier than needed
        if _blocked(user, target, blockers) < np.inf:
            continue
        if user.s + user.length / 2 + length >= user.lane_change_before:
            continue
        # Out at ``target`` until past the blocker, and any others too close after it to get back in between
        # (at the closing speed), and back again.
        ds_end = ds_b
        for ds_next, lat_next, nxt in sorted(ahead, key=lambda b: b[0]):
            close = ds_next > ds_end and ds_next - ds_end < manoeuvre_length(user.speed, target - home) + 25.0
            if close and _blocked(user, home, [(ds_next, lat_next, nxt)]) < np.inf:
                ds_end = ds_next
        passing = (ds_end + user.length + blocker.length + 10.0) / max(user.speed - blocker.speed, 1.0)
        time_out = passing + 2.0 * length / max(user.speed, 1.0) + 2.0
        if _safe(user, target, movers, time_out):
            user.start_manoeuvre(target)
            user.hold_s = np.inf
            return
        # Not now: if nothing else works, wait far enough back to steer out from rest once it is safe.
        rear = user.s + ds_b - blocker.length / 2
        hold = min(hold, rear - manoeuvre_length(0.0, target - user.lateral) - 1.0)
    user.hold_s = hold
