"""``Path``: a polyline driven by arc length; road users and the expert move along paths."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import path_arc_length, wrap_angle

FloatArray = npt.NDArray[np.float64]


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

    @property
    def length(self) -> float:
        """Total length [m]."""
        return float(self.s[-1])

    def pose_at(self, s: npt.ArrayLike, lateral: npt.ArrayLike = 0.0) -> FloatArray:
        """Poses (x, y, heading) at arc lengths ``s`` [m], shifted ``lateral`` [m] to the left ``(..., 3)``.

        Beyond the ends the path is extended straight along its end headings.
        """
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

    def project(self, points: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Arc length [m] and signed lateral offset [m] (left positive) of points ``(..., 2)`` on the path."""
        p = np.asarray(points, dtype=np.float64)
        flat = p.reshape(-1, 2)
        a = self.xy[:-1]  # (S, 2)
        d = np.diff(self.xy, axis=0)
        rel = flat[:, None, :] - a[None]  # (M, S, 2)
        t = np.clip(np.sum(rel * d[None], axis=-1) / (self._seg_len**2)[None], 0.0, 1.0)  # (M, S)
        closest = a[None] + t[..., None] * d[None]
        dist = np.linalg.norm(flat[:, None, :] - closest, axis=-1)
        j = np.argmin(dist, axis=1)  # (M,)
        rows = np.arange(len(flat))
        s = self.s[j] + t[rows, j] * self._seg_len[j]
        cross = d[j, 0] * rel[rows, j, 1] - d[j, 1] * rel[rows, j, 0]
        lat = np.sign(cross) * dist[rows, j]
        # Points beyond the ends: extend along the end segments.
        first, last = j == 0, j == len(d) - 1
        raw_t = np.sum(rel[rows, j] * d[j], axis=-1) / self._seg_len[j] ** 2
        s = np.where(first & (raw_t < 0), raw_t * self._seg_len[0], s)
        s = np.where(last & (raw_t > 1), self.s[-2] + raw_t * self._seg_len[-1], s)
        return s.reshape(p.shape[:-1]), lat.reshape(p.shape[:-1])

    def curvature_at(self, s: npt.ArrayLike, window: float = 2.0) -> FloatArray:
        """Signed curvature [1/m] from the heading change over ``window`` [m] around ``s``."""
        s = np.asarray(s, dtype=np.float64)
        h0 = self.pose_at(s - window / 2)[..., SE2Index.HEADING]
        h1 = self.pose_at(s + window / 2)[..., SE2Index.HEADING]
        return wrap_angle(h1 - h0) / window
