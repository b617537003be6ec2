"""PDM-Closed's proposals: IDM unrolled along a lateral path behind the leading object, as navsim generates them.

``reference/navsim.md`` §1.13. For each lateral path a driving corridor is built once: the path's vertices from
the ego's current progress to that progress + (largest target speed x output horizon), buffered by half the ego
width with square caps. At every ``update_rate``-th step the candidates are the objects (and red lane
connectors) whose polygon at that step intersects the corridor, minus those the ego overlapped at t = 0. Of the
candidates whose centroid projects onto the path beyond the ego's progress, the leader is the one nearest (polygon
to polygon) to the ego's footprint at its progress on the path; IDM then sees it at the ego's progress plus that
distance, with its speed projected on the ego heading (0 for static objects and red lights). Nothing ahead: the
leader is the path's end. Between updates the leader is held; at step 1 it is the zero leader navsim starts its
leader array with (progress 0, speed 0), so any moving ego brakes during the first 0.1 s as navsim's does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import shapely
import shapely.ops
from shapely.geometry import LineString, Polygon

from irl_vla.common.idm import IDMParams
from irl_vla.data.enums import XY, SE2Index
from irl_vla.data.vehicle import VehicleParameters
from irl_vla.scoring.scene_cache import Tracks
from irl_vla.scoring.states import CORNERS, FloatArray, footprint


class LeadIndex(IntEnum):
    """Columns of a leader state ``(..., 3)``."""

    PROGRESS = 0  # where IDM sees the leader along the path [m]
    SPEED = 1  # its speed along the ego heading [m/s]
    REAR_LENGTH = 2  # length subtracted from the gap [m] (half the ego length at the path's end, else 0)


#: navsim's IDM of the proposals: s0 1 m, T 1.5 s, a 1.5 m/s^2, b = braking limit 3 m/s^2, exponent 10.
PROPOSAL_IDM = IDMParams(min_gap=1.0, headway=1.5, accel_max=1.5, decel_comfort=3.0, delta=10.0, decel_max=3.0)


def proposal_acceleration(
    progress: FloatArray, speed: FloatArray, target: FloatArray, lead: FloatArray, params: IDMParams = PROPOSAL_IDM
) -> FloatArray:
    """The batch IDM of navsim's proposals: accelerations [m/s^2] ``(P,)`` at ``progress``, ``speed`` ``(P,)``.

    Each ego follows its leader ``(P, 3)`` (``LeadIndex``) towards its target speed ``(P,)``.

    Not the embedded world's form (``common.idm.idm_acceleration``): the desired gap
    ``s* = s0 + v T + v (v - v_lead) / (2 sqrt(a b))`` is left unclamped, and the gap is
    ``max(leader progress - ego progress - leader rear length, s0)``, measured from the rear axle's progress;
    ``a = a_max (1 - (v / v0)^delta - (s* / s)^2)`` clipped to ``[-decel_max, a_max]``.
    """
    p = params
    s_star = p.min_gap + speed * p.headway
    s_star = s_star + speed * (speed - lead[:, LeadIndex.SPEED]) / (2 * np.sqrt(p.accel_max * p.decel_comfort))
    gap = np.maximum(lead[:, LeadIndex.PROGRESS] - progress - lead[:, LeadIndex.REAR_LENGTH], p.min_gap)
    accel = p.accel_max * (1 - (speed / target) ** p.delta - (s_star / gap) ** 2)
    return np.clip(accel, -p.decel_max, p.accel_max)


class PlanPath:
    """A path PDM-Closed follows: discrete poses with unwrapped headings, arc length and a line.

    Args:
        poses: global (x, y, heading) ``(M, 3)``, M >= 2.
    """

    def __init__(self, poses: FloatArray) -> None:
        poses = np.array(poses, dtype=np.float64)
        if poses.ndim != 2 or poses.shape[1] != len(SE2Index) or len(poses) < 2:
            raise ValueError(f"PlanPath: expected poses of shape (M >= 2, 3), got {poses.shape}")
        poses[:, SE2Index.HEADING] = np.unwrap(poses[:, SE2Index.HEADING])
        self.poses = poses
        steps = np.linalg.norm(np.diff(poses[:, XY], axis=0), axis=1)
        self.progress = np.concatenate([[0.0], np.cumsum(steps)])  # (M,)
        self.line = LineString(poses[:, XY])

    @property
    def length(self) -> float:
        """Arc length [m]."""
        return float(self.progress[-1])

    def offset(self, lateral: float) -> PlanPath:
        """The path shifted ``lateral`` [m] along each pose's left normal (navsim's parallel path)."""
        normal = self.poses[:, SE2Index.HEADING] + np.pi / 2
        out = self.poses.copy()
        out[:, SE2Index.X] += np.cos(normal) * lateral
        out[:, SE2Index.Y] += np.sin(normal) * lateral
        return PlanPath(out)

    def project(self, xy: FloatArray) -> FloatArray:
        """Progress [m] of the points ``(..., 2)`` projected onto the path ``(...)``."""
        xy = np.asarray(xy, dtype=np.float64)
        return shapely.line_locate_point(self.line, shapely.points(xy))

    def interpolate(self, progress: FloatArray) -> FloatArray:
        """Poses ``(..., 3)`` at ``progress`` ``(...)``, clipped to the path; headings wrapped."""
        s = np.clip(np.asarray(progress, dtype=np.float64), 1e-5, self.length)
        out = np.stack([np.interp(s, self.progress, self.poses[:, c]) for c in range(len(SE2Index))], axis=-1)
        out[..., SE2Index.HEADING] = np.arctan2(np.sin(out[..., SE2Index.HEADING]), np.cos(out[..., SE2Index.HEADING]))
        return out

    def corridor(self, start: float, end: float, half_width: float) -> Polygon:
        """The path's vertices with progress in ``[start, end]`` buffered by ``half_width`` with square caps.

        Fewer than two vertices in the interval: the exact sub-line between the two progress values instead.
        """
        start, end = (float(np.clip(v, 0.0, self.length)) for v in (start, end))
        inside = (self.progress >= start) & (self.progress <= end)
        line = LineString(self.poses[inside, XY]) if inside.sum() > 1 else shapely.ops.substring(self.line, start, end)
        return line.buffer(half_width, cap_style="square")


@dataclass
class LeaderWorld:
    """What the leader search sees: object polygons per step and red lane connectors, with t = 0 overlaps removed.

    Attributes:
        tracks: objects ``(T, N)``; a polygon exists where ``valid``.
        red_polygons: red-light lane-connector polygons ``(C,)``.
        red: which connectors are red at each step ``(T, C)``.
        ignored: objects the ego overlaps at t = 0 ``(N,)``.
        red_ignored: red connectors whose polygon contains the ego's footprint at t = 0 ``(C,)``.
        lead_speed_abs: speed [m/s] ``(N,)`` of each object when first seen, 0 for static objects.
        lead_heading: heading [rad] ``(N,)`` of each object when first seen.
        corners: object box corners ``(T, N, 4, 2)``.
    """

    tracks: Tracks
    red_polygons: list[Polygon]
    red: np.ndarray
    ignored: np.ndarray
    red_ignored: np.ndarray
    lead_speed_abs: FloatArray
    lead_heading: FloatArray
    corners: FloatArray

    @classmethod
    def build(cls, tracks: Tracks, red_polygons: list[Polygon], red: np.ndarray, ego_pose: FloatArray) -> LeaderWorld:
        """The world of ``tracks`` and red lights for an ego at rear-axle ``ego_pose`` ``(3,)`` at t = 0."""
        num_steps = tracks.poses.shape[0]
        if red.shape != (num_steps, len(red_polygons)):
            raise ValueError(f"LeaderWorld: red must be ({num_steps}, {len(red_polygons)}), got {red.shape}")
        ego_box = shapely.polygons(footprint(ego_pose)[CORNERS])
        corners = tracks.corners()  # (T, N, 4, 2)
        ignored = tracks.valid[0] & shapely.intersects(shapely.polygons(corners[0]), ego_box)
        red_ignored = np.array([ego_box.within(p) for p in red_polygons], dtype=bool)
        first, cols = np.argmax(tracks.valid, axis=0), np.arange(len(tracks))  # the step each is first seen
        speed = np.where(tracks.is_agent, np.hypot(*tracks.velocities[first, cols].T), 0.0)
        heading = tracks.poses[first, cols, SE2Index.HEADING]
        return cls(tracks, list(red_polygons), red.astype(bool), ignored, red_ignored, speed, heading, corners)


class LeaderSearch:
    """The leading object of proposals on one path, candidates per step computed once and shared by speeds.

    Args:
        world: objects and red lights over the horizon.
        path: the lateral path.
        corridor: its driving corridor.
        vehicle: ego dimensions.
    """

    def __init__(self, world: LeaderWorld, path: PlanPath, corridor: Polygon, vehicle: VehicleParameters) -> None:
        self.world, self.path, self.corridor, self.vehicle = world, path, corridor, vehicle
        self._candidates: dict[int, tuple[np.ndarray, np.ndarray, FloatArray]] = {}

    def candidates(self, step: int) -> tuple[np.ndarray, np.ndarray, FloatArray]:
        """The candidates at ``step``: polygons ``(J,)`` intersecting the corridor, minus the ignored ones.

        Returns:
            ``(polygons, owner, progress)``: owner is the object index, or ``-1 - c`` for red connector ``c``;
            progress [m] is the centroid's projection on the path. In the order of an STR-tree query over the
            objects then the red lights (navsim's occupancy-map order).
        """
        if step in self._candidates:
            return self._candidates[step]
        w = self.world
        present = np.flatnonzero(w.tracks.valid[step])
        polys, owner = list(shapely.polygons(w.corners[step, present])), present.tolist()
        for c in np.flatnonzero(w.red[step]):
            polys.append(w.red_polygons[c])
            owner.append(-1 - c)
        if not polys:
            out = (np.zeros(0, dtype=object), np.zeros(0, dtype=int), np.zeros(0))
        else:
            geoms = np.array(polys, dtype=object)
            hits = shapely.STRtree(geoms, node_capacity=10).query(self.corridor, predicate="intersects")
            idx = np.array([owner[i] for i in hits], dtype=int)
            skip = np.array([w.red_ignored[-1 - i] if i < 0 else w.ignored[i] for i in idx], dtype=bool)
            geoms, idx = geoms[hits][~skip], idx[~skip]
            progress = self.path.project(shapely.get_coordinates(shapely.centroid(geoms)))
            out = (geoms, idx, np.atleast_1d(progress))
        self._candidates[step] = out
        return out

    def leaders(self, step: int, ego_progress: FloatArray) -> FloatArray:
        """Leader states ``(P, 3)`` (``LeadIndex``) at ``step`` for egos at path progress ``(P,)`` [m]."""
        geoms, idx, progress = self.candidates(step)
        out = np.zeros((len(ego_progress), len(LeadIndex)))
        out[:, LeadIndex.PROGRESS] = self.path.length
        out[:, LeadIndex.REAR_LENGTH] = self.vehicle.length / 2
        w = self.world
        for p, ego_s in enumerate(ego_progress):
            ahead = progress > ego_s
            if not ahead.any():
                continue
            pose = self.path.interpolate(ego_s)
            ego_box = shapely.polygons(footprint(pose, self.vehicle)[CORNERS])
            distances = shapely.distance(ego_box, geoms[ahead])
            j = int(np.argmin(distances))
            obj = int(idx[ahead][j])
            out[p, LeadIndex.PROGRESS] = ego_s + float(distances[j])
            out[p, LeadIndex.REAR_LENGTH] = 0.0
            if obj >= 0:  # red lights and static objects stand still
                relative = w.lead_heading[obj] - pose[SE2Index.HEADING]
                out[p, LeadIndex.SPEED] = w.lead_speed_abs[obj] * np.cos(np.arctan2(np.sin(relative), np.cos(relative)))
        return out


def unroll(
    path: PlanPath,
    start_progress: float,
    start_speed: float,
    targets: FloatArray,
    search: LeaderSearch,
    idm: IDMParams,
    num_steps: int,
    dt: float,
    update_rate: int = 2,
) -> tuple[FloatArray, FloatArray]:
    """Progress and speed ``(P, num_steps + 1)`` of IDM egos with target speeds ``(P,)`` along ``path``.

    Args:
        path: the lateral path.
        start_progress: the ego's rear-axle progress on the path at t = 0 [m].
        start_speed: its longitudinal speed [m/s].
        targets: IDM target speeds ``(P,)`` [m/s], > 0.
        search: leader search on this path.
        idm: IDM parameters (``proposal_acceleration``); integrated with explicit Euler (progress advances with
            the old speed) and the speed is not clamped at 0, as navsim does.
        num_steps: steps to unroll.
        dt: step [s].
        update_rate: the leader is searched at steps divisible by this and held in between.
    """
    targets = np.asarray(targets, dtype=np.float64)
    progress = np.zeros((len(targets), num_steps + 1))
    speed = np.zeros_like(progress)
    progress[:, 0], speed[:, 0] = start_progress, start_speed
    lead = np.zeros((len(targets), len(LeadIndex)))  # navsim's zero leader until the first search
    for t in range(1, num_steps + 1):
        if t % update_rate == 0:
            lead = search.leaders(t, progress[:, t - 1])
        accel = proposal_acceleration(progress[:, t - 1], speed[:, t - 1], targets, lead, idm)
        progress[:, t] = progress[:, t - 1] + dt * speed[:, t - 1]
        speed[:, t] = speed[:, t - 1] + dt * accel
    return progress, speed


__all__ = ["PROPOSAL_IDM", "LeadIndex", "LeaderSearch", "LeaderWorld", "PlanPath", "proposal_acceleration", "unroll"]
