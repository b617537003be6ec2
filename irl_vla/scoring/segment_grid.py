"""A uniform grid over line segments: which segments can lie within a reach of a point, found in O(1) per point.

Lane keeping (``fast_scorer``) asks it for the centerline segments near the ego's centre; reactive traffic
(``reactive_traffic``) for the lane-path segments near the points that cover other road users.
"""

from __future__ import annotations

import numpy as np

from irl_vla.scoring.states import FloatArray


class SegmentGrid:
    """Each cell lists the segments within ``reach`` [m] of it (CSR arrays, cells in order, segments ascending).

    A point can only be within ``reach`` of the segments listed in its cell, so a distance test against ``reach``
    (or anything smaller) needs only those.

    Args:
        start: segment start points (x, y) [m] ``(S, 2)``.
        vec: segment vectors (end - start) [m] ``(S, 2)``.
        reach: largest distance a query is about [m].
        cell: cell size [m].
    """

    def __init__(self, start: FloatArray, vec: FloatArray, reach: float, cell: float = 2.0) -> None:
        end = start + vec
        lo = np.minimum(start, end) - reach
        hi = np.maximum(start, end) + reach
        self.origin = lo.min(axis=0) if len(lo) else np.zeros(2)
        self.cell = cell
        top = hi.max(axis=0) if len(hi) else np.zeros(2)
        self.shape = np.maximum(np.ceil((top - self.origin) / cell).astype(np.int64), 1)
        c0 = np.floor((lo - self.origin) / cell).astype(np.int64)  # (S, 2) first cell of each segment's box
        c1 = np.floor((hi - self.origin) / cell).astype(np.int64)
        span = c1 - c0 + 1  # (S, 2) cells per axis
        count = span[:, 0] * span[:, 1]
        segs = np.repeat(np.arange(len(start)), count)  # one entry per (segment, cell), segments in order
        local = np.arange(len(segs)) - np.repeat(np.cumsum(count) - count, count)
        ny = span[segs, 1]
        cells = (c0[segs, 0] + local // ny) * self.shape[1] + (c0[segs, 1] + local % ny)
        order = np.argsort(cells, kind="stable")
        self.segments = segs[order]
        self.offsets = np.searchsorted(cells[order], np.arange(int(np.prod(self.shape)) + 1))

    def candidates(self, points: FloatArray) -> tuple[np.ndarray, np.ndarray]:
        """(point index, segment index) pairs to test for points ``(Q, 2)``; points outside the grid get none."""
        ij = np.floor((points - self.origin) / self.cell).astype(np.int64)
        inside = np.all((ij >= 0) & (ij < self.shape), axis=1)
        cell = np.where(inside, ij[:, 0] * self.shape[1] + ij[:, 1], 0)
        begin = np.where(inside, self.offsets[cell], 0)
        count = np.where(inside, self.offsets[np.minimum(cell + 1, len(self.offsets) - 1)] - begin, 0)
        point = np.repeat(np.arange(len(points)), count)
        first = np.repeat(begin - np.cumsum(count) + count, count)
        return point, self.segments[first + np.arange(len(point))]
