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

import math
from dataclasses import dataclass

import numpy as np
import shapely

from irl_vla.data.enums import XY, SE2Index
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


#: Side of a ``_BoxGrid`` cell [m].
GRID_CELL = 20.0


class _BoxGrid:
    """Axis-aligned boxes by the grid cells they overlap, grown by ``margin`` [m].

    Args:
        bounds: the boxes' (min x, min y, max x, max y) ``(B, 4)`` [m].
        margin: how far [m] around a box a query may reach (the box is listed in every cell its grown box meets).
    """

    def __init__(self, bounds: np.ndarray, margin: float) -> None:
        self._cells: dict[tuple[int, int], list[tuple[int, float, float, float, float]]] = {}
        for index, (x0, y0, x1, y1) in enumerate(bounds.tolist()):
            for i in range(math.floor((x0 - margin) / GRID_CELL), math.floor((x1 + margin) / GRID_CELL) + 1):
                for j in range(math.floor((y0 - margin) / GRID_CELL), math.floor((y1 + margin) / GRID_CELL) + 1):
                    self._cells.setdefault((i, j), []).append((index, x0, y0, x1, y1))

    def cell(self, x: float, y: float) -> list[tuple[int, float, float, float, float]]:
        """The boxes listed in the cell holding ``(x, y)`` [m], in index order."""
        return self._cells.get((math.floor(x / GRID_CELL), math.floor(y / GRID_CELL)), [])


def _holding(cell: list[tuple[int, float, float, float, float]], x: float, y: float, margin: float) -> list[int]:
    """Indices of the boxes of ``cell`` that hold ``(x, y)`` [m] grown by ``margin`` [m] (0: the box), in order."""
    if margin == 0.0:
        return [k for k, x0, y0, x1, y1 in cell if x0 <= x <= x1 and y0 <= y <= y1]
    return [k for k, x0, y0, x1, y1 in cell if x0 - margin <= x <= x1 + margin and y0 - margin <= y <= y1 + margin]


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
        lines = [lane.centerline[:: max(1, len(lane.centerline) // 50)] for lane in self._lanes]  # type: ignore[attr-defined]
        # (x, y, heading) columns of each, contiguous: the check reads them every tick
        self._lines = [
            (np.ascontiguousarray(line[:, SE2Index.X]), np.ascontiguousarray(line[:, SE2Index.Y]),
             line[:, SE2Index.HEADING].tolist())
            for line in lines
        ]  # fmt: skip
        self._polygons = np.array([lane.polygon for lane in self._lanes], dtype=object)
        shapely.prepare(self._polygons)
        self._bounds = shapely.bounds(self._polygons).reshape(-1, 4)  # (L, 4) min x, min y, max x, max y
        # Bounding boxes by grid cell: a point's tests read only the boxes of its cell (the same boxes pass).
        self._lane_cells = _BoxGrid(self._bounds, self.wrong_way_margin)
        self._junction_cells = _BoxGrid(self._junction_bounds, 0.0)

    def state(self, tick: Tick) -> InfractionKind | None:
        """``OFF_ROAD``, ``WRONG_WAY`` or None for the ego at this tick."""
        center = tick.ego_center
        x, y = float(center[SE2Index.X]), float(center[SE2Index.Y])
        lane_cell = self._lane_cells.cell(x, y)
        candidates = np.array(_holding(lane_cell, x, y, 0.0), dtype=np.intp)
        inside = candidates[shapely.contains_xy(self._polygons[candidates], x, y)] if len(candidates) else candidates
        # Inside a lane is on the road (the road is every lane grown by a positive margin): no road test needed.
        if not (len(inside) and self.off_road_margin >= ROAD_TEST_MARGIN) and not shapely.contains_xy(self._road, x, y):
            return InfractionKind.OFF_ROAD
        near_junction = bool(_holding(self._junction_cells.cell(x, y), x, y, 0.0))
        if near_junction and shapely.contains_xy(self._junction, x, y):
            return None
        if len(inside) == 0:
            return None  # on a car park, or within the margin of a lane
        heading = float(center[SE2Index.HEADING])
        if any(self._agrees(index, center[XY], heading) for index in inside):
            return None
        m = self.wrong_way_margin
        near = _holding(lane_cell, x, y, m)
        point = shapely.Point(x, y)
        for index in set(near) - set(inside.tolist()):
            if self._agrees(index, center[XY], heading) and self._polygons[index].distance(point) <= m:
                return None
        return InfractionKind.WRONG_WAY

    def _agrees(self, index: int, xy: np.ndarray, heading: float) -> bool:
        """Whether lane ``index`` runs within ``wrong_way_angle`` of ``heading`` near ``xy``."""
        xs, ys, headings = self._lines[index]
        dx, dy = xs - xy[0], ys - xy[1]
        i = int(np.argmin(dx * dx + dy * dy))
        # ``wrap_angle`` on Python floats (the same remainder as numpy's)
        return abs((headings[i] - heading + math.pi) % (2.0 * math.pi) - math.pi) <= self.wrong_way_angle

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
