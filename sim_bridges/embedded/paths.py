"""``Path``: a polyline driven by arc length; road users and the expert move along paths."""

from __future__ import annotations

import bisect
import math

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import path_arc_length, wrap_angle

FloatArray = npt.NDArray[np.float64]


CURVATURE_STEP = 0.5  # [m] grid of the curvature table
CURVATURE_MARGIN = 80.0  # [m] the table reaches this far beyond both ends (curve look-ahead)


def _wrap(angle: float) -> float:
    """``wrap_angle`` of one float: into [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


class Path:
    """A polyline ``(N, 2)`` [m] with arc-length look-ups, projection and curvature.

    Args:
        xy: vertices in driving order; consecutive duplicates are dropped.

    Raises:
        ValueError: with fewer than two distinct vertices.
    """

    def __init__(self, xy: npt.ArrayLike) -> None:
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"Path: expected vertices of shape (N, 2), got {xy.shape}")
        keep = np.ones(len(xy), dtype=bool)
        keep[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=1) > 1e-6
        self.xy = xy[keep]
        if len(self.xy) < 2:
            raise ValueError("Path: need at least two distinct vertices")
        self.s = path_arc_length(self.xy)  # (N,)
        seg = np.diff(self.xy, axis=0)
        self._seg_heading = np.arctan2(seg[:, 1], seg[:, 0])  # (N-1,)
        self._seg_len = np.diff(self.s)
        self._seg_d, self._seg_len2 = seg, self._seg_len**2
        # Plain-float copies for the scalar path.
        self._s_list = self.s.tolist()
        self._x_list, self._y_list = self.xy[:, 0].tolist(), self.xy[:, 1].tolist()
        self._heading_list, self._len_list = self._seg_heading.tolist(), self._seg_len.tolist()
        self._curvature_table: tuple[FloatArray, FloatArray] | None = None

    @property
    def length(self) -> float:
        """Total length [m]."""
        return float(self.s[-1])

    def pose_at(self, s: npt.ArrayLike, lateral: npt.ArrayLike = 0.0) -> FloatArray:
        """Poses (x, y, heading) at arc lengths ``s`` [m], shifted ``lateral`` [m] to the left ``(..., 3)``.

        Beyond the ends the path is extended straight along its end headings.
        """
        if np.ndim(s) == 0 and np.ndim(lateral) == 0:
            return self._pose_at_scalar(float(s), float(lateral))
        s = np.asarray(s, dtype=np.float64)
        i = np.clip(np.searchsorted(self.s, s, side="right") - 1, 0, len(self._seg_len) - 1)
        heading = self._seg_heading[i]
        # Blend headings over the last/first 1 m of each segment so heading is continuous along the path.
        along = s - self.s[i]
        xy = self.xy[i] + along[..., None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
        h = self._smooth_heading(s, i)
        lat = np.asarray(lateral, dtype=np.float64)
        xy = xy + lat[..., None] * np.stack([-np.sin(h), np.cos(h)], axis=-1)
        return np.concatenate([xy, h[..., None]], axis=-1)

    def _pose_at_scalar(self, s: float, lateral: float) -> FloatArray:
        """``pose_at`` of one arc length, in plain floats (the hot path of the simulation)."""
        n = len(self._seg_len)
        i = min(max(bisect.bisect_right(self._s_list, s) - 1, 0), n - 1)
        cur = self._heading_list[i]
        along = s - self._s_list[i]
        x = self._x_list[i] + along * math.cos(cur)
        y = self._y_list[i] + along * math.sin(cur)
        h_start = cur + 0.5 * _wrap(self._heading_list[i - 1] - cur) if i > 0 else cur
        h_end = cur + 0.5 * _wrap(self._heading_list[i + 1] - cur) if i < n - 1 else cur
        alpha = min(max(along / self._len_list[i], 0.0), 1.0)
        h = _wrap(h_start + alpha * _wrap(h_end - h_start))
        return np.array([x - lateral * math.sin(h), y + lateral * math.cos(h), h])

    def curvature_ahead(self, s: npt.ArrayLike) -> FloatArray:
        """``curvature_at(s)`` (2 m window) read from a table on a ``CURVATURE_STEP`` grid (cheap, approximate)."""
        if self._curvature_table is None:
            grid = np.arange(-CURVATURE_MARGIN, self.length + CURVATURE_MARGIN, CURVATURE_STEP)
            self._curvature_table = (grid, self.curvature_at(grid))
        grid, kappa = self._curvature_table
        return np.interp(s, grid, kappa)

    def _smooth_heading(self, s: FloatArray, i: npt.NDArray[np.intp]) -> FloatArray:
        # Linear interpolation of vertex headings (mean of adjacent segments) along each segment.
        n = len(self._seg_heading)
        prev = self._seg_heading[np.maximum(i - 1, 0)]
        nxt = self._seg_heading[np.minimum(i + 1, n - 1)]
        cur = self._seg_heading[i]
        h_start = cur + 0.5 * wrap_angle(prev - cur) * (i > 0)
        h_end = cur + 0.5 * wrap_angle(nxt - cur) * (i < n - 1)
        alpha = np.clip((s - self.s[i]) / self._seg_len[i], 0.0, 1.0)
        return wrap_angle(h_start + alpha * wrap_angle(h_end - h_start))

    def project(
        self, points: npt.ArrayLike, around: tuple[float, float] | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Arc length [m] and signed lateral offset [m] (left positive) of points ``(..., 2)`` on the path.

        ``around`` (lo, hi) [m] restricts the search to the segments of that arc-length range (what a road user
        looks at ahead of itself; points beyond it project onto its ends). Beyond the ends of the path, points
        project onto the extension of the end segments.
        """
        p = np.asarray(points, dtype=np.float64)
        flat = p.reshape(-1, 2)
        k0, k1 = 0, len(self._seg_len)
        if around is not None:
            k0 = min(max(int(np.searchsorted(self.s, around[0], side="right")) - 1, 0), k1 - 1)
            k1 = max(min(int(np.searchsorted(self.s, around[1], side="left")) + 1, k1), k0 + 1)
        a, d = self.xy[k0:k1], self._seg_d[k0:k1]  # (S, 2)
        rel = flat[:, None, :] - a[None]  # (M, S, 2)
        raw = (rel[..., 0] * d[:, 0] + rel[..., 1] * d[:, 1]) / self._seg_len2[k0:k1]  # (M, S)
        t = np.clip(raw, 0.0, 1.0)
        ex, ey = rel[..., 0] - t * d[:, 0], rel[..., 1] - t * d[:, 1]
        dist2 = ex * ex + ey * ey  # (M, S)
        jl = np.argmin(dist2, axis=1)  # (M,)
        rows = np.arange(len(flat))
        j = jl + k0
        s = self.s[j] + t[rows, jl] * self._seg_len[j]
        cross = d[jl, 0] * rel[rows, jl, 1] - d[jl, 1] * rel[rows, jl, 0]
        lat = np.sign(cross) * np.sqrt(dist2[rows, jl])
        # Points beyond the ends: extend along the end segments.
        raw_t = raw[rows, jl]
        s = np.where((j == 0) & (raw_t < 0), raw_t * self._seg_len[0], s)
        s = np.where((j == len(self._seg_len) - 1) & (raw_t > 1), self.s[-2] + raw_t * self._seg_len[-1], s)
        return s.reshape(p.shape[:-1]), lat.reshape(p.shape[:-1])

    def curvature_at(self, s: npt.ArrayLike, window: float = 2.0) -> FloatArray:
        """Signed curvature [1/m] from the heading change over ``window`` [m] around ``s``."""
        s = np.asarray(s, dtype=np.float64)
        h0 = self.pose_at(s - window / 2)[..., SE2Index.HEADING]
        h1 = self.pose_at(s + window / 2)[..., SE2Index.HEADING]
        return wrap_angle(h1 - h0) / window
