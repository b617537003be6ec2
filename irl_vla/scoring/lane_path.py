"""The path a reactive traffic agent drives: its starting lane segment's baseline, with nuPlan's path rules.

``reference/navsim.md`` §8.5: vertex headings point to the next vertex (the last copies the previous one);
progress is the cumulative chord length; a vertex whose distance to the next is ~0 is dropped, and so is the
final vertex (a length-mismatch quirk of nuPlan's path builder), so the path ends at the second-to-last baseline
vertex. Poses at a progress are linear in x, y and the unwrapped heading; the heading is wrapped to [-pi, pi).
Rendering always clamps the progress to the path. Every query is vectorised over progress values, and
``PathTable`` answers the same queries for many paths at once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import numpy as np
import shapely

from irl_vla.data.enums import XY, SE2Index
from irl_vla.scoring.states import FloatArray

#: Cap and join styles of nuPlan's corridor and footprint buffers (flat ends, round joins, 16 segments per
#: quarter circle as shapely's geometry method uses by default).
BUFFER_STYLE = {"cap_style": "flat", "join_style": "round", "quad_segs": 16}


def wrap_to_pi(angle: FloatArray) -> FloatArray:
    """Angles wrapped to [-pi, pi) [rad]."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def _lerp(query: FloatArray, s0: FloatArray, s1: FloatArray, v0: FloatArray, v1: FloatArray) -> FloatArray:
    """Linear interpolation on segments from (s0, v0) to (s1, v1); the one formula of every path query."""
    return v0 + (query - s0) * ((v1 - v0) / (s1 - s0))


class LanePath:
    """A polyline path with progress, built from a lane baseline.

    Args:
        baseline: baseline vertices (x, y) [m] ``(M, 2)`` in driving direction.
        where: names the lane in errors.

    Raises:
        ValueError: naming ``where`` when fewer than 2 vertices survive (navsim fails such a token).
    """

    def __init__(self, baseline: FloatArray, where: str) -> None:
        xy = np.asarray(baseline, dtype=np.float64)
        step = np.hypot(*np.diff(xy, axis=0).T)
        heading = np.arctan2(np.diff(xy[:, 1]), np.diff(xy[:, 0]))
        heading = np.append(heading, heading[-1:]) if len(heading) else np.zeros(len(xy))
        progress = np.concatenate([[0.0], np.cumsum(step)])
        keep = ~np.isclose(step, 0.0)  # drops repeated vertices and, by its length, the final vertex
        if keep.sum() < 2:
            raise ValueError(f"{where}: its baseline leaves fewer than 2 path vertices")
        idx = np.flatnonzero(keep)
        self.xy = xy[idx]  # (M, 2)
        self.progress = progress[idx]  # (M,) [m]
        self.heading = np.unwrap(heading[idx])  # (M,) unwrapped [rad]
        self.end = float(self.progress[-1])
        self.where = where
        self._suffix_min = np.minimum.accumulate(self.xy[::-1], axis=0)[::-1]  # (M, 2)
        self._suffix_max = np.maximum.accumulate(self.xy[::-1], axis=0)[::-1]
        self._arc: list[float] = self.progress.tolist()  # plain floats for scalar queries
        self._xy: list[list[float]] = self.xy.tolist()

    def clamp(self, progress: FloatArray) -> FloatArray:
        """Progress bounded to the path [m]."""
        return np.minimum(np.maximum(progress, 0.0), self.end)

    def pose_at(self, progress: FloatArray) -> FloatArray:
        """Poses (x, y, heading) ``(..., 3)`` at bounded progress values ``(...)``."""
        s = self.clamp(np.asarray(progress, dtype=np.float64))
        i = np.minimum(np.maximum(np.searchsorted(self.progress, s, side="right") - 1, 0), len(self.progress) - 2)
        p0, p1 = self.progress[i], self.progress[i + 1]
        out = np.empty((*s.shape, len(SE2Index)))
        for col, v in ((SE2Index.X, self.xy[:, 0]), (SE2Index.Y, self.xy[:, 1]), (SE2Index.HEADING, self.heading)):
            out[..., col] = _lerp(s, p0, p1, v[i], v[i + 1])
        out[..., SE2Index.HEADING] = wrap_to_pi(out[..., SE2Index.HEADING])
        return out

    def stretch(self, start: float, end: float | None = None) -> FloatArray:
        """Polyline (x, y) ``(P, 2)`` of the path from progress ``start`` to ``end`` (the path end if ``None``).

        Both bounds are clamped. From a start at the path end, the polyline is the last two vertices. The end points
        are ``pose_at``'s, computed in plain floats (the same operations, so the same values).
        """
        arc = self._arc
        a = min(max(float(start), 0.0), self.end)
        first = bisect_right(arc, a)  # the first vertex strictly beyond the start
        if end is None:
            if a >= self.end:
                return self.xy[-2:]
            last = len(arc)
        else:
            b = min(max(float(end), 0.0), self.end)
            last = max(bisect_left(arc, b), first)  # vertices strictly before the end
        out = np.empty((last - first + (1 if end is None else 2), 2))
        out[0] = self._point(a)
        out[1 : 1 + last - first] = self.xy[first:last]
        if end is not None:
            out[-1] = self._point(b)
        return out

    def _point(self, s: float) -> tuple[float, float]:
        """(x, y) [m] at a bounded progress ``s``, as ``pose_at`` computes it."""
        arc = self._arc
        i = min(max(bisect_right(arc, s) - 1, 0), len(arc) - 2)
        p0, p1 = arc[i], arc[i + 1]
        (x0, y0), (x1, y1) = self._xy[i], self._xy[i + 1]
        return x0 + (s - p0) * ((x1 - x0) / (p1 - p0)), y0 + (s - p0) * ((y1 - y0) / (p1 - p0))

    def corridor(self, start: float, width: float) -> shapely.Geometry:
        """The path ahead of progress ``start`` buffered by ``width / 2`` (flat ends, round joins)."""
        return shapely.buffer(shapely.linestrings(self.stretch(start)), width / 2, **BUFFER_STYLE)

    def bounds_ahead(self, start: FloatArray) -> FloatArray:
        """Axis-aligned bounds (min x, min y, max x, max y) ``(..., 4)`` of the path ahead of ``start`` ``(...)``."""
        s = self.clamp(np.asarray(start, dtype=np.float64))
        first = np.searchsorted(self.progress, s, side="right")  # first vertex strictly ahead
        first = np.minimum(first, len(self.xy) - 2)  # at the end: the last two vertices
        lo, hi = self._suffix_min[first], self._suffix_max[first]  # (..., 2)
        here = self.pose_at(s)[..., XY]
        return np.concatenate([np.minimum(lo, here), np.maximum(hi, here)], axis=-1)


class PathTable:
    """Many paths as padded arrays: the queries of ``LanePath`` for progress values ``(..., A)``, one per path.

    Args:
        paths: the ``A`` paths.
    """

    def __init__(self, paths: list[LanePath]) -> None:
        a = len(paths)
        m = max((len(p.progress) for p in paths), default=2)
        self.count = np.array([len(p.progress) for p in paths], dtype=np.int64)  # (A,)
        self.end = np.array([p.end for p in paths])  # (A,)
        self.progress = np.full((a, m), np.inf)  # (A, M), padded with +inf
        self.values = np.zeros((len(SE2Index), a, m))  # x, y, unwrapped heading, padded with the last vertex
        self.suffix_min = np.zeros((a, m, 2))
        self.suffix_max = np.zeros((a, m, 2))
        for i, p in enumerate(paths):
            n = len(p.progress)
            self.progress[i, :n] = p.progress
            for col, values in enumerate((p.xy[:, 0], p.xy[:, 1], p.heading)):
                self.values[col, i, :n], self.values[col, i, n:] = values, values[-1]
            self.suffix_min[i, :n], self.suffix_min[i, n:] = p._suffix_min, p.xy[-1]
            self.suffix_max[i, :n], self.suffix_max[i, n:] = p._suffix_max, p.xy[-1]

    def clamp(self, progress: FloatArray) -> FloatArray:
        """Progress bounded to each path ``(..., A)`` [m]."""
        return np.minimum(np.maximum(progress, 0.0), self.end)

    def segment(self, progress: FloatArray) -> np.ndarray:
        """Index ``(..., A)`` of the segment of each path that holds each (bounded) progress value ``(..., A)``."""
        s = self.clamp(progress)
        # the last vertex at or before the value: how many vertices are there (the +inf padding never is), less one
        i = np.count_nonzero(self.progress <= s[..., None], axis=-1) - 1
        return np.minimum(np.maximum(i, 0), self.count - 2)

    def pose_at(self, progress: FloatArray) -> FloatArray:
        """Poses ``(..., A, 3)`` at bounded progress values ``(..., A)``."""
        s = self.clamp(progress)
        i = self.segment(s)
        rows = np.arange(len(self.end))
        p0, p1 = self.progress[rows, i], self.progress[rows, i + 1]
        out = np.empty((*s.shape, len(SE2Index)))
        for col in SE2Index:
            out[..., col] = _lerp(s, p0, p1, self.values[col][rows, i], self.values[col][rows, i + 1])
        out[..., SE2Index.HEADING] = wrap_to_pi(out[..., SE2Index.HEADING])
        return out

    def bounds_ahead(self, start: FloatArray) -> FloatArray:
        """Bounds ``(..., A, 4)`` of each path ahead of (bounded) ``start`` ``(..., A)``, as ``LanePath``'s."""
        s = self.clamp(start)
        first = np.minimum((self.progress <= s[..., None]).sum(axis=-1), self.count - 2)[..., None, None]
        lo = np.take_along_axis(np.broadcast_to(self.suffix_min, (*s.shape, *self.suffix_min.shape[-2:])), first, -2)
        hi = np.take_along_axis(np.broadcast_to(self.suffix_max, (*s.shape, *self.suffix_max.shape[-2:])), first, -2)
        here = self.pose_at(s)[..., XY]
        return np.concatenate([np.minimum(lo[..., 0, :], here), np.maximum(hi[..., 0, :], here)], axis=-1)

    def stretch_bounds(self, start: FloatArray, end: FloatArray) -> FloatArray:
        """Bounds ``(..., A, 4)`` of each path between (bounded) progress ``start`` and ``end`` ``(..., A)``."""
        a, b = self.clamp(start), self.clamp(end)
        inside = (self.progress > a[..., None]) & (self.progress < b[..., None])  # (..., A, M)
        xy = self.values[XY]  # (2, A, M)
        lo = np.stack([np.where(inside, xy[c], np.inf).min(axis=-1) for c in range(2)], axis=-1)
        hi = np.stack([np.where(inside, xy[c], -np.inf).max(axis=-1) for c in range(2)], axis=-1)
        ends = np.stack([self.pose_at(a), self.pose_at(b)])[..., XY]
        return np.concatenate([np.minimum(lo, ends.min(axis=0)), np.maximum(hi, ends.max(axis=0))], axis=-1)
