"""Fast exact point-in-polygon tests: a coarse cell grid per polygon settles most points without GEOS.

Each polygon's bounding box is cut into square cells classified once: *inside* (the closed cell lies in the
polygon's interior, so every point in it is strictly contained), *outside* (the cell does not touch the polygon)
or *boundary*. Cells no ring can touch (found from points along the rings, with a margin) take the class of
their centre; only the cells near a ring are tested as squares. Only points in boundary cells go to shapely's
prepared ``contains_xy``, so results equal shapely's strict ``contains`` exactly.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon

from irl_vla.data.enums import XY
from irl_vla.scoring.states import FloatArray

_OUTSIDE, _BOUNDARY, _INSIDE = 0, 1, 2


class PolygonGrid:
    """Cell classification of one polygon.

    Args:
        polygon: the polygon (prepared in place).
        cell: smallest cell size [m]; cells grow so that a polygon has at most ``max_cells``.
        max_cells: bound on the cells per polygon (build time).
    """

    def __init__(self, polygon: Polygon, cell: float = 1.0, max_cells: int = 4096) -> None:
        shapely.prepare(polygon)
        self.polygon = polygon
        x0, y0, x1, y1 = polygon.bounds
        cell = max(cell, float(np.sqrt((x1 - x0) * (y1 - y0) / max_cells)))
        self.bounds = (x0, y0, x1, y1)
        self.origin = np.array([x0, y0])
        self.cell = cell
        self.shape = (max(int(np.ceil((x1 - x0) / cell)), 1), max(int(np.ceil((y1 - y0) / cell)), 1))
        # Boundary cells: every cell whose closed square a ring may touch. Points spaced at most half a cell along
        # each ring leave every ring point within a quarter cell of one of them; the cells under the four corners
        # of a square of half-size 3/8 cell around each point cover that quarter-cell neighbourhood with margin.
        touched = np.zeros(self.shape, dtype=bool)
        reach = 0.375 * cell
        for ring in (polygon.exterior, *polygon.interiors):
            xy = np.asarray(ring.coords)[:, XY]
            seg = np.diff(xy, axis=0)
            steps = np.maximum(np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / (0.5 * cell)).astype(np.int64), 1)
            owner = np.repeat(np.arange(len(seg)), steps)
            frac = (np.arange(len(owner)) - np.repeat(np.cumsum(steps) - steps, steps)) / steps[owner]
            samples = np.concatenate([xy[owner] + seg[owner] * frac[:, None], xy[-1:]])
            for dx in (-reach, reach):
                for dy in (-reach, reach):
                    ij = np.floor((samples + np.array([dx, dy]) - self.origin) / cell).astype(np.int64)
                    touched[np.clip(ij[:, 0], 0, self.shape[0] - 1), np.clip(ij[:, 1], 0, self.shape[1] - 1)] = True
        # Every other cell lies wholly inside or wholly outside: its centre decides. The cells a ring may touch
        # are classified exactly as squares (a ring passing near a cell need not enter it).
        status = np.full(touched.size, _OUTSIDE, dtype=np.int8)
        flat = touched.ravel()
        free, near = np.flatnonzero(~flat), np.flatnonzero(flat)
        if len(free):
            fx, fy = np.unravel_index(free, self.shape)
            status[free[shapely.contains_xy(polygon, x0 + (fx + 0.5) * cell, y0 + (fy + 0.5) * cell)]] = _INSIDE
        if len(near):
            nx, ny = np.unravel_index(near, self.shape)
            boxes = shapely.box(x0 + nx * cell, y0 + ny * cell, x0 + (nx + 1) * cell, y0 + (ny + 1) * cell)
            status[near[shapely.intersects(polygon, boxes)]] = _BOUNDARY
            status[near[shapely.contains_properly(polygon, boxes)]] = _INSIDE
        self.status = status.reshape(self.shape)

    def contains(self, points: FloatArray) -> np.ndarray:
        """Strict containment of points ``(Q, 2)`` -> ``(Q,)`` bool."""
        out = np.zeros(len(points), dtype=bool)
        x0, y0, x1, y1 = self.bounds
        x, y = points[:, 0], points[:, 1]
        cand = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
        if not len(cand):
            return out
        ij = np.floor((points[cand] - self.origin) / self.cell).astype(np.int64)
        ij[:, 0] = np.clip(ij[:, 0], 0, self.shape[0] - 1)  # a point on the far edge belongs to the last cell
        ij[:, 1] = np.clip(ij[:, 1], 0, self.shape[1] - 1)
        status = self.status[ij[:, 0], ij[:, 1]]
        out[cand[status == _INSIDE]] = True
        check = cand[status == _BOUNDARY]
        if len(check):
            out[check] = shapely.contains_xy(self.polygon, x[check], y[check])
        return out
