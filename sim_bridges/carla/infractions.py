"""CARLA's events and map -> the suite's backend-neutral ``Infraction`` records (leaderboard 2.x rules).

- **Collisions** come from the ego's collision sensor: the other actor's ``type_id`` gives the kind (``walker``:
  pedestrian; ``vehicle``: vehicle, bicycles included; ``static`` or ``traffic`` but not ``sidewalk``: static;
  anything else is ignored), then the leaderboard's de-duplication (``CollisionFilter``).
- **Red lights**: each light's stop lines (its stop waypoints, ``lateral_factor`` x lane width to each side); the
  ego runs a light when its rear axle crosses a red light's stop line driving along the lane (``StopLineCrossing``).
  A light is counted once until another one triggers.
- **Stop signs**: while the ego is inside a stop's zone it must once drop below ``stopped_speed``; leaving the
  zone without having stopped is an infraction (``StopSignRule``), once per stop.
- **Off-road and wrong way**: from the map's lane under the ego (``LaneRule``): off-road when farther than half a
  lane width plus ``margin`` from every driving lane's centre, wrong way when the lane's direction differs from
  the ego's heading by more than ``wrong_way_angle``; each stretch becomes one infraction whose value is its
  length [m], as the embedded world reports them.

Everything here is in the suite's frame (the env converts CARLA's values first) and pure, so it is tested
without a server.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.data.geometry import wrap_angle
from irl_vla.envs.infractions import Infraction, InfractionKind

FloatArray = npt.NDArray[np.float64]


def collision_kind_of(type_id: str) -> InfractionKind | None:
    """The collision kind of hitting a CARLA actor of ``type_id`` (None: not counted)."""
    if "walker" in type_id:
        return InfractionKind.COLLISION_PEDESTRIAN
    if "vehicle" in type_id:
        return InfractionKind.COLLISION_VEHICLE
    if ("static" in type_id or "traffic" in type_id) and "sidewalk" not in type_id:
        return InfractionKind.COLLISION_STATIC
    return None


@dataclass
class CollisionFilter:
    """Counts each collision once, as the leaderboard does.

    Attributes:
        same_object_time: the same actor is ignored this long after a counted collision [s].
        same_place_distance: collisions this close to the last counted one are ignored until the ego moved
            farther away [m].
        stopped_speed: collisions while the ego is slower than this are not its fault [m/s].
    """

    same_object_time: float = 5.0
    same_place_distance: float = 5.0
    stopped_speed: float = 0.1
    _last_time: dict[int, float] = field(default_factory=dict)
    _last_place: FloatArray | None = None

    def update(
        self, time: float, ego_xy: npt.ArrayLike, ego_speed: float, events: list[tuple[int, str]]
    ) -> list[Infraction]:
        """The counted collisions among this tick's sensor ``events`` (other actor id, type id)."""
        xy = np.asarray(ego_xy, dtype=np.float64)
        if self._last_place is not None and np.linalg.norm(xy - self._last_place) > self.same_place_distance:
            self._last_place = None
        out = []
        for other_id, type_id in events:
            kind = collision_kind_of(type_id)
            if kind is None or abs(ego_speed) < self.stopped_speed or self._last_place is not None:
                continue
            if other_id != 0 and time - self._last_time.get(other_id, -math.inf) < self.same_object_time:
                continue
            if other_id != 0:  # scenery is actor 0: not remembered
                self._last_time[other_id] = time
            self._last_place = xy.copy()
            message = f"Agent collided against object {type_id} (id={other_id}) at t={time:.1f} s"
            out.append(Infraction(kind, time, xy, other_id=str(other_id), message=message))
        return out


@dataclass(frozen=True)
class StopLine:
    """A light's stop line: centre (x, y) [m], the lane's heading [rad] and half its length [m]."""

    light_id: str
    center: tuple[float, float]
    heading: float
    half_length: float


def _segments_cross(p0: FloatArray, p1: FloatArray, q0: FloatArray, q1: FloatArray) -> bool:
    def cross(a: FloatArray, b: FloatArray) -> float:
        return float(a[0] * b[1] - a[1] * b[0])

    d1, d2 = p1 - p0, q1 - q0
    denom = cross(d1, d2)
    if abs(denom) < 1e-12:
        return False
    t = cross(q0 - p0, d2) / denom
    u = cross(q0 - p0, d1) / denom
    return 0.0 <= t <= 1.0 and 0.0 <= u <= 1.0


@dataclass
class StopLineCrossing:
    """Red lights run: the ego's rear axle crossing a red light's stop line along the lane's direction."""

    stop_lines: list[StopLine]
    _previous: FloatArray | None = None
    _last_light: str | None = None

    def update(self, time: float, ego_pose: npt.ArrayLike, red: set[str]) -> list[Infraction]:
        """Infractions of this tick; ``red``: ids of the lights that are red now."""
        pose = np.asarray(ego_pose, dtype=np.float64)
        previous, self._previous = self._previous, pose[:2].copy()
        if previous is None or not red:
            return []
        out = []
        for line in self.stop_lines:
            if line.light_id not in red or line.light_id == self._last_light:
                continue
            along = np.array([math.cos(line.heading), math.sin(line.heading)])
            if float(np.dot(along, [math.cos(pose[2]), math.sin(pose[2])])) <= 0.0:
                continue
            side = np.array([-along[1], along[0]]) * line.half_length
            c = np.asarray(line.center)
            if _segments_cross(previous, pose[:2], c - side, c + side):
                self._last_light = line.light_id
                message = f"Agent ran a red light {line.light_id} at t={time:.1f} s"
                out.append(
                    Infraction(InfractionKind.RED_LIGHT, time, pose[:2], other_id=line.light_id, message=message)
                )
        return out


@dataclass
class StopSignRule:
    """Stop signs: inside a stop's zone (centre (x, y) [m], radius [m]) the ego must once be nearly stopped."""

    zones: dict[str, tuple[tuple[float, float], float]]
    stopped_speed: float = 0.1
    _inside: dict[str, bool] = field(default_factory=dict)  # stop id -> stopped while inside
    _done: set[str] = field(default_factory=set)

    def update(self, time: float, ego_xy: npt.ArrayLike, ego_speed: float) -> list[Infraction]:
        """Infractions of this tick (a stop left without stopping)."""
        xy = np.asarray(ego_xy, dtype=np.float64)
        out = []
        for stop_id, (center, radius) in self.zones.items():
            if stop_id in self._done:
                continue
            inside = float(np.hypot(*(xy - np.asarray(center)))) <= radius
            if inside:
                self._inside[stop_id] = self._inside.get(stop_id, False) or abs(ego_speed) < self.stopped_speed
            elif stop_id in self._inside:
                stopped = self._inside.pop(stop_id)
                self._done.add(stop_id)
                if not stopped:
                    message = f"Agent ran a stop sign {stop_id} at t={time:.1f} s"
                    out.append(Infraction(InfractionKind.STOP_SIGN, time, xy, other_id=stop_id, message=message))
        return out


#: What ``LaneRule`` asks the map at a point: (lane heading [rad], distance to the lane centre [m], lane width
#: [m]) of the nearest driving lane, or None when there is none near.
LaneQuery = Callable[[FloatArray], tuple[float, float, float] | None]


@dataclass
class LaneRule:
    """Off-road and wrong-way stretches, each one infraction with its driven length [m] as value."""

    lane_at: LaneQuery
    margin: float = 0.5
    wrong_way_angle: float = math.radians(120.0)
    _previous: FloatArray | None = None
    _open: dict[InfractionKind, tuple[float, FloatArray, float]] = field(default_factory=dict)

    def update(self, time: float, ego_pose: npt.ArrayLike) -> list[Infraction]:
        """Infractions of stretches that ended at this tick."""
        pose = np.asarray(ego_pose, dtype=np.float64)
        step = 0.0 if self._previous is None else float(np.hypot(*(pose[:2] - self._previous)))
        self._previous = pose[:2].copy()
        lane = self.lane_at(pose[:2])
        off = lane is None or lane[1] > lane[2] / 2 + self.margin
        wrong = lane is not None and not off and abs(float(wrap_angle(pose[2] - lane[0]))) > self.wrong_way_angle
        out = []
        for kind, active in ((InfractionKind.OFF_ROAD, off), (InfractionKind.WRONG_WAY, wrong)):
            if active:
                start, where, length = self._open.get(kind, (time, pose[:2].copy(), 0.0))
                self._open[kind] = (start, where, length + step)
            elif kind in self._open:
                out.append(self._close(kind))
        return out

    def _close(self, kind: InfractionKind) -> Infraction:
        start, where, length = self._open.pop(kind)
        what = "drove off the road" if kind is InfractionKind.OFF_ROAD else "drove against the lane direction"
        return Infraction(
            kind, start, where, value=length, message=f"Agent {what} for {length:.1f} m from t={start:.1f} s"
        )

    def finish(self) -> list[Infraction]:
        """Close the open stretches at the end of the episode."""
        return [self._close(kind) for kind in list(self._open)]
