"""Road users of the embedded world: vehicles, cyclists, pedestrians and static objects, each on a ``Path``.

The word "agent" is kept for driving policies (``irl_vla.agents``); what moves in the world is a road user.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import AgentClass
from sim_bridges.embedded.idm import IDMParams
from sim_bridges.embedded.paths import Path


@dataclass
class StopPoint:
    """A place on a road user's path where it may have to stop.

    Attributes:
        s: arc length of the stop line on the user's path [m].
        connector_id: lane connector entered after it (its light decides for signalised stops).
        kind: ``"light"`` (obey the light) or ``"yield"`` (give way to priority traffic in the junction).
    """

    s: float
    connector_id: str
    kind: str = "light"


@dataclass
class LateralManoeuvre:
    """A smooth lateral shift (lane change or nudge) from ``start`` to ``end`` [m] over ``length`` [m] of travel.

    The offset follows a half cosine in arc length, so the slope (heading change) and the lateral acceleration
    ``v^2 * d2(lat)/ds2`` stay bounded and vanish at both ends; a vehicle that stops mid-manoeuvre stops
    sideways motion too.
    """

    s0: float
    length: float
    start: float
    end: float

    def _u(self, s: float) -> float:
        return min(max((s - self.s0) / self.length, 0.0), 1.0)

    def offset(self, s: float) -> float:
        """Lateral offset [m] at arc length ``s``."""
        return self.start + (self.end - self.start) * 0.5 * (1.0 - float(np.cos(np.pi * self._u(s))))

    def slope(self, s: float) -> float:
        """d(offset)/ds at ``s``."""
        u = self._u(s)
        return (self.end - self.start) * 0.5 * np.pi / self.length * float(np.sin(np.pi * u))

    def done(self, s: float) -> bool:
        """Whether the manoeuvre is complete at ``s``."""
        return s >= self.s0 + self.length


def manoeuvre_length(speed: float, shift: float, *, brisk: bool = False) -> float:
    """Travel [m] for a lateral shift of ``shift`` [m] at ``speed`` [m/s] keeping lateral acceleration near 1 m/s^2.

    ``brisk`` shortens it to 60 % (cut-ins, late merges), never below the length that keeps the heading
    within 0.25 rad of the path.
    """
    comfortable = 4.0 * speed * np.sqrt(max(abs(shift), 0.3) / 3.5)
    # Never steeper than 0.25 rad off the path (the box turns about its centre, so its corners swing out).
    shortest = 2.0 * np.pi * max(abs(shift), 0.3)
    return float(max(shortest, comfortable * (0.6 if brisk else 1.0)))


@dataclass
class RoadUser:
    """A road user or object.

    Attributes:
        track_token: stable id over the log.
        agent_class: NAVSIM class.
        length: [m].
        width: [m].
        height: [m].
        path: path followed (centre of the object moves along it).
        s: arc length of the object's centre on ``path`` [m].
        speed: [m/s] along the path.
        target_speed: desired speed [m/s] (0 for static objects).
        idm: longitudinal parameters.
        lateral: offset to the left of the path [m] (parked cars, nudges).
        stops: stop lines on the path, in order.
        start_time: the user stands still before this time [s] (pedestrians waiting to cross).
        reactive: whether it drives by IDM among others (False: a person crossing at its own pace along its
            path, who only waits while a vehicle stands in the way).
        accel: last longitudinal acceleration [m/s^2].
        manoeuvre: lateral manoeuvre under way, if any.
        home_lateral: lateral offset of the lane the user belongs in (the route lane for the expert) [m].
        lane_offsets: lateral offsets of same-direction lane centres it may change into [m].
        lane_change_before: no lateral manoeuvre starts at or beyond this arc length (junction entry) [m].
        lane_change_at: scripted lane change: time [s] at which it starts towards ``lane_change_to`` [m].
        lane_change_to: target lateral offset of the scripted lane change [m].
        nudge_room: how far right and left of ``home_lateral`` a nudge may go [m] (own lane by default).
        expert: the lateral decisions (nudges, lane changes) are the expert's (``expert.plan_lateral``).
        speed_schedule: ``(time [s], target speed [m/s])`` changes in time order (stop-and-go traffic); a
            target of 0 brings the user to a comfortable stop at ``hold_s`` until the next positive target.
        hold_s: arc length of the front bumper's current hold point [m] (inf: none).
        background: background life (parked off the road, walking or riding beside it): never enters a lane,
            so no one else reacts to it and it reacts to no one; it only keeps to its own path.
    """

    track_token: str
    agent_class: AgentClass
    length: float
    width: float
    height: float
    path: Path
    s: float
    speed: float = 0.0
    target_speed: float = 0.0
    idm: IDMParams = field(default_factory=IDMParams)
    lateral: float = 0.0
    stops: list[StopPoint] = field(default_factory=list)
    start_time: float = 0.0
    reactive: bool = True
    accel: float = 0.0
    manoeuvre: LateralManoeuvre | None = None
    home_lateral: float = 0.0
    lane_offsets: tuple[float, ...] = (0.0,)
    lane_change_before: float = np.inf
    lane_change_at: float | None = None
    lane_change_to: float = 0.0
    nudge_room: tuple[float, float] = (0.7, 0.7)
    expert: bool = False
    speed_schedule: list[tuple[float, float]] = field(default_factory=list)
    hold_s: float = np.inf
    background: bool = False
    _pose: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(3), repr=False, compare=False)
    _pose_key: tuple[float, float, int, int] | None = field(default=None, repr=False, compare=False)

    @property
    def is_static(self) -> bool:
        """Never moves (cones, barriers, parked cars)."""
        return self.target_speed <= 0.0

    @property
    def pose(self) -> npt.NDArray[np.float64]:
        """(x, y, heading) of the box centre [m, rad]; heading includes the lateral manoeuvre's slope.

        Computed once per state: cached until ``s``, ``lateral``, ``manoeuvre`` or ``path`` change.
        """
        key = (self.s, self.lateral, id(self.manoeuvre), id(self.path))
        if self._pose_key != key:
            pose = self.path.pose_at(self.s, self.lateral)
            if self.manoeuvre is not None:
                pose[2] += float(np.arctan(self.manoeuvre.slope(self.s)))
            self._pose, self._pose_key = pose, key
        return self._pose.copy()

    def curvature(self) -> float:
        """Curvature [1/m] of the user's motion now: its path's at ``s`` (a free ego's from its steering)."""
        return float(self.path.curvature_at(self.s))

    def lateral_span(self) -> tuple[float, float]:
        """Range of lateral offsets [m] the user occupies or is moving into (current and manoeuvre target)."""
        end = self.manoeuvre.end if self.manoeuvre is not None else self.lateral
        return min(self.lateral, end), max(self.lateral, end)

    def start_manoeuvre(self, target: float, *, brisk: bool = False) -> None:
        """Begin a lateral shift from the current offset to ``target`` [m]."""
        length = manoeuvre_length(self.speed, target - self.lateral, brisk=brisk)
        self.manoeuvre = LateralManoeuvre(self.s, length, self.lateral, target)

    def advance_lateral(self) -> None:
        """Update ``lateral`` after ``s`` moved; finish the manoeuvre at its end."""
        if self.manoeuvre is None:
            return
        self.lateral = self.manoeuvre.offset(self.s)
        if self.manoeuvre.done(self.s):
            self.lateral, self.manoeuvre = self.manoeuvre.end, None


def road_user_fields(user: RoadUser) -> dict[str, object]:
    """The public fields of ``user`` as keywords of ``RoadUser`` (to rebuild it as another kind of road user)."""
    return {name: getattr(user, name) for name in RoadUser.__dataclass_fields__ if not name.startswith("_")}
