"""Fast exact point-in-polygon tests: a coarse cell grid per polygon settles most points without GEOS.

Each polygon's bounding box is cut into square cells classified once: *inside* (the closed cell lies in the
polygon's interior, so every point in it is strictly contained), *outside* (the cell does not touch the polygon)
or *boundary*. Only points in boundary cells go to shapely's prepared ``contains_xy``, so results equal shapely's
strict ``contains`` exactly.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon

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
        ix, iy = np.meshgrid(np.arange(self.shape[0]), np.arange(self.shape[1]), indexing="ij")
        bx, by = x0 + ix.ravel() * cell, y0 + iy.ravel() * cell
        boxes = shapely.box(bx, by, bx + cell, by + cell)
        status = np.where(shapely.intersects(polygon, boxes), _BOUNDARY, _OUTSIDE)
        status[shapely.contains_properly(polygon, boxes)] = _INSIDE
        self.status = status.reshape(self.shape).astype(np.int8)

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
