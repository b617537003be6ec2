"""Geometry helpers to build map objects from centerlines (used by the embedded world and test fixtures)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Polygon

from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import headings_from_path

FloatArray = npt.NDArray[np.float64]


def straight_path(start: FloatArray, end: FloatArray, spacing: float = 1.0) -> FloatArray:
    """Points from ``start`` to ``end`` (x, y) [m] about ``spacing`` [m] apart ``(N, 2)``, both ends included."""
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    n = max(2, int(np.ceil(np.linalg.norm(end - start) / spacing)) + 1)
    alpha = np.linspace(0.0, 1.0, n)[:, None]
    return start + alpha * (end - start)


def bezier_path(start_pose: FloatArray, end_pose: FloatArray, spacing: float = 1.0) -> FloatArray:
    """A cubic Bezier from ``start_pose`` to ``end_pose`` (x, y, heading), tangent to both headings ``(N, 2)``.

    Control points sit a third of the chord length along each heading, which gives near-circular quarter turns
    and smooth lane changes.
    """
    p0 = np.asarray(start_pose[: SE2Index.HEADING], dtype=np.float64)
    p3 = np.asarray(end_pose[: SE2Index.HEADING], dtype=np.float64)
    chord = float(np.linalg.norm(p3 - p0))
    d0 = np.array([np.cos(start_pose[SE2Index.HEADING]), np.sin(start_pose[SE2Index.HEADING])])
    d3 = np.array([np.cos(end_pose[SE2Index.HEADING]), np.sin(end_pose[SE2Index.HEADING])])
    p1, p2 = p0 + d0 * chord * 0.39, p3 - d3 * chord * 0.39
    n = max(3, int(np.ceil(chord * 1.2 / spacing)) + 1)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def offset_polyline(xy: FloatArray, offset: float) -> FloatArray:
    """Shift a polyline ``(N, 2)`` sideways by ``offset`` [m] (positive = left of the driving direction)."""
    xy = np.asarray(xy, dtype=np.float64)
    seg = np.diff(xy, axis=0)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True)
    tangent = np.empty_like(xy)
    tangent[0], tangent[-1] = seg[0], seg[-1]
    tangent[1:-1] = seg[:-1] + seg[1:]
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    # Keep the offset distance exact at corners: divide by cos of the half angle between segments.
    scale = np.ones(len(xy))
    scale[1:-1] = 1.0 / np.clip(np.sum(tangent[1:-1] * seg[:-1], axis=1), 0.5, 1.0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    return xy + normal * (offset * scale)[:, None]


def lane_geometry(centerline_xy: FloatArray, width: float) -> tuple[FloatArray, FloatArray, FloatArray, Polygon]:
    """Centerline poses, left and right boundaries, and polygon of a lane of ``width`` [m].

    Returns:
        ``(centerline (N, 3), left (N, 2), right (N, 2), polygon)``.
    """
    xy = np.asarray(centerline_xy, dtype=np.float64)
    centerline = np.column_stack([xy, headings_from_path(xy)])
    left = offset_polyline(xy, width / 2.0)
    right = offset_polyline(xy, -width / 2.0)
    polygon = Polygon(np.concatenate([left, right[::-1]]))
    if not polygon.is_valid:
        polygon = shapely.make_valid(polygon)
        if not isinstance(polygon, Polygon):
            polygon = polygon.convex_hull
    return centerline, left, right, polygon


def union_polygon(polygons: list[Polygon]) -> Polygon:
    """Union of polygons as one ``Polygon`` (the convex hull when the union falls apart)."""
    merged = shapely.union_all([p.buffer(1e-6) for p in polygons]).buffer(-1e-6)
    if isinstance(merged, Polygon):
        return merged
    return merged.convex_hull  # type: ignore[return-value]
