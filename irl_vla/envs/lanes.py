"""Off-road and wrong-way driving: the leaderboard's "outside route lanes", split into its two causes.

Off-road: the ego's box centre is farther than ``off_road_margin`` from every lane, lane connector and car-park
area. Wrong way: the centre lies in lanes, every one of them runs more than ``wrong_way_angle`` away from the
ego's heading (at its nearest centerline pose), and no lane of its own direction is within ``wrong_way_margin``
(an ego straddling the centre line is not driving against the traffic). Inside junctions (intersections and lane
connectors, where lanes of every direction overlap) it is not judged, as the leaderboard does not. While either
holds, the route distance newly covered is added to the stretch (off-road first when both hold); a stretch that
covered route distance becomes one infraction, with that distance as its value, when it ends (or at ``finish``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from irl_vla.data.enums import XY, SE2Index
from irl_vla.data.geometry import wrap_angle
from irl_vla.data.map.map_api import Map
from irl_vla.data.map.map_objects import LANE_LAYERS, MapLayer
from irl_vla.envs.infractions import Infraction, InfractionKind
from irl_vla.envs.tick import Tick

#: With an off-road margin at least this large [m], a point inside a lane is on the road without testing it.
ROAD_TEST_MARGIN = 1e-6


@dataclass
class _Stretch:
    start_time: float
    position: np.ndarray
    distance: float = 0.0


@dataclass
class LaneDetector:
    """Tracks off-road and wrong-way stretches.

    Attributes:
        map_api: the location's map.
        off_road_margin: the ego's centre may be this far outside the lane polygons [m].
        wrong_way_angle: heading difference to every containing lane that counts as wrong way [rad].
        wrong_way_margin: a lane of the ego's direction this close to its centre makes it not wrong way [m].
    """

    map_api: Map
    off_road_margin: float = 0.5
    wrong_way_angle: float = float(np.radians(120.0))
    wrong_way_margin: float = 0.5

    def __post_init__(self) -> None:
        self._open: dict[InfractionKind, _Stretch] = {}
        layers = (*LANE_LAYERS, MapLayer.CARPARK_AREA)
        areas = [obj.polygon for layer in layers for obj in self.map_api.objects(layer)]
        self._road = shapely.union_all(areas).buffer(self.off_road_margin) if areas else shapely.Polygon()
        shapely.prepare(self._road)
        junctions = [
            o.polygon for layer in (MapLayer.INTERSECTION, MapLayer.LANE_CONNECTOR) for o in self.map_api.objects(layer)
        ]
        self._junction = shapely.union_all(junctions) if junctions else shapely.Polygon()
        shapely.prepare(self._junction)
        # (J, 4) min x, min y, max x, max y of each junction area: outside all of them is outside their union
        self._junction_bounds = shapely.bounds(np.array(junctions, dtype=object)).reshape(-1, 4)
        self._lanes = self.map_api.objects(MapLayer.LANE)
        # centerlines thinned to about 50 poses: the heading near the ego is all the check needs
        self._lines = [lane.centerline[:: max(1, len(lane.centerline) // 50)] for lane in self._lanes]  # type: ignore[attr-defined]
        self._polygons = np.array([lane.polygon for lane in self._lanes], dtype=object)
        shapely.prepare(self._polygons)
        self._bounds = shapely.bounds(self._polygons).reshape(-1, 4)  # (L, 4) min x, min y, max x, max y

    def state(self, tick: Tick) -> InfractionKind | None:
        """``OFF_ROAD``, ``WRONG_WAY`` or None for the ego at this tick."""
        center = tick.ego_center
        x, y = float(center[SE2Index.X]), float(center[SE2Index.Y])
        b = self._bounds
        candidates = np.flatnonzero((b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3]))
        inside = candidates[shapely.contains_xy(self._polygons[candidates], x, y)]
        # Inside a lane is on the road (the road is every lane grown by a positive margin): no road test needed.
        if not (len(inside) and self.off_road_margin >= ROAD_TEST_MARGIN) and not shapely.contains_xy(self._road, x, y):
            return InfractionKind.OFF_ROAD
        j = self._junction_bounds
        near_junction = bool(np.any((j[:, 0] <= x) & (x <= j[:, 2]) & (j[:, 1] <= y) & (y <= j[:, 3])))
        if near_junction and shapely.contains_xy(self._junction, x, y):
            return None
        if len(inside) == 0:
            return None  # on a car park, or within the margin of a lane
        heading = float(center[SE2Index.HEADING])
        if any(self._agrees(index, center[XY], heading) for index in inside):
            return None
        m = self.wrong_way_margin
        near = np.flatnonzero((b[:, 0] - m <= x) & (x <= b[:, 2] + m) & (b[:, 1] - m <= y) & (y <= b[:, 3] + m))
        point = shapely.Point(x, y)
        for index in set(near.tolist()) - set(inside.tolist()):
            if self._agrees(index, center[XY], heading) and self._polygons[index].distance(point) <= m:
                return None
        return InfractionKind.WRONG_WAY

    def _agrees(self, index: int, xy: np.ndarray, heading: float) -> bool:
        """Whether lane ``index`` runs within ``wrong_way_angle`` of ``heading`` near ``xy``."""
        line = self._lines[index]
        d = line[:, XY] - xy
        i = int(np.argmin(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]))
        return abs(float(wrap_angle(line[i, SE2Index.HEADING] - heading))) <= self.wrong_way_angle

    def _close(self, kind: InfractionKind) -> list[Infraction]:
        stretch = self._open.pop(kind)
        if stretch.distance <= 0:
            return []
        what = "drove off the road" if kind is InfractionKind.OFF_ROAD else "drove against the lane direction"
        return [
            Infraction(
                kind,
                stretch.start_time,
                stretch.position,
                value=stretch.distance,
                message=f"Agent {what} for {stretch.distance:.1f} m of the route from t={stretch.start_time:.1f} s",
            )
        ]

    def update(self, tick: Tick, route_distance: float) -> list[Infraction]:
        """Stretches ending at this tick; ``route_distance`` is the route distance newly covered [m]."""
        now = self.state(tick)
        events = []
        for kind in list(self._open):
            if kind is not now:
                events += self._close(kind)
        if now is not None:
            stretch = self._open.setdefault(now, _Stretch(tick.time, tick.ego_xy.copy()))
            stretch.distance += route_distance
        return events

    def finish(self) -> list[Infraction]:
        """Close the stretches still open at the end of the episode."""
        events = []
        for kind in list(self._open):
            events += self._close(kind)
        return events
