"""The driving command as OpenScene computes it (``reference/navsim.md`` §2.3).

Project the ego onto its route centerline, take the point ``look_ahead`` metres further along, and express it
in the frame of the projected centerline pose: lateral >= ``threshold`` -> left, <= -``threshold`` -> right,
else straight; without a usable route -> unknown. Route based only, not obstacle aware.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import DrivingCommand, SE2Index
from irl_vla.data.geometry import interpolate_poses, path_arc_length, points_to_local

LOOK_AHEAD = 20.0  # [m]
THRESHOLD = 2.0  # [m]


def compute_driving_command(
    centerline: npt.NDArray[np.float64] | None,
    ego_xy: npt.ArrayLike,
    *,
    look_ahead: float = LOOK_AHEAD,
    threshold: float = THRESHOLD,
) -> DrivingCommand:
    """Driving command of an ego at ``ego_xy`` (x, y) [m] following ``centerline`` (x, y, heading) ``(N, 3)``."""
    if centerline is None or len(centerline) < 2:
        return DrivingCommand.UNKNOWN
    xy = np.asarray(ego_xy, dtype=np.float64)
    line = np.asarray(centerline, dtype=np.float64)
    s = path_arc_length(line[:, : SE2Index.HEADING])
    keep = np.concatenate([[True], np.diff(s) > 1e-9])
    line, s = line[keep], s[keep]
    if len(line) < 2:
        return DrivingCommand.UNKNOWN
    # Projection onto the polyline.
    a, d = line[:-1, :2], np.diff(line[:, :2], axis=0)
    t = np.clip(np.sum((xy - a) * d, axis=1) / np.sum(d * d, axis=1), 0.0, 1.0)
    dist = np.linalg.norm(a + t[:, None] * d - xy, axis=1)
    j = int(np.argmin(dist))
    s_proj = s[j] + t[j] * (s[j + 1] - s[j])
    proj_pose = interpolate_poses(s, line, np.array([s_proj]))[0]
    target = interpolate_poses(s, line, np.array([min(s_proj + look_ahead, s[-1])]))[0]
    lateral = points_to_local(target[: SE2Index.HEADING], proj_pose)[1]
    if lateral >= threshold:
        return DrivingCommand.LEFT
    if lateral <= -threshold:
        return DrivingCommand.RIGHT
    return DrivingCommand.STRAIGHT
