"""The driving command as OpenScene computes it (``reference/navsim.md`` §2.3).

Project the ego onto its route centerline, take the point ``look_ahead`` metres further along, and express it
in the frame of the projected centerline pose: lateral >= ``threshold`` -> left, <= -``threshold`` -> right,
else straight; without a usable route -> unknown. Route based only, not obstacle aware.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import DrivingCommand, SE2Index
from irl_vla.data.geometry import interpolate_poses, path_arc_length, points_to_local

LOOK_AHEAD = 20.0  # [m]
THRESHOLD = 2.0  # [m]


@dataclass(frozen=True)
class PreparedCenterline:
    """A route centerline made ready for many driving-command queries (``prepare_centerline``).

    Attributes:
        line: the centerline without repeated points (x, y, heading) ``(M, 3)``.
        s: its cumulative arc length [m] ``(M,)``.
        start: segment start points ``(M - 1, 2)``.
        step: segment vectors ``(M - 1, 2)``.
        step2: squared segment lengths ``(M - 1,)``.
    """

    line: npt.NDArray[np.float64]
    s: npt.NDArray[np.float64]
    start: npt.NDArray[np.float64]
    step: npt.NDArray[np.float64]
    step2: npt.NDArray[np.float64]


def prepare_centerline(centerline: npt.NDArray[np.float64] | None) -> PreparedCenterline | None:
    """What ``compute_driving_command`` derives from a centerline ``(N, 3)`` alone; None without a usable route.

    A caller asking for many commands on one route (a closed-loop episode) prepares it once.
    """
    if centerline is None or len(centerline) < 2:
        return None
    line = np.asarray(centerline, dtype=np.float64)
    s = path_arc_length(line[:, : SE2Index.HEADING])
    keep = np.concatenate([[True], np.diff(s) > 1e-9])
    line, s = line[keep], s[keep]
    if len(line) < 2:
        return None
    step = np.diff(line[:, :2], axis=0)
    return PreparedCenterline(line, s, line[:-1, :2], step, np.sum(step * step, axis=1))


def project_arc_length(route: PreparedCenterline, xy: npt.ArrayLike, *, compiled: bool = False) -> float:
    """Arc length [m] along ``route`` of the point of the polyline nearest ``xy`` (x, y) [m].

    ``compiled``: in one compiled loop (``route_kernels.nearest_arc_length``: the same arithmetic, the same value).
    """
    if compiled:
        from irl_vla.data.route_kernels import nearest_arc_length  # numba, only for callers that ask

        x, y = (float(v) for v in np.asarray(xy, dtype=np.float64)[:2])
        return float(nearest_arc_length(x, y, route.start, route.step, route.step2, route.s))
    point = np.asarray(xy, dtype=np.float64)
    s, a, d = route.s, route.start, route.step
    t = np.clip(np.sum((point - a) * d, axis=1) / route.step2, 0.0, 1.0)
    j = int(np.argmin(np.linalg.norm(a + t[:, None] * d - point, axis=1)))
    return float(s[j] + t[j] * (s[j + 1] - s[j]))


def compute_driving_command(
    centerline: npt.NDArray[np.float64] | PreparedCenterline | None,
    ego_xy: npt.ArrayLike,
    *,
    look_ahead: float = LOOK_AHEAD,
    threshold: float = THRESHOLD,
) -> DrivingCommand:
    """Driving command of an ego at ``ego_xy`` (x, y) [m] following ``centerline`` (x, y, heading) ``(N, 3)``.

    ``centerline`` may be given prepared (``prepare_centerline``): the same command, cheaper when asked often (the
    compiled projection and interpolation of ``route_kernels``, equal bit for bit).
    """
    prepared = isinstance(centerline, PreparedCenterline)
    route = centerline if prepared else prepare_centerline(centerline)
    if route is None:
        return DrivingCommand.UNKNOWN
    s, s_proj = route.s, project_arc_length(route, ego_xy, compiled=prepared)
    if prepared:
        from irl_vla.data.route_kernels import interpolate_at  # numba, only for callers that ask

        proj_pose, target = (interpolate_at(s, route.line, at) for at in (s_proj, min(s_proj + look_ahead, s[-1])))
    else:
        proj_pose, target = interpolate_poses(s, route.line, np.array([s_proj, min(s_proj + look_ahead, s[-1])]))
    lateral = points_to_local(target[: SE2Index.HEADING], proj_pose)[1]
    if lateral >= threshold:
        return DrivingCommand.LEFT
    if lateral <= -threshold:
        return DrivingCommand.RIGHT
    return DrivingCommand.STRAIGHT
