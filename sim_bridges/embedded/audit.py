"""Auditing an expert rollout: collisions, drivable area, red lights and comfort, step by step at 10 Hz.

Used by the generator (a log that fails is never written; the manifest counts them) and by the tests, which
require that no generated log fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.prepared import PreparedGeometry, prep

from irl_vla.data.geometry import box_corners
from irl_vla.data.map import Map
from irl_vla.data.map.map_objects import DRIVABLE_LAYERS
from sim_bridges.embedded.road_users import RoadUser
from sim_bridges.embedded.traffic_lights import LightState
from sim_bridges.embedded.world import DT, World

#: Comfort bounds of the expert (NAVSIM's history-comfort bounds) [m/s^2], [m/s^2], [m/s^2], [m/s^3].
MAX_DECEL, MAX_ACCEL, MAX_LAT_ACCEL, MAX_JERK = 4.05, 2.40, 4.89, 4.13
#: Steps of the window over which longitudinal jerk is measured (NAVSIM's Savitzky-Golay window at 10 Hz).
JERK_WINDOW = 15


def window_jerk(accels: list[float] | np.ndarray, dt: float = DT) -> float:
    """Longitudinal jerk [m/s^3] at the centre of an odd window of accelerations [m/s^2] sampled every ``dt``.

    The least-squares slope over the window, which is the Savitzky-Golay first derivative of a quadratic (or
    linear) fit at the window's centre, as NAVSIM's comfort check smooths it.
    """
    a = np.asarray(accels, dtype=np.float64)
    k = np.arange(len(a)) - (len(a) - 1) / 2
    return float(k @ a / (k @ k) / dt)


def drivable_area(map_api: Map, margin: float = 0.05) -> PreparedGeometry:
    """The union of the map's drivable layers, grown by ``margin`` [m], prepared for containment tests."""
    drivable = shapely.union_all([o.polygon for layer in DRIVABLE_LAYERS for o in map_api.objects(layer)])
    return prep(drivable.buffer(margin))


def footprint(user: RoadUser) -> Polygon:
    """Box polygon of a road user at its current pose."""
    return Polygon(box_corners(user.pose, user.length, user.width))


@dataclass
class AuditReport:
    """What went wrong in a rollout (empty lists: nothing)."""

    collisions: list[tuple[float, str]] = field(default_factory=list)  # (time [s], other token)
    off_road: list[float] = field(default_factory=list)  # times [s]
    red_light: list[float] = field(default_factory=list)
    comfort: list[tuple[float, str, float]] = field(default_factory=list)  # (time, quantity, value)
    progress: float = 0.0  # [m] travelled by the ego

    @property
    def ok(self) -> bool:
        """No violation of any kind."""
        return not (self.collisions or self.off_road or self.red_light or self.comfort)

    def summary(self) -> str:
        """One line naming the first violation of each kind."""
        parts = []
        for name in ("collisions", "off_road", "red_light", "comfort"):
            items = getattr(self, name)
            if items:
                parts.append(f"{name}: {len(items)} (first {items[0]})")
        return "; ".join(parts) or "ok"


class Auditor:
    """Checks the ego after every world step; call ``check`` once per step."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._drivable = drivable_area(world.map)
        self.report = AuditReport()
        self._start_s = world.ego.s
        self._accels: list[float] = []  # the ego's last JERK_WINDOW longitudinal accelerations [m/s^2]

    def check(self) -> None:
        """Record violations of the current state."""
        world, ego, rep = self.world, self.world.ego, self.report
        t = world.time
        box = footprint(ego)
        poses = world.poses()  # (N, 3) the ego first
        near = np.flatnonzero(np.hypot(*(poses[1:, :2] - poses[0, :2]).T) < 12.0)
        for k in near:
            other = world.road_users[k]
            if box.intersects(footprint(other)):
                rep.collisions.append((t, other.track_token))
        if not self._drivable.contains(box):
            rep.off_road.append(t)
        front = ego.s + ego.length / 2
        for stop in ego.stops:
            at_line = stop.kind == "light" and stop.s - 0.1 < front < stop.s + 0.6
            if at_line and world.light_state(stop.connector_id) is LightState.RED and ego.speed > 1.0:
                rep.red_light.append(t)
        lat = ego.speed**2 * ego.curvature()
        if ego.accel < -MAX_DECEL:
            rep.comfort.append((t, "decel", ego.accel))
        if ego.accel > MAX_ACCEL:
            rep.comfort.append((t, "accel", ego.accel))
        if abs(lat) > MAX_LAT_ACCEL:
            rep.comfort.append((t, "lat_accel", lat))
        self._accels = [*self._accels[-(JERK_WINDOW - 1) :], ego.accel]
        if len(self._accels) == JERK_WINDOW:
            jerk = window_jerk(self._accels)
            if abs(jerk) > MAX_JERK:
                rep.comfort.append((t - DT * (JERK_WINDOW // 2), "jerk", jerk))
        rep.progress = ego.s - self._start_s


def audit_rollout(world: World, seconds: float) -> AuditReport:
    """Step ``world`` for ``seconds`` with the expert ego and audit every step."""
    auditor = Auditor(world)
    for _ in range(round(seconds / DT)):
        world.step()
        auditor.check()
    return auditor.report
