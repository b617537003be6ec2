"""``FastScorer``: the geometric sub-metrics vectorised over candidates, steps and objects.

Same semantics as ``ReferenceScorer``, computed in bulk:
- point containment: every footprint corner, centre and rear axle of the batch against each cached map polygon
  through a bounding-box filter and shapely's prepared ``contains_xy`` (the same strict GEOS predicate);
- ego/object overlap: a separating-axis test on oriented boxes for all (candidate, step, object) triples near
  enough to touch; the front-bumper test is the same test with the bumper as a degenerate box;
- the stateful "judge each object once" rules of NC and TTC become "look at each object's first contact";
- red lights: shapely ``intersects`` between the lane-connector polygons and only the footprints in their box;
- lane keeping and progress: point-to-polyline distance and projection in numpy;
- objects are one set for all candidates (log replay) or one per candidate (reactive traffic); both are arrays
  with a leading batch axis of 1 or K.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from irl_vla.data.enums import XY
from irl_vla.data.vehicle import PACIFICA
from irl_vla.scoring.collision import bearing_angle, classify_collision, collision_penalty, is_at_fault
from irl_vla.scoring.containment import PolygonGrid
from irl_vla.scoring.reactive_traffic import TrafficBatch
from irl_vla.scoring.scene_cache import DRIVABLE_KINDS, LANE_KINDS, PolygonKind, SceneCache, Tracks, first_valid_speeds
from irl_vla.scoring.scorer import Geometric, Scorer
from irl_vla.scoring.segment_grid import SegmentGrid
from irl_vla.scoring.states import CORNERS, CornerIndex, FloatArray, StateIndex, footprint, speed

S = StateIndex


class _Objects:
    """Other objects as arrays with a leading batch axis B: 1 (shared by all candidates) or K (one per candidate)."""

    def __init__(
        self, poses: FloatArray, velocities: FloatArray, valid: np.ndarray, sizes: FloatArray, is_agent: np.ndarray
    ) -> None:
        self.center = poses[..., XY]  # (B, T, N, 2)
        self.heading = poses[..., S.HEADING]  # (B, T, N)
        self.half = sizes / 2  # (N, 2) half length, half width
        self.radius = np.hypot(self.half[:, 0], self.half[:, 1])  # (N,)
        self.first_speed = first_valid_speeds(velocities, valid)  # (B, N) collision typing: as first seen
        self.valid = valid  # (B, T, N)
        self.agent = is_agent  # (N,)
        self.batched = poses.shape[0] > 1

    @classmethod
    def of_tracks(cls, tracks: Tracks) -> _Objects:
        """One set of objects for every candidate."""
        return cls(tracks.poses[None], tracks.velocities[None], tracks.valid[None], tracks.sizes, tracks.is_agent)

    @classmethod
    def of_traffic(cls, traffic: TrafficBatch) -> _Objects:
        """One set of objects per candidate."""
        tracks = traffic.candidate(0)
        return cls(traffic.poses, traffic.velocities, traffic.valid, traffic.sizes, tracks.is_agent)

    def batch(self, k: np.ndarray) -> np.ndarray:
        """Batch index of candidates ``k``."""
        return k if self.batched else np.zeros_like(k)

    def __len__(self) -> int:
        return self.center.shape[2]


class _Prepared:
    """Per-scene structures: prepared map polygons with boxes, log-replay objects, centerline segments and grid."""

    def __init__(self, cache: SceneCache, lane_keeping_limit: float) -> None:
        self.grids = [PolygonGrid(p) for p in cache.polygons]
        kinds = cache.polygon_kinds
        self.is_lane = np.isin(kinds, list(LANE_KINDS))
        self.is_drivable = np.isin(kinds, list(DRIVABLE_KINDS))
        self.is_route_lane = cache.on_route
        self.is_intersection = kinds == PolygonKind.INTERSECTION
        self.replay = _Objects.of_tracks(cache.tracks)
        self.red_polygons = list(cache.red_light_polygons)
        for p in self.red_polygons:
            shapely.prepare(p)
        self.red_bounds = shapely.bounds(self.red_polygons) if self.red_polygons else np.zeros((0, 4))
        self.red = cache.red
        line = cache.centerline[:, XY]
        self.seg_start = line[:-1]
        self.seg_vec = np.diff(line, axis=0)
        self.seg_len2 = np.einsum("ij,ij->i", self.seg_vec, self.seg_vec)
        self.centerline = shapely.LineString(line)
        shapely.prepare(self.centerline)
        self.seg_grid = SegmentGrid(self.seg_start, self.seg_vec, lane_keeping_limit + 1e-6)


def _boxes_overlap(
    c1: FloatArray, h1: FloatArray, half1: FloatArray, c2: FloatArray, h2: FloatArray, half2: FloatArray
) -> np.ndarray:
    """Separating-axis test of oriented boxes (centre ``(..., 2)``, heading ``(...)``, half extents ``(..., 2)``).

    Touching counts as overlapping, as shapely's ``intersects``.
    """
    d = c2 - c1
    u1 = np.stack([np.cos(h1), np.sin(h1)], -1)
    u2 = np.stack([np.cos(h2), np.sin(h2)], -1)
    n1 = np.stack([-u1[..., 1], u1[..., 0]], -1)
    n2 = np.stack([-u2[..., 1], u2[..., 0]], -1)
    overlap = np.ones(np.broadcast_shapes(d.shape[:-1], h2.shape), dtype=bool)
    for axis in (u1, n1, u2, n2):
        r1 = half1[..., 0] * np.abs(np.sum(axis * u1, -1)) + half1[..., 1] * np.abs(np.sum(axis * n1, -1))
        r2 = half2[..., 0] * np.abs(np.sum(axis * u2, -1)) + half2[..., 1] * np.abs(np.sum(axis * n2, -1))
        overlap &= np.abs(np.sum(d * axis, -1)) <= r1 + r2
    return overlap


class FastScorer(Scorer):
    """Vectorised implementation of the geometric sub-metrics."""

    name = "fast"

    def geometric_metrics(
        self, cache: SceneCache, states: FloatArray, traffic: TrafficBatch | None = None
    ) -> FloatArray:
        """Inherited, see superclass."""
        key = f"fast_world/{self.config.lane_keeping_deviation_limit}"
        prep = cache._derived.get(key)
        if prep is None:
            prep = cache._derived[key] = _Prepared(cache, self.config.lane_keeping_deviation_limit)
        objects = prep.replay if traffic is None else _Objects.of_traffic(traffic)
        coords = footprint(states)  # (K, T, 5, 2)
        multiple, non_drivable, oncoming, center_junction, axle_junction = self._ego_area(prep, coords, states)
        off_lane = multiple | non_drivable
        out = np.zeros((len(states), len(Geometric)))
        out[:, Geometric.NC] = self._no_at_fault_collision(objects, states, off_lane)
        out[:, Geometric.DAC] = np.where(non_drivable.any(axis=1), 0.0, 1.0)
        out[:, Geometric.DDC] = self._driving_direction(coords, oncoming & ~center_junction)
        out[:, Geometric.TLC] = self._traffic_lights(prep, coords)
        out[:, Geometric.TTC] = self._time_to_collision(objects, states, off_lane | axle_junction)
        out[:, Geometric.LK] = self._lane_keeping(prep, coords, center_junction)
        centers = coords[:, [0, -1], CornerIndex.CENTER]  # (K, 2, 2)
        proj = self._project(prep, centers.reshape(-1, 2)).reshape(-1, 2)
        out[:, Geometric.PROGRESS] = np.maximum(0.0, proj[:, 1] - proj[:, 0])
        return out

    # ---------------------------------------------------------------------------------------------- ego area
    @staticmethod
    def _ego_area(prep: _Prepared, coords: FloatArray, states: FloatArray) -> tuple[np.ndarray, ...]:
        k, t = coords.shape[:2]
        points = np.concatenate([coords, states[:, :, None, : S.HEADING]], axis=2)  # (K, T, 6, 2)
        flat = points.reshape(-1, 2)
        inside = np.zeros((len(prep.grids), len(flat)), dtype=bool)  # (P, Q)
        for p, grid in enumerate(prep.grids):
            inside[p] = grid.contains(flat)
        inside = inside.reshape(-1, k, t, 6)
        corners = inside[..., :4]  # (P, K, T, 4)
        lanes = corners[prep.is_lane]
        multiple = (lanes.any(-1).sum(0) > 1) & ~lanes.all(-1).any(0)
        non_drivable = ~corners[prep.is_drivable].any(0).all(-1)
        center = inside[..., CornerIndex.CENTER]
        oncoming = ~center[prep.is_route_lane].any(0)
        center_junction = center[prep.is_intersection].any(0)
        axle_junction = inside[prep.is_intersection][..., 5].any(0)
        return multiple, non_drivable, oncoming, center_junction, axle_junction

    # ---------------------------------------------------------------------------------------------- contacts
    @staticmethod
    def _contacts(
        objs: _Objects, centers: FloatArray, headings: FloatArray, obj_steps: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """Ego boxes (centres ``(K, E, 2)``, headings ``(K, E)``) against the objects of steps ``obj_steps (E,)``.

        Returns index arrays (k, e, j) of the overlapping triples.
        """
        half_ego = np.array([PACIFICA.length / 2, PACIFICA.width / 2])
        ego_radius = float(np.hypot(*half_ego))
        oc = objs.center[:, obj_steps]  # (B, E, N, 2)
        dist = np.linalg.norm(centers[:, :, None] - oc, axis=-1)  # (K, E, N)
        near = (dist <= ego_radius + objs.radius + 1e-6) & objs.valid[:, obj_steps]
        k, e, j = np.nonzero(near)
        if len(k) == 0:
            return k, e, j
        b = objs.batch(k)
        hit = _boxes_overlap(
            centers[k, e], headings[k, e], half_ego, oc[b, e, j], objs.heading[b, obj_steps[e], j], objs.half[j]
        )
        return k[hit], e[hit], j[hit]

    @staticmethod
    def _first_contacts(k: np.ndarray, e: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, ...]:
        """Keep, for every (candidate, object), only its earliest contact in event order ``e``."""
        order = np.lexsort((e, j, k))
        k, e, j = k[order], e[order], j[order]
        first = np.ones(len(k), dtype=bool)
        first[1:] = (k[1:] != k[:-1]) | (j[1:] != j[:-1])
        return k[first], e[first], j[first]

    def _no_at_fault_collision(self, objs: _Objects, states: FloatArray, off_lane: np.ndarray) -> FloatArray:
        cfg = self.config
        num_k, num_t = states.shape[:2]
        nc = np.ones(num_k)
        if len(objs) == 0:
            return nc
        heading = states[..., S.HEADING]
        ego_center = states[..., : S.HEADING] + PACIFICA.rear_axle_to_center * np.stack(
            [np.cos(heading), np.sin(heading)], -1
        )
        k, t, j = self._contacts(objs, ego_center, heading, np.arange(num_t))
        k, t, j = self._first_contacts(k, t, j)
        if len(k) == 0:
            return nc
        b = objs.batch(k)
        bumper_center = states[k, t, : S.HEADING] + PACIFICA.front_length * np.stack(
            [np.cos(heading[k, t]), np.sin(heading[k, t])], -1
        )
        bumper_half = np.array([0.0, PACIFICA.width / 2])
        front = _boxes_overlap(
            bumper_center, heading[k, t], bumper_half, objs.center[b, t, j], objs.heading[b, t, j], objs.half[j]
        )
        kind = classify_collision(
            ego_speed=speed(states[k, t]),
            object_is_agent=objs.agent[j],
            object_speed=objs.first_speed[b, j],
            object_bearing=bearing_angle(heading[k, t], states[k, t, : S.HEADING], objs.center[b, t, j]),
            touches_front_bumper=front,
            stopped_speed=cfg.collision_stopped_speed,
            behind_angle=cfg.behind_angle,
        )
        fault = is_at_fault(kind, off_lane[k, t])
        np.minimum.at(nc, k[fault], collision_penalty(objs.agent[j[fault]]))
        return nc

    def _time_to_collision(self, objs: _Objects, states: FloatArray, exposed: np.ndarray) -> FloatArray:
        cfg, dt = self.config, self.simulation.dt
        num_k, num_t = states.shape[:2]
        ttc = np.ones(num_k)
        if len(objs) == 0:
            return ttc
        offsets = cfg.ttc_offsets(dt)
        steps = np.arange(num_t - int(offsets[-1]))
        heading = states[:, steps, S.HEADING]  # (K, S)
        v = speed(states[:, steps])
        direction = np.stack([np.cos(heading), np.sin(heading)], -1)
        center = states[:, steps, : S.HEADING] + PACIFICA.rear_axle_to_center * direction
        # events in order (step, offset): e = step * len(offsets) + offset index
        shifted = center[:, :, None] + (
            v[..., None, None] * direction[:, :, None] * (offsets * dt)[None, None, :, None]
        )
        ev_centers = shifted.reshape(num_k, -1, 2)
        ev_heading = np.repeat(heading, len(offsets), axis=1)
        ev_obj_step = (steps[:, None] + offsets[None]).reshape(-1)
        k, e, j = self._contacts(objs, ev_centers, ev_heading, ev_obj_step)
        moving = v.reshape(num_k, -1)[:, :, None].repeat(len(offsets), axis=2).reshape(num_k, -1)
        keep = moving[k, e] >= cfg.stopped_speed_threshold
        k, e, j = self._first_contacts(k[keep], e[keep], j[keep])
        if len(k) == 0:
            return ttc
        t = e // len(offsets)
        angle = bearing_angle(heading[k, t], states[k, t, : S.HEADING], objs.center[objs.batch(k), ev_obj_step[e], j])
        infraction = (angle < cfg.ahead_angle) | (exposed[k, t] & (angle <= cfg.behind_angle))
        ttc[k[infraction]] = 0.0
        return ttc

    # ---------------------------------------------------------------------------------------------- others
    def _driving_direction(self, coords: FloatArray, counted: np.ndarray) -> FloatArray:
        cfg = self.config
        centers = coords[:, :, CornerIndex.CENTER]
        step = np.zeros(centers.shape[:2])
        step[:, 1:] = np.linalg.norm(np.diff(centers, axis=1), axis=-1)
        step = np.where(counted, step, 0.0)
        step[:, 0] = 0.0
        horizon = round(cfg.driving_direction_horizon / self.simulation.dt)
        csum = np.concatenate([np.zeros((len(step), 1)), np.cumsum(step, axis=1)], axis=1)
        lo = np.maximum(np.arange(step.shape[1]) - horizon, 0)
        window = csum[:, 1:] - csum[:, lo]
        worst = window.max(axis=1)
        return np.where(
            worst < cfg.driving_direction_compliance, 1.0, np.where(worst < cfg.driving_direction_violation, 0.5, 0.0)
        )

    @staticmethod
    def _traffic_lights(prep: _Prepared, coords: FloatArray) -> FloatArray:
        tlc = np.ones(coords.shape[0])
        corners = coords[:, :, CORNERS]  # (K, T, 4, 2)
        lo, hi = corners.min(axis=2), corners.max(axis=2)  # (K, T, 2)
        for c, (poly, (x0, y0, x1, y1)) in enumerate(zip(prep.red_polygons, prep.red_bounds, strict=True)):
            cand = (
                prep.red[None, :, c]
                & (hi[..., 0] >= x0)
                & (lo[..., 0] <= x1)
                & (hi[..., 1] >= y0)
                & (lo[..., 1] <= y1)
                & (tlc[:, None] > 0)
            )
            k, t = np.nonzero(cand)
            if len(k):
                hit = shapely.intersects(poly, shapely.polygons(corners[k, t]))
                tlc[k[hit]] = 0.0
        return tlc

    @staticmethod
    def _segment_distance(prep: _Prepared, points: FloatArray, seg: np.ndarray) -> tuple[FloatArray, FloatArray]:
        """Distance of points ``(Q, 2)`` to centerline segments ``seg (Q,)`` and the fraction along them."""
        rel = points - prep.seg_start[seg]
        vec = prep.seg_vec[seg]
        len2 = prep.seg_len2[seg]
        u = np.clip(np.einsum("qi,qi->q", rel, vec) / np.where(len2 > 0, len2, 1.0), 0.0, 1.0)
        nearest = rel - u[:, None] * vec
        return np.hypot(nearest[:, 0], nearest[:, 1]), u

    @staticmethod
    def _project(prep: _Prepared, points: FloatArray) -> FloatArray:
        """Arc length [m] along the centerline of the nearest point, for points ``(Q, 2)`` (GEOS ``project``)."""
        unique, inverse = np.unique(points, axis=0, return_inverse=True)
        return shapely.line_locate_point(prep.centerline, shapely.points(unique))[inverse.ravel()]

    def _lane_keeping(self, prep: _Prepared, coords: FloatArray, in_junction: np.ndarray) -> FloatArray:
        cfg = self.config
        centers = coords[:, :, CornerIndex.CENTER]
        k, t = centers.shape[:2]
        flat = centers.reshape(-1, 2)
        point, seg = prep.seg_grid.candidates(flat)
        close = np.zeros(len(flat), dtype=bool)
        if len(point):
            dist, _ = self._segment_distance(prep, flat[point], seg)
            hit = dist <= cfg.lane_keeping_deviation_limit
            close[point[hit]] = True
        off = (~close).reshape(k, t).astype(np.int64)
        limit = math.ceil(cfg.lane_keeping_horizon / self.simulation.dt - 1e-9)
        lk = np.ones(k)
        # consecutive count of off-centre steps; junction steps neither count nor reset
        count = np.zeros(k, dtype=np.int64)
        for i in range(t):
            count = np.where(in_junction[:, i], count, np.where(off[:, i] == 1, count + 1, 0))
            lk[count >= limit] = 0.0
        return lk
