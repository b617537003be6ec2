"""``World``: the embedded world stepped at 10 Hz: IDM traffic on paths, lights, yielding, and the ego.

Every moving road user (the ego expert included) looks ahead along its own path: other objects whose centre
projects onto the path within a corridor are leaders; red lights, ambers it can still stop for, and yield
lines with priority traffic in or near the junction are virtual stopped leaders at the stop line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from irl_vla.data.enums import AgentClass, SE2Index
from irl_vla.data.geometry import points_to_local
from irl_vla.data.map import Map
from sim_bridges.embedded import vector_update
from sim_bridges.embedded.expert import plan_lateral
from sim_bridges.embedded.idm import acc_acceleration
from sim_bridges.embedded.road_users import RoadUser
from sim_bridges.embedded.traffic_lights import LightState, TrafficLightProgramme

DT = 0.1  # [s] simulation step
LOOK_AHEAD = 80.0  # [m] leader search range
SEARCH_BEHIND = 20.0  # [m] the leader search also looks this far behind a road user's centre (long neighbours)
PREDICTION_HORIZON = 4.0  # [s] look-ahead for people about to cross
LANE_END_ROOM = 25.0  # [m] a vehicle waiting to merge stops this far before its lane ends, to steer out from rest


LATERAL_ACCEL_COMFORT = 2.0  # [m/s^2] drivers slow for curves to keep lateral acceleration below this
CURVE_PREVIEW = np.arange(0.0, 60.0, 2.0)  # [m] distances ahead checked for curvature


def curve_speed(user: RoadUser) -> float:
    """Highest speed [m/s] from which ``user`` can slow comfortably to every curve speed ahead on its path."""
    kappa = np.abs(user.path.curvature_ahead(user.s + CURVE_PREVIEW))  # (P,)
    v_curve = np.sqrt(LATERAL_ACCEL_COMFORT / np.maximum(kappa, 1e-4))
    # Plan with half the comfortable deceleration: the IDM tracks a falling desired speed with some lag.
    reachable = np.sqrt(v_curve**2 + user.idm.decel_comfort * np.maximum(CURVE_PREVIEW - user.length / 2, 0))
    return float(reachable.min())


@dataclass
class World:
    """State of the embedded world.

    Attributes:
        map: the road network's map.
        road_users: every other road user and object.
        ego: the ego vehicle (driven by the expert policy or, in closed loop, by a planner).
        lights: traffic-light programmes.
        junction_half_size: half size of the (single) junction box centred at the origin [m]; 0 = none.
        priority_tokens: tokens of road users with right of way at the unsignalised junction.
        time: simulation time [s].
        ego_controller: closed loop: advances the (free) ego by ``DT`` [s] after the others' accelerations are
            read from the state at the start of the step (``ego_control.FreeEgo.advance``); ``None``: the ego is
            the expert (IDM and ``expert.plan_lateral``) or follows ``step``'s ``ego_accel``.
        vectorised: step in ``vector_update.step``: the road users' changing state held as columns that compiled
            loops (``road_user_kernels``) decide, integrate and pose in one call each, written back to the road
            users every step (equal to the per-user loop within float tolerance, many times faster; code that
            changes a road user between steps calls ``vector_update.invalidate``); the recorded logs use the loop
            (byte-identical splits).
    """

    map: Map
    road_users: list[RoadUser]
    ego: RoadUser
    lights: list[TrafficLightProgramme] = field(default_factory=list)
    junction_half_size: float = 0.0
    priority_tokens: set[str] = field(default_factory=set)
    time: float = 0.0
    ego_controller: Callable[[float], None] | None = None
    vectorised: bool = False

    def light_state(self, connector_id: str) -> LightState | None:
        """State of the light governing ``connector_id`` now, or None if unsignalised."""
        prog = self._programme_of().get(connector_id)
        return None if prog is None else prog.state(connector_id, self.time)

    def _programme_of(self) -> dict[str, TrafficLightProgramme]:
        """The first programme governing each signalised connector (remade when ``lights`` is replaced or grows)."""
        key = (id(self.lights), len(self.lights))
        cached = self.__dict__.get("_programmes")
        if cached is None or cached[0] != key:
            index: dict[str, TrafficLightProgramme] = {}
            for prog in self.lights:
                for cid in prog.connector_ids:
                    index.setdefault(cid, prog)
            cached = self.__dict__["_programmes"] = (key, index)
        return cached[1]

    def red_connectors(self) -> list[tuple[str, bool]]:
        """``(lane_connector_id, is_red)`` of every signalised connector (amber counts as not red)."""
        return [(cid, st is LightState.RED) for prog in self.lights for cid, st in prog.states(self.time).items()]

    @property
    def road_users_and_ego(self) -> list[RoadUser]:
        """The ego first, then the others."""
        return [self.ego, *self.road_users]

    # ------------------------------------------------------------------ perception of one user
    def _leader_gap(
        self, user: RoadUser, poses: np.ndarray, others: list[int], everyone: list[RoadUser]
    ) -> tuple[float, float, float]:
        """Bumper gap [m], speed [m/s] and acceleration [m/s^2] of the nearest object ahead on ``user``'s path."""
        if not others:
            return np.inf, 0.0, 0.0
        best_gap, best_speed, best_accel = self._crossing_gap(user, [everyone[i] for i in others]), 0.0, 0.0
        centres = poses[others, : SE2Index.HEADING]
        s, lat = user.path.project(centres, around=(user.s - SEARCH_BEHIND, user.s + LOOK_AHEAD + SEARCH_BEHIND))
        for k, idx in enumerate(others):
            other = everyone[idx]
            ds = s[k] - user.s
            if ds <= 0.0 or ds > LOOK_AHEAD:
                continue
            vulnerable = other.agent_class in (AgentClass.PEDESTRIAN, AgentClass.BICYCLE)
            margin = 1.2 if vulnerable else 0.3  # anticipate people stepping into the lane
            # Where the user will be laterally when its front reaches the other's rear (its planned manoeuvre).
            own = (
                user.lateral
                if user.manoeuvre is None
                else user.manoeuvre.offset(user.s + max(ds - other.length / 2, 0.0))
            )
            lo, hi = min(user.lateral, own), max(user.lateral, own)
            if user.manoeuvre is not None and ds - (user.length + other.length) / 2 > 0.5:
                lo = hi = own  # not alongside yet: only the planned position counts
            shift = (other.manoeuvre.end - other.lateral) if other.manoeuvre is not None else 0.0
            o_lo, o_hi = min(lat[k], lat[k] + shift), max(lat[k], lat[k] + shift)
            half = (user.width + other.width) / 2 + margin
            if o_hi < lo - half or o_lo > hi + half:
                continue
            gap = ds - (user.length + other.length) / 2
            if gap < best_gap:
                heading_diff = poses[idx, SE2Index.HEADING] - user.pose[SE2Index.HEADING]
                along = float(np.cos(heading_diff))
                best_gap, best_speed = gap, max(0.0, other.speed * along)
                best_accel = other.accel * along if best_speed > 0 else 0.0
        return best_gap, best_speed, best_accel

    def _crossing_gap(self, user: RoadUser, others: list[RoadUser]) -> float:
        """Gap [m] to where a pedestrian or cyclist walking its own path enters this user's lane in 4 s."""
        best = np.inf
        horizon = np.arange(0.0, PREDICTION_HORIZON + 1e-9, 0.5)  # (T,) [s]
        for other in others:
            if other.agent_class not in (AgentClass.PEDESTRIAN, AgentClass.BICYCLE) or other.reactive:
                continue
            moving = np.maximum(0.0, horizon - max(0.0, other.start_time - self.time))
            future = other.path.pose_at(other.s + other.speed * moving)[:, : SE2Index.HEADING]  # (T, 2)
            s, lat = user.path.project(future, around=(user.s - SEARCH_BEHIND, user.s + LOOK_AHEAD + SEARCH_BEHIND))
            inside = (np.abs(lat - np.clip(lat, *user.lateral_span())) < (user.width + other.width) / 2 + 1.0) & (
                s > user.s
            )
            if inside.any():
                best = min(best, float(s[inside].min()) - user.s - (user.length + other.length) / 2)
        return best

    def _stop_gap(self, user: RoadUser) -> float:
        """Gap [m] to the first stop line ahead that must be respected now (inf if none)."""
        front = user.s + user.length / 2
        if user.hold_s < np.inf:
            return max(user.hold_s - front, 0.0)
        for stop in user.stops:
            dist = stop.s - front
            if dist < -0.5:
                continue  # already past the line
            if stop.kind == "light":
                state = self.light_state(stop.connector_id)
                if state is LightState.RED:
                    return max(dist, 0.0)
                if state is LightState.AMBER:
                    braking = user.speed**2 / (2 * user.idm.decel_comfort)
                    if dist > braking:  # can stop comfortably: do
                        return max(dist, 0.0)
            elif stop.kind == "yield" and dist < 40.0 and self._junction_busy(user, dist):
                return max(dist, 0.0)
        if user.manoeuvre is None and abs(user.lateral - user.home_lateral) > 1.0:
            # Still outside its lane (a merge or a lane change the route needs): the lane ends or turns away
            # at ``lane_change_before``; wait there for a gap rather than go on.
            return max(user.lane_change_before - LANE_END_ROOM - front, 0.0)
        return np.inf

    def _junction_busy(self, user: RoadUser, dist: float) -> bool:
        """Whether a priority road user is in the junction or reaches it before ``user`` could clear it.

        ``dist`` [m] is the user's distance to its yield line; clearing means crossing the junction box and
        the user's length at its current speed (at least 2.5 m/s), plus 1.5 s.
        """
        h = self.junction_half_size
        horizon = max(4.0, (max(dist, 0.0) + 2 * h + user.length) / max(user.speed, 2.5) + 1.5)
        for other in self.road_users_and_ego:
            if other is user or other.track_token not in self.priority_tokens or other.speed < 0.5:
                continue
            x, y, _ = other.pose
            gap = max(abs(x), abs(y)) - h
            if gap < 0:  # inside the box; leaving it frees the junction once past the centre
                if np.hypot(x, y) < h:
                    return True
                continue
            heading_in = np.dot([np.cos(other.pose[2]), np.sin(other.pose[2])], [-x, -y]) > 0
            if heading_in and gap / max(other.speed, 0.1) < horizon:
                return True
        return False

    # ------------------------------------------------------------------ stepping
    def poses(self) -> np.ndarray:
        """Box-centre poses ``(N, 3)`` of everyone, the ego first.

        A vectorised world (the closed-loop env's) keeps them until the time, the ego or the number of road users
        changes: between steps the env reads what the next step reads again.
        """
        if not self.vectorised:
            return np.stack([a.pose for a in self.road_users_and_ego])
        key = (self.time, id(self.ego), len(self.road_users))
        cached = getattr(self, "_poses", None)
        if cached is None or cached[0] != key:
            cached = (key, vector_update.poses(self))
            self._poses = cached
        return cached[1].copy()

    def accelerations(self, skip_ego: bool = False, poses: np.ndarray | None = None) -> np.ndarray:
        """IDM accelerations [m/s^2] of every road user (ego first) at the current state.

        ``poses`` ``(N, 3)``: ``poses()`` of the current state, if the caller has them. A vectorised world leaves
        background life at 0 (it keeps its own pace: ``step`` never reads its acceleration); the loop decides it.
        """
        poses = self.poses() if poses is None else poses  # (N, 3)
        if self.vectorised:
            return vector_update.accelerations(self, skip_ego, poses)
        everyone = self.road_users_and_ego
        interacting = np.array([not a.background for a in everyone])  # (N,) background life is off the road
        acc = np.zeros(len(everyone))
        for i, user in enumerate(everyone):
            if user.is_static or (skip_ego and i == 0):
                continue
            if self.time < user.start_time:
                continue
            if not user.reactive:
                acc[i] = 0.0
                continue
            rel = poses[:, :2] - poses[i, :2]  # (N, 2)
            heading = poses[i, SE2Index.HEADING]
            along = rel[:, 0] * np.cos(heading) + rel[:, 1] * np.sin(heading)
            # Near and not behind: paths turn by at most a right angle, so what is behind is never ahead on them.
            near = interacting & (np.einsum("nk,nk->n", rel, rel) < (LOOK_AHEAD + 10) ** 2) & (along > -SEARCH_BEHIND)
            others = [j for j in np.flatnonzero(near) if j != i]
            gap, lead_speed, lead_accel = self._leader_gap(user, poses, others, everyone)
            stop_gap = self._stop_gap(user)
            if stop_gap < gap:
                gap, lead_speed, lead_accel = stop_gap, 0.0, 0.0
            v0 = min(user.target_speed, curve_speed(user))
            acc[i] = acc_acceleration(user.speed, v0, gap, lead_speed, lead_accel, user.idm)
        return acc

    def _people_wait(self, person: RoadUser, poses: np.ndarray) -> bool:
        """Whether a pedestrian or cyclist crossing on its own path must wait: a vehicle is in its next 2 m."""
        ahead = person.path.pose_at(person.s + np.array([0.6, 1.2, 2.0]))[:, : SE2Index.HEADING]  # (3, 2)
        for user, pose in zip(self.road_users_and_ego, poses, strict=True):
            if user is person or user.agent_class is not AgentClass.VEHICLE or user.background:
                continue
            along, across = points_to_local(ahead, pose).T
            if np.any((np.abs(along) < user.length / 2 + 1.0) & (np.abs(across) < user.width / 2 + 1.0)):
                return True
        return False

    def run_schedules(self, users: list[RoadUser]) -> None:
        """Apply the speed schedules and scripted lane changes of ``users`` that are due now."""
        for user in users:
            while user.speed_schedule and user.speed_schedule[0][0] <= self.time:
                speed = user.speed_schedule.pop(0)[1]
                if speed > 0.0:
                    user.target_speed, user.hold_s = speed, np.inf
                else:  # come to a comfortable stop, then wait
                    braking = user.speed**2 / (2.0 * 0.7 * user.idm.decel_comfort)
                    user.hold_s = user.s + user.length / 2 + braking + user.idm.min_gap
            if user.lane_change_at is not None and self.time >= user.lane_change_at and user.manoeuvre is None:
                user.home_lateral = user.lane_change_to
                user.start_manoeuvre(user.lane_change_to, brisk=True)
                user.lane_change_at = None

    def plans_lateral(self, ego_accel: float | None) -> bool:
        """Whether the expert ego makes its lateral plan (``expert.plan_lateral``) at this step."""
        return ego_accel is None and self.ego_controller is None and self.ego.expert and round(self.time / DT) % 5 == 0

    def step(self, ego_accel: float | None = None) -> None:
        """Advance 0.1 s. ``ego_accel`` [m/s^2] overrides the ego's own IDM; an ``ego_controller`` drives it instead.

        Everyone reacts to the state at the start of the step (the ego included, whoever drives it), then all
        move together. A vectorised world steps in ``vector_update.step`` (its road users' state held as columns
        that compiled loops update; the same arithmetic in the same order).
        """
        if self.vectorised:
            vector_update.step(self, ego_accel)
            return
        free = self.ego_controller is not None
        everyone = self.road_users_and_ego
        self.run_schedules(everyone)
        if self.plans_lateral(ego_accel):
            plan_lateral(self, self.ego)
        poses = self.poses()  # (N, 3)
        acc = self.accelerations(skip_ego=ego_accel is not None or free, poses=poses)
        if ego_accel is not None:
            acc[0] = ego_accel
        ego, now = self.ego, self.time
        for a, user in zip(acc, everyone, strict=True):
            if free and user is ego:
                continue
            if user.target_speed <= 0.0 or now < user.start_time:  # static (``RoadUser.is_static``) or not started
                user.accel = 0.0
                continue
            if user.background:
                # Life beside the road keeps its pace to the end of its path, then stays there.
                if user.s >= user.path.length:
                    user.target_speed = 0.0
                new_speed = user.target_speed
            elif not user.reactive:
                # People crossing keep their pace but do not walk into a vehicle in front of them.
                new_speed = 0.0 if self._people_wait(user, poses) else user.target_speed
            else:
                new_speed = max(0.0, user.speed + a * DT)
            user.s += 0.5 * (user.speed + new_speed) * DT
            user.accel = (new_speed - user.speed) / DT
            user.speed = new_speed
            if user.manoeuvre is not None:
                user.advance_lateral()
        if self.ego_controller is not None:
            self.ego_controller(DT)
        self.time = round(self.time + DT, 9)
