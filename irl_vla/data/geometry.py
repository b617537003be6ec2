"""Vectorised SE(2) utilities in the nuPlan convention (x forward, y left, heading CCW [rad]).

All functions take arrays whose last axis is ``len(SE2Index)`` and broadcast over leading axes, e.g. poses
``(B, T, 3)`` against origins ``(B, 1, 3)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import SE2Index

FloatArray = npt.NDArray[np.floating]

_X, _Y, _H = SE2Index.X, SE2Index.Y, SE2Index.HEADING


def wrap_angle(angle: npt.ArrayLike) -> FloatArray:
    """Wrap angles [rad] into ``[-pi, pi)``."""
    angle = np.asarray(angle, dtype=np.float64)
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def compose(a: FloatArray, b: FloatArray) -> FloatArray:
    """Compose poses: ``b`` given in the frame of ``a``, returned in the frame ``a`` is given in.

    Args:
        a: frame poses ``(..., 3)``.
        b: poses relative to ``a`` ``(..., 3)``.

    Returns:
        ``a ∘ b`` ``(..., 3)`` with wrapped headings.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    cos, sin = np.cos(a[..., _H]), np.sin(a[..., _H])
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=np.float64)
    out[..., _X] = a[..., _X] + cos * b[..., _X] - sin * b[..., _Y]
    out[..., _Y] = a[..., _Y] + sin * b[..., _X] + cos * b[..., _Y]
    out[..., _H] = wrap_angle(a[..., _H] + b[..., _H])
    return out


def inverse(a: FloatArray) -> FloatArray:
    """Inverse of SE(2) poses ``(..., 3)``, so that composing a pose with its inverse gives the identity."""
    a = np.asarray(a, dtype=np.float64)
    cos, sin = np.cos(a[..., _H]), np.sin(a[..., _H])
    out = np.empty_like(a)
    out[..., _X] = -cos * a[..., _X] - sin * a[..., _Y]
    out[..., _Y] = sin * a[..., _X] - cos * a[..., _Y]
    out[..., _H] = wrap_angle(-a[..., _H])
    return out


def absolute_to_relative(poses: FloatArray, origin: FloatArray) -> FloatArray:
    """Express global ``poses`` ``(..., 3)`` in the local frame of ``origin`` ``(..., 3)``."""
    return compose(inverse(origin), poses)


def relative_to_absolute(poses: FloatArray, origin: FloatArray) -> FloatArray:
    """Map ``poses`` ``(..., 3)`` given in the frame of ``origin`` back to the global frame."""
    return compose(origin, poses)


def transform_points(points: FloatArray, origin: FloatArray) -> FloatArray:
    """Map 2-D points ``(..., 2)`` from the frame of ``origin`` ``(3,)`` to the global frame."""
    points = np.asarray(points, dtype=np.float64)
    cos, sin = np.cos(origin[_H]), np.sin(origin[_H])
    rot = np.array([[cos, -sin], [sin, cos]])
    return points @ rot.T + origin[[_X, _Y]]


def box_corners(poses: npt.ArrayLike, length: npt.ArrayLike, width: npt.ArrayLike) -> FloatArray:
    """Corners ``(..., 4, 2)`` [m] (front left, rear left, rear right, front right) of boxes.

    Args:
        poses: box-centre poses ``(..., 3)`` (x [m], y [m], heading [rad]).
        length: box length [m], broadcastable to ``poses[..., 0]``.
        width: box width [m], broadcastable to ``poses[..., 0]``.
    """
    poses = np.asarray(poses, dtype=np.float64)
    half_l = np.asarray(length, dtype=np.float64)[..., None] / 2
    half_w = np.asarray(width, dtype=np.float64)[..., None] / 2
    lon = half_l * np.array([1.0, -1.0, -1.0, 1.0])  # (..., 4)
    lat = half_w * np.array([1.0, 1.0, -1.0, -1.0])
    cos, sin = np.cos(poses[..., _H])[..., None], np.sin(poses[..., _H])[..., None]
    x = poses[..., _X][..., None] + lon * cos - lat * sin
    y = poses[..., _Y][..., None] + lon * sin + lat * cos
    return np.stack([x, y], axis=-1)


def points_to_local(points: FloatArray, origin: FloatArray) -> FloatArray:
    """Express global 2-D points ``(..., 2)`` in the frame of ``origin`` ``(3,)``."""
    points = np.asarray(points, dtype=np.float64)
    cos, sin = np.cos(origin[_H]), np.sin(origin[_H])
    rot = np.array([[cos, -sin], [sin, cos]])
    return (points - origin[[_X, _Y]]) @ rot


def interpolate_poses(
    times: FloatArray, poses: FloatArray, query_times: FloatArray, *, clip: bool = True
) -> FloatArray:
    """Interpolate poses in time: linear in x and y, along the shorter arc in heading.

    Args:
        times: strictly increasing sample times [s] ``(T,)``.
        poses: poses at those times ``(..., T, 3)``.
        query_times: times to evaluate [s] ``(Q,)``.
        clip: hold the first/last pose outside ``[times[0], times[-1]]``; if False, raise instead.

    Returns:
        Interpolated poses ``(..., Q, 3)``.

    Raises:
        ValueError: on non-increasing ``times``, mismatched shapes, or (``clip=False``) out-of-range queries.
    """
    times = np.asarray(times, dtype=np.float64)
    poses = np.asarray(poses, dtype=np.float64)
    query_times = np.asarray(query_times, dtype=np.float64)
    if times.ndim != 1 or poses.shape[-2:] != (len(times), len(SE2Index)):
        raise ValueError(f"interpolate_poses: poses {poses.shape} do not match times {times.shape}")
    if len(times) > 1 and np.any(np.diff(times) <= 0):
        raise ValueError("interpolate_poses: times must be strictly increasing")
    if not clip and (np.any(query_times < times[0]) or np.any(query_times > times[-1])):
        raise ValueError(f"interpolate_poses: query times outside [{times[0]}, {times[-1]}] and clip=False")
    if len(times) == 1:
        return np.repeat(poses, len(query_times), axis=-2)
    q = np.clip(query_times, times[0], times[-1])
    upper = np.clip(np.searchsorted(times, q, side="right"), 1, len(times) - 1)  # (Q,)
    lower = upper - 1
    alpha = (q - times[lower]) / (times[upper] - times[lower])  # (Q,)
    p0, p1 = poses[..., lower, :], poses[..., upper, :]  # (..., Q, 3)
    out = p0 + alpha[:, None] * (p1 - p0)
    dh = wrap_angle(p1[..., _H] - p0[..., _H])
    out[..., _H] = wrap_angle(p0[..., _H] + alpha * dh)
    return out


def headings_from_path(xy: FloatArray) -> FloatArray:
    """Heading [rad] of each vertex of a polyline ``(N, 2)``: towards the next vertex, the last repeats."""
    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) < 2:
        raise ValueError(f"headings_from_path: need at least 2 points, got {len(xy)}")
    d = np.diff(xy, axis=0)
    h = np.arctan2(d[:, 1], d[:, 0])
    return np.append(h, h[-1])


def path_arc_length(xy: FloatArray) -> FloatArray:
    """Cumulative arc length [m] of a polyline ``(N, 2)``, starting at 0 ``(N,)``."""
    xy = np.asarray(xy, dtype=np.float64)
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=-1))])
