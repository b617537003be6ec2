"""``ReferenceScorer``: the geometric sub-metrics written to read like the spec (``reference/navsim.md`` §1.6-1.7).

One proposal and one time step at a time, with shapely predicates as NAVSIM uses them: strict ``contains`` for
points, ``intersects`` for polygons, ``project``/``distance`` on the centerline. Slow and obvious on purpose: it
is what ``FastScorer`` is tested against.
"""

from __future__ import annotations

import math

import numpy as np
from shapely.geometry import LineString, Point, Polygon
from shapely.strtree import STRtree

from irl_vla.data.enums import XY
from irl_vla.scoring.collision import bearing_angle, classify_collision, collision_penalty, is_at_fault
from irl_vla.scoring.reactive_traffic import TrafficBatch
from irl_vla.scoring.scene_cache import DRIVABLE_KINDS, LANE_KINDS, PolygonKind, SceneCache, Tracks
from irl_vla.scoring.scorer import Geometric, Scorer
from irl_vla.scoring.states import CORNERS, CornerIndex, FloatArray, StateIndex, footprint, speed


class _Objects:
    """Shapely view of tracks: the polygons of the objects present at each step."""

    def __init__(self, tracks: Tracks) -> None:
        self.tracks = tracks
        corners = tracks.corners()  # (T, N, 4, 2)
        self.at: list[list[tuple[int, Polygon]]] = [
            [(j, Polygon(corners[t, j])) for j in np.flatnonzero(tracks.valid[t])] for t in range(len(corners))
        ]


class _World:
    """Shapely view of a cache: map polygons, log-replay objects, red lights per step, centerline."""

    def __init__(self, cache: SceneCache) -> None:
        self.cache = cache
        self.map_tree = STRtree(cache.polygons)
        on_route = cache.on_route
        self.is_lane = np.isin(cache.polygon_kinds, list(LANE_KINDS))
        self.is_drivable = np.isin(cache.polygon_kinds, list(DRIVABLE_KINDS))
        self.is_route_lane = on_route
        self.is_intersection = cache.polygon_kinds == PolygonKind.INTERSECTION
        self.replay = _Objects(cache.tracks)
        self.centerline = LineString(cache.centerline[:, XY])

    def containing(self, xy: FloatArray) -> set[int]:
        """Indices of the map polygons that strictly contain the point."""
        return {int(i) for i in self.map_tree.query(Point(xy), predicate="within")}


class ReferenceScorer(Scorer):
    """Shapely, step-by-step implementation of the geometric sub-metrics."""

    name = "reference"

    def geometric_metrics(
        self, cache: SceneCache, states: FloatArray, traffic: TrafficBatch | None = None
    ) -> FloatArray:
        """Inherited, see superclass."""
        world = cache._derived.get("reference_world")
        if world is None:
            world = cache._derived["reference_world"] = _World(cache)
        out = np.zeros((len(states), len(Geometric)))
        for k, proposal in enumerate(states):
            objects = world.replay if traffic is None else _Objects(traffic.candidate(k))
            out[k] = self._proposal(world, objects, proposal)
        return out

    # ---------------------------------------------------------------------------------------- one proposal
    def _proposal(self, world: _World, objects: _Objects, states: FloatArray) -> FloatArray:
        coords = footprint(states)  # (T, 5, 2)
        polygons = [Polygon(c[CORNERS]) for c in coords]
        multiple_lanes, non_drivable, oncoming, center_in_junction, axle_in_junction = self._ego_area(
            world, coords, states
        )
        off_lane = multiple_lanes | non_drivable
        out = np.zeros(len(Geometric))
        out[Geometric.NC] = self._no_at_fault_collision(objects, states, coords, polygons, off_lane)
        out[Geometric.DAC] = 0.0 if non_drivable.any() else 1.0
        out[Geometric.DDC] = self._driving_direction(coords, oncoming, center_in_junction)
        out[Geometric.TLC] = self._traffic_lights(world, polygons)
        out[Geometric.TTC] = self._time_to_collision(objects, states, coords, off_lane | axle_in_junction)
        out[Geometric.LK] = self._lane_keeping(world, coords, center_in_junction)
        start = world.centerline.project(Point(coords[0, CornerIndex.CENTER]))
        end = world.centerline.project(Point(coords[-1, CornerIndex.CENTER]))
        out[Geometric.PROGRESS] = max(0.0, end - start)
        return out

    def _ego_area(self, world: _World, coords: FloatArray, states: FloatArray) -> tuple[np.ndarray, ...]:
        """Per step: MULTIPLE_LANES, NON_DRIVABLE_AREA, ONCOMING_TRAFFIC, centre and rear axle in a junction."""
        n = len(coords)
        multiple = np.zeros(n, dtype=bool)
        non_drivable = np.zeros(n, dtype=bool)
        oncoming = np.zeros(n, dtype=bool)
        center_junction = np.zeros(n, dtype=bool)
        axle_junction = np.zeros(n, dtype=bool)
        for t in range(n):
            corner_sets = [world.containing(coords[t, c]) for c in range(4)]
            lanes_per_corner = [{i for i in s if world.is_lane[i]} for s in corner_sets]
            touched_lanes = set().union(*lanes_per_corner)
            lane_with_all = set.intersection(*lanes_per_corner)
            multiple[t] = len(touched_lanes) > 1 and not lane_with_all
            non_drivable[t] = any(not any(world.is_drivable[i] for i in s) for s in corner_sets)
            center = world.containing(coords[t, CornerIndex.CENTER])
            oncoming[t] = not any(world.is_route_lane[i] for i in center)
            center_junction[t] = any(world.is_intersection[i] for i in center)
            axle = world.containing(states[t, [StateIndex.X, StateIndex.Y]])
            axle_junction[t] = any(world.is_intersection[i] for i in axle)
        return multiple, non_drivable, oncoming, center_junction, axle_junction

    def _no_at_fault_collision(
        self, objects: _Objects, states: FloatArray, coords: FloatArray, polygons: list[Polygon], off_lane: np.ndarray
    ) -> float:
        cfg, tracks = self.config, objects.tracks
        score = 1.0
        first_speeds = tracks.first_speeds()  # navsim types a collision with the object as first seen
        collided: set[int] = set()
        for t, ego in enumerate(polygons):
            bumper = LineString([coords[t, CornerIndex.FRONT_LEFT], coords[t, CornerIndex.FRONT_RIGHT]])
            for j, obj in objects.at[t]:
                if j in collided or not ego.intersects(obj):
                    continue
                collided.add(j)  # an object is judged once, at first contact
                kind = classify_collision(
                    ego_speed=speed(states[t]),
                    object_is_agent=tracks.is_agent[j],
                    object_speed=float(first_speeds[j]),
                    object_bearing=bearing_angle(states[t, StateIndex.HEADING], states[t, :2], tracks.poses[t, j, :2]),
                    touches_front_bumper=obj.intersects(bumper),
                    stopped_speed=cfg.collision_stopped_speed,
                    behind_angle=cfg.behind_angle,
                )
                if is_at_fault(kind, off_lane[t]):
                    score = min(score, float(collision_penalty(tracks.is_agent[j])))
        return score

    def _driving_direction(self, coords: FloatArray, oncoming: np.ndarray, in_junction: np.ndarray) -> float:
        cfg = self.config
        centers = coords[:, CornerIndex.CENTER]
        progress = np.zeros(len(centers))
        for t in range(1, len(centers)):
            if oncoming[t] and not in_junction[t]:
                progress[t] = math.dist(centers[t], centers[t - 1])
        horizon = round(cfg.driving_direction_horizon / self.simulation.dt)
        worst = max(progress[max(0, t - horizon) : t + 1].sum() for t in range(len(progress)))
        if worst < cfg.driving_direction_compliance:
            return 1.0
        return 0.5 if worst < cfg.driving_direction_violation else 0.0

    def _traffic_lights(self, world: _World, polygons: list[Polygon]) -> float:
        cache = world.cache
        for t, ego in enumerate(polygons):
            for c in np.flatnonzero(cache.red[t]):
                if ego.intersects(cache.red_light_polygons[c]):
                    return 0.0
        return 1.0

    def _time_to_collision(
        self, objects: _Objects, states: FloatArray, coords: FloatArray, exposed: np.ndarray
    ) -> float:
        """TTC: the ego projected at constant velocity 0 / 0.3 / 0.6 / 0.9 s ahead.

        ``exposed`` marks steps where the ego straddles lanes, is off the drivable area or has its rear axle in a
        junction.
        """
        cfg, dt, tracks = self.config, self.simulation.dt, objects.tracks
        offsets = cfg.ttc_offsets(dt)
        last = len(states) - 1 - int(offsets[-1])
        ignored: set[int] = set()
        for t in range(last + 1):
            v = speed(states[t])
            if v < cfg.stopped_speed_threshold:
                continue
            heading = states[t, StateIndex.HEADING]
            direction = np.array([math.cos(heading), math.sin(heading)])
            for step in offsets:
                shifted = Polygon(coords[t, CORNERS] + v * direction * step * dt)
                for j, obj in objects.at[t + step]:
                    if j in ignored or not shifted.intersects(obj):
                        continue
                    angle = bearing_angle(heading, states[t, :2], tracks.poses[t + step, j, :2])
                    if angle < cfg.ahead_angle or (exposed[t] and angle <= cfg.behind_angle):
                        return 0.0
                    ignored.add(j)
        return 1.0

    def _lane_keeping(self, world: _World, coords: FloatArray, in_junction: np.ndarray) -> float:
        cfg = self.config
        limit_steps = math.ceil(cfg.lane_keeping_horizon / self.simulation.dt - 1e-9)
        count = 0
        for t in range(len(coords)):
            if in_junction[t]:
                continue
            if world.centerline.distance(Point(coords[t, CornerIndex.CENTER])) > cfg.lane_keeping_deviation_limit:
                count += 1
                if count >= limit_steps:
                    return 0.0
            else:
                count = 0
        return 1.0
