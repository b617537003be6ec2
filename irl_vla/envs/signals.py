"""Red-light and stop-sign detection from the map's lane connectors and stop lines.

Red light: the entry of each signalised lane connector (its first centerline pose) is its stop line, as wide as
``lateral_factor`` times the connector's width. The ego runs a red light when its rear bumper crosses that line
(the whole car has entered) while the light is red and the ego heads the connector's way. Where connectors
share an entry (a left turn beside a straight on), the one on the route decides. Each light counts once until
another light triggers.

Stop sign: a stop applies while any point from the ego's front bumper to ``stop_look_ahead`` ahead lies within
``stop_margin`` of a stop-sign stop line and the ego does not drive against the governed lane. While it applies,
the ego must drop below ``stopped_speed``; otherwise an infraction is raised when it stops applying. Each stop
line counts once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from irl_vla.data.enums import XY, SE2Index
from irl_vla.data.map.map_api import Map
from irl_vla.data.map.map_objects import LaneConnector, MapLayer, StopLine, StopLineType
from irl_vla.envs.infractions import Infraction, InfractionKind
from irl_vla.envs.tick import Tick


def _forward(heading: float) -> np.ndarray:
    return np.array([np.cos(heading), np.sin(heading)])


@dataclass
class RedLightDetector:
    """Counts red lights run.

    Attributes:
        map_api: the location's map.
        route_roadblocks: the route's roadblock (connector) ids; decides between connectors sharing an entry.
        search_radius: only lights whose entry is this close to the ego are checked [m].
        lateral_factor: the stop line extends this fraction of the connector's width to each side of its centre.
    """

    map_api: Map
    route_roadblocks: frozenset[str] = frozenset()
    search_radius: float = 15.0
    lateral_factor: float = 0.6

    def __post_init__(self) -> None:
        connectors = [c for c in self.map_api.objects(MapLayer.LANE_CONNECTOR) if isinstance(c, LaneConnector)]
        self._ids = [c.id for c in connectors]
        self._entry = np.array([c.centerline[0] for c in connectors]).reshape(-1, len(SE2Index))  # (C, 3)
        self._half_width = np.array(
            [self.lateral_factor * c.polygon.area / max(c.length, 1e-6) for c in connectors]
        )  # (C,)
        self._on_route = np.array([c.roadblock_id in self.route_roadblocks for c in connectors], dtype=bool)
        self._previous_rear: np.ndarray | None = None
        self._last_light: str | None = None

    def _rear_bumper(self, tick: Tick) -> np.ndarray:
        pose = tick.ego_pose
        return pose[XY] - tick.vehicle.rear_length * _forward(pose[SE2Index.HEADING])

    def update(self, tick: Tick) -> list[Infraction]:
        """The red light run at this tick, if any."""
        if len(self._ids) == 0:
            return []  # no connector to cross on this map (the rear bumper's track is never read)
        rear = self._rear_bumper(tick)
        previous, self._previous_rear = self._previous_rear, rear
        if previous is None or not tick.lit_connectors:
            return []
        near = np.linalg.norm(self._entry[:, XY] - rear, axis=1) <= self.search_radius
        lit = np.array([cid in tick.lit_connectors for cid in self._ids], dtype=bool)
        crossed = []
        for c in np.nonzero(near & lit)[0]:
            entry = self._entry[c]
            forward = _forward(entry[SE2Index.HEADING])
            left = np.array([-forward[1], forward[0]])
            before, after = float(np.dot(previous - entry[XY], forward)), float(np.dot(rear - entry[XY], forward))
            if not (before < 0.0 <= after):
                continue
            lateral = float(np.dot(previous + (rear - previous) * (-before / (after - before)) - entry[XY], left))
            heading_agrees = float(np.dot(_forward(tick.ego_pose[SE2Index.HEADING]), forward)) > 0.0
            if abs(lateral) <= self._half_width[c] and heading_agrees:
                crossed.append(c)
        if not crossed:
            return []
        on_route = [c for c in crossed if self._on_route[c]]
        deciding = on_route or crossed
        red = [c for c in deciding if self._ids[c] in tick.red_connectors]
        if len(red) < len(deciding) or not red:
            return []  # a green (or amber) connector the ego may be taking shares this entry
        light = self._ids[red[0]]
        if light == self._last_light:
            return []
        self._last_light = light
        return [
            Infraction(
                InfractionKind.RED_LIGHT,
                tick.time,
                tick.ego_xy,
                other_id=light,
                message=f"Agent ran a red light {light} at t={tick.time:.1f} s",
            )
        ]


@dataclass
class StopSignDetector:
    """Counts stop signs not stopped at.

    Attributes:
        map_api: the location's map.
        look_ahead: the stop applies when a point up to this far ahead of the front bumper is near the line [m].
        step: spacing of those points [m].
        margin: "near" is within this distance of the stop line's polygon [m].
        stopped_speed: the ego counts as stopped below this speed [m/s].
        against_lane_dot: the stop is ignored when the ego's direction dotted with the lane's is below this.
    """

    map_api: Map
    look_ahead: float = 4.0
    step: float = 0.5
    margin: float = 0.5
    stopped_speed: float = 0.1
    against_lane_dot: float = -0.17

    def __post_init__(self) -> None:
        lines = [
            s
            for s in self.map_api.objects(MapLayer.STOP_LINE)
            if isinstance(s, StopLine) and s.stop_line_type is StopLineType.STOP_SIGN
        ]
        self._lines = lines
        self._zones = [s.polygon.buffer(self.margin) for s in lines]
        for zone in self._zones:
            shapely.prepare(zone)
        self._directions = []
        for s in lines:
            governed = [self.map_api.get(MapLayer.LANE_CONNECTOR, cid) for cid in s.lane_connector_ids]
            self._directions.append(
                [_forward(float(c.centerline[0, SE2Index.HEADING])) for c in governed if isinstance(c, LaneConnector)]
            )
        self._active: dict[str, bool] = {}  # stop line id -> whether the ego has stopped while it applied
        self._done: set[str] = set()

    def _applies(self, index: int, tick: Tick) -> bool:
        heading = float(tick.ego_pose[SE2Index.HEADING])
        forward = _forward(heading)
        if tick.ego_speed < 0:
            return False
        directions = self._directions[index]
        if directions and all(float(np.dot(forward, d)) < self.against_lane_dot for d in directions):
            return False
        bumper = tick.ego_xy + tick.vehicle.front_length * forward
        offsets = np.arange(0.0, self.look_ahead + self.step / 2, self.step)
        points = bumper + offsets[:, None] * forward  # (P, 2)
        return bool(shapely.contains_xy(self._zones[index], points[:, 0], points[:, 1]).any())

    def update(self, tick: Tick) -> list[Infraction]:
        """The stop signs missed, judged when they stop applying at this tick."""
        events = []
        stopped = abs(tick.ego_speed) < self.stopped_speed
        for i, line in enumerate(self._lines):
            if line.id in self._done:
                continue
            if self._applies(i, tick):
                self._active[line.id] = self._active.get(line.id, False) or stopped
            elif line.id in self._active:
                if not self._active.pop(line.id):
                    events.append(
                        Infraction(
                            InfractionKind.STOP_SIGN,
                            tick.time,
                            tick.ego_xy,
                            other_id=line.id,
                            message=f"Agent ran a stop sign {line.id} at t={tick.time:.1f} s",
                        )
                    )
                self._done.add(line.id)
        return events
