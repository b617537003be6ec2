"""Re-sampling a relative plan at another agent's pose times."""

from __future__ import annotations

import numpy as np

from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import interpolate_poses
from irl_vla.data.trajectory import Trajectory, TrajectorySampling


def resample(poses: np.ndarray, source: TrajectorySampling, target: TrajectorySampling) -> Trajectory:
    """Relative poses ``(T, 3)`` at ``source`` times re-sampled at ``target`` times (the current pose as t = 0)."""
    times = np.concatenate([[0.0], source.times])
    with_origin = np.concatenate([np.zeros((1, len(SE2Index))), poses], axis=0)
    out = interpolate_poses(times, with_origin, target.times)
    return Trajectory(out.astype(np.float32), target)
