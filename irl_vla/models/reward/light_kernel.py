"""The light decoder's per-candidate inputs in one compiled loop (numba, CPU), for when nothing needs a gradient.

``RewardWorldModel`` builds the same inputs with torch (any device, differentiable): the normalised poses with
the cosine and sine of their headings, the LiDAR cells under each outline point, the red-light map of each pose's
time there, and the map class there as a row of the first layer's class weights. In torch that is about forty
small tensor operations per call, which at a few hundred candidates cost more than the arithmetic; here it is
one pass over the (scene, candidate, pose, point) quadruples writing straight into the input matrix. A test keeps
the two equal. The clearance columns are left for ``clearance.nearest_objects`` to fill.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def light_inputs_kernel(
    traj: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    points: np.ndarray,
    x_min: float,
    y_min: float,
    rows_per_m: float,
    cols_per_m: float,
    height: int,
    width: int,
    lidar: np.ndarray,
    classes: np.ndarray,
    red: np.ndarray,
    num_classes: int,
    lidar_col: int,
    red_col: int,
    dense: np.ndarray,
    class_rows: np.ndarray,
    inside_weight: np.ndarray,
) -> None:  # pragma: no cover - compiled (its equality with the torch inputs is tested)
    """Fill ``dense`` (B, K, F), ``class_rows`` and ``inside_weight`` (B, K, T P) for trajectories (B, K, T, 3).

    ``dense``'s columns: pose t's normalised x, y, heading, cos and sin of the heading at ``5 t``; the LiDAR
    channels of point p of pose t at ``lidar_col + (t P + p) C``; the red-light map at ``red_col + t P + p`` (when
    ``red`` has frames); other columns are left as they are. ``classes`` empty: no class rows.
    """
    b_n, k_n, t_n = traj.shape[0], traj.shape[1], traj.shape[2]
    p_n = points.shape[0]
    c_n = lidar.shape[2]
    with_classes = classes.shape[1] > 0
    with_red = red.shape[1] > 0
    for b in range(b_n):
        for k in range(k_n):
            for t in range(t_n):
                x, y, h = traj[b, k, t, 0], traj[b, k, t, 1], traj[b, k, t, 2]
                c, s = math.cos(h), math.sin(h)
                dense[b, k, 5 * t] = (x - mean[t, 0]) / std[t, 0]
                dense[b, k, 5 * t + 1] = (y - mean[t, 1]) / std[t, 1]
                dense[b, k, 5 * t + 2] = (h - mean[t, 2]) / std[t, 2]
                dense[b, k, 5 * t + 3] = c
                dense[b, k, 5 * t + 4] = s
                for p in range(p_n):
                    q = t * p_n + p
                    px = x + points[p, 0] * c - points[p, 1] * s
                    py = y + points[p, 0] * s + points[p, 1] * c
                    row = math.floor((px - x_min) * rows_per_m)
                    col = math.floor((py - y_min) * cols_per_m)
                    on = row >= 0 and row < height and col >= 0 and col < width
                    cell = int(min(max(row, 0), height - 1)) * width + int(min(max(col, 0), width - 1))
                    for ch in range(c_n):
                        dense[b, k, lidar_col + q * c_n + ch] = lidar[b, cell, ch] if on else 0.0
                    if with_red:
                        dense[b, k, red_col + q] = 1.0 if on and red[b, t, cell] else 0.0
                    if with_classes:
                        class_rows[b, k, q] = q * num_classes + classes[b, cell]
                        inside_weight[b, k, q] = 1.0 if on else 0.0
