"""Auditing an expert rollout: collisions, drivable area, red lights and comfort, step by step at 10 Hz.

Used by the generator (a log that fails is never written; the manifest counts them) and by the tests, which
require that no generated log fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.prepared import prep

from irl_vla.data.map.map_objects import DRIVABLE_LAYERS
from sim_bridges.embedded.agents import Agent
from sim_bridges.embedded.traffic_lights import LightState
from sim_bridges.embedded.world import DT, World

#: Comfort bounds of the expert (NAVSIM's history-comfort bounds) [m/s^2], [m/s^2], [m/s^3].
MAX_DECEL, MAX_ACCEL, MAX_LAT_ACCEL, MAX_JERK = 4.05, 2.40, 4.89, 4.13


def footprint(agent: Agent) -> Polygon:
    """Box polygon of an agent at its current pose."""
    x, y, h = agent.pose
    c, s = np.cos(h), np.sin(h)
    hl, hw = agent.length / 2, agent.width / 2
    corners = [(hl, hw), (-hl, hw), (-hl, -hw), (hl, -hw)]
    return Polygon([(x + c * a - s * b, y + s * a + c * b) for a, b in corners])


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
        drivable = shapely.union_all([o.polygon for layer in DRIVABLE_LAYERS for o in world.map.objects(layer)])
        self._drivable = prep(drivable.buffer(0.05))
        self.report = AuditReport()
        self._prev_accel: float | None = None
        self._start_s = world.ego.s
        self._stops_passed = 0

    def check(self) -> None:
        """Record violations of the current state."""
        world, ego, rep = self.world, self.world.ego, self.report
        t = world.time
        box = footprint(ego)
        for other in world.agents:
            if np.hypot(*(other.pose[:2] - ego.pose[:2])) < 12.0 and box.intersects(footprint(other)):
                rep.collisions.append((t, other.track_token))
        if not self._drivable.contains(box):
            rep.off_road.append(t)
        front = ego.s + ego.length / 2
        for stop in ego.stops:
            at_line = stop.kind == "light" and stop.s - 0.1 < front < stop.s + 0.6
            if at_line and world.light_state(stop.connector_id) is LightState.RED and ego.speed > 1.0:
                rep.red_light.append(t)
        lat = ego.speed**2 * float(ego.path.curvature_at(ego.s))
        if ego.accel < -MAX_DECEL:
            rep.comfort.append((t, "decel", ego.accel))
        if ego.accel > MAX_ACCEL:
            rep.comfort.append((t, "accel", ego.accel))
        if abs(lat) > MAX_LAT_ACCEL:
            rep.comfort.append((t, "lat_accel", lat))
        rep.progress = ego.s - self._start_s


def audit_rollout(world: World, seconds: float) -> AuditReport:
    """Step ``world`` for ``seconds`` with the expert ego and audit every step."""
    auditor = Auditor(world)
    for _ in range(round(seconds / DT)):
        world.step()
        auditor.check()
    return auditor.report
