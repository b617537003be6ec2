"""The compiled projection onto a route polyline (numba, CPU): ``driving_command.project_arc_length``'s arithmetic.

A closed-loop episode asks for a driving command at every frame it builds, each one projecting the ego onto the
whole route centreline (hundreds of segments): numpy's dozen calls over every segment cost far more than their
arithmetic. ``nearest_arc_length`` makes the same projection in one loop, each segment's numbers computed in the
numpy code's order (so the same nearest segment, the first on ties, and the same arc length, bit for bit:
``tests/data/test_driving_command.py``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def nearest_arc_length(
    px: float, py: float, start: np.ndarray, step: np.ndarray, step2: np.ndarray, s: np.ndarray
) -> float:
    """Arc length [m] of the polyline point nearest ``(px, py)`` [m].

    Args:
        px: the point's x [m].
        py: its y [m].
        start: segment start points ``(M - 1, 2)``.
        step: segment vectors ``(M - 1, 2)``.
        step2: squared segment lengths ``(M - 1,)``.
        s: vertex arc lengths ``(M,)`` [m].
    """
    best, best_j, best_t = np.inf, 0, 0.0
    for j in range(start.shape[0]):
        ax, ay, dx, dy = start[j, 0], start[j, 1], step[j, 0], step[j, 1]
        t = min(max(((px - ax) * dx + (py - ay) * dy) / step2[j], 0.0), 1.0)
        ex, ey = (ax + t * dx) - px, (ay + t * dy) - py
        d = math.sqrt(ex * ex + ey * ey)
        if d < best:
            best, best_j, best_t = d, j, t
    return s[best_j] + best_t * (s[best_j + 1] - s[best_j])


@njit(cache=True)
def _wrap(angle: float) -> float:
    """``geometry.wrap_angle`` of one angle [rad] (Python's float remainder is numpy's)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


@njit(cache=True)
def interpolate_at(s: np.ndarray, line: np.ndarray, at: float) -> np.ndarray:
    """``geometry.interpolate_poses(s, line, [at])[0]``: the pose ``(3,)`` at arc length ``at`` [m] (held at the ends).

    Args:
        s: strictly increasing arc lengths [m] ``(M,)``, ``M >= 2``.
        line: poses ``(M, 3)`` (x, y, heading).
        at: the arc length [m].
    """
    q = min(max(at, s[0]), s[-1])
    upper = min(max(np.searchsorted(s, q, side="right"), 1), s.shape[0] - 1)
    lower = upper - 1
    alpha = (q - s[lower]) / (s[upper] - s[lower])
    out = np.empty(3)
    for c in range(2):
        out[c] = line[lower, c] + alpha * (line[upper, c] - line[lower, c])
    dh = _wrap(line[upper, 2] - line[lower, 2])
    out[2] = _wrap(line[lower, 2] + alpha * dh)
    return out
