"""The metric cache of one scene: everything scoring needs, built once from a ``Scene`` and stored safely.

Contents (``reference/navsim.md`` §1.5, §2.6): the initial ego state and logged history, the human plan, the
other objects as 10 Hz tracks over 4 s, red-light lane-connector polygons per 10 Hz step, the drivable layers
within 100 m, the on-route lanes and route centerline, and the PDM-Closed plan. Stored as ``.npz`` (no pickle)
with a JSON header; polygons as WKB.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.geometry import Polygon

from irl_vla.common.io import DataFormatError, replacing
from irl_vla.data.enums import XY, AgentClass, BoundingBoxIndex, SE2Index
from irl_vla.data.geometry import interpolate_poses, relative_to_absolute, wrap_angle
from irl_vla.data.map.map_objects import MapLayer
from irl_vla.data.scene import LOG_INTERVAL, Scene
from irl_vla.scoring.states import FloatArray, StateIndex, footprint, initial_state

if TYPE_CHECKING:
    from irl_vla.scoring.traffic_seed import TrafficSeed

CACHE_FORMAT = "irl_vla.metric_cache"
CACHE_VERSION = 4  # 2: log replay drops only tracks under the ego box at t = 0; navsim's tracker fit
#                    3: reactive traffic inputs (t = 0 vehicles on their lane segments, unfiltered replay)
#                    4: PDM-Closed with navsim's leading-object rule, and its start pose (pdm_start)
CACHE_SUFFIX = ".npz"

#: Scoring horizon [s] and step [s].
HORIZON = 4.0
STEP = 0.1
NUM_STEPS = round(HORIZON / STEP) + 1  # 41 states, t = 0 ... 4.0 s
#: Drivable map polygons are taken within this radius of the initial ego centre [m].
MAP_RADIUS = 100.0
#: History comfort uses logged ego states from this far back [s].
HISTORY_SPAN = 1.5


class PolygonKind(IntEnum):
    """Kinds of the cached drivable polygons."""

    ROADBLOCK = 0
    LANE = 1
    LANE_CONNECTOR = 2
    INTERSECTION = 3
    CARPARK_AREA = 4


#: Kinds that make up the drivable area (a corner must lie in one of them).
DRIVABLE_KINDS = (PolygonKind.ROADBLOCK, PolygonKind.INTERSECTION, PolygonKind.CARPARK_AREA)
#: Kinds that are lanes.
LANE_KINDS = (PolygonKind.LANE, PolygonKind.LANE_CONNECTOR)


def first_valid_speeds(velocities: FloatArray, valid: np.ndarray) -> FloatArray:
    """Speed [m/s] at each object's first valid step: velocities ``(B, T, N, 2)``, valid ``(B, T, N)`` -> ``(B, N)``.

    navsim's observation keeps the first occurrence of each track token in the window ("unique objects") and its
    collision typing asks whether *that* object is stopped, so a car that starts moving later still counts as
    stopped (and one that stops later as moving). Objects never present get 0.
    """
    first = np.argmax(valid, axis=1)  # (B, N) index of the first True (0 where none)
    b, n = np.meshgrid(np.arange(valid.shape[0]), np.arange(valid.shape[2]), indexing="ij")
    v = velocities[b, first, n]  # (B, N, 2)
    return np.where(valid.any(axis=1), np.hypot(v[..., 0], v[..., 1]), 0.0)


@dataclass
class Tracks:
    """Other objects at 10 Hz over the scoring horizon, global frame.

    Attributes:
        poses: box-centre poses ``(T, N, 3)``.
        velocities: (vx, vy) [m/s] ``(T, N, 2)``.
        sizes: (length, width) [m] ``(N, 2)``.
        valid: whether the object exists at each step ``(T, N)``.
        names: class name per object (``AgentClass`` values).
        tokens: track token per object.
    """

    poses: FloatArray
    velocities: FloatArray
    sizes: FloatArray
    valid: np.ndarray
    names: list[str]
    tokens: list[str]

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def is_agent(self) -> np.ndarray:
        """Whether each object is a road user (vehicle, pedestrian, bicycle) ``(N,)``."""
        return np.array([AgentClass(n).is_agent for n in self.names], dtype=bool)

    def first_speeds(self) -> FloatArray:
        """Speed [m/s] of each object at its first valid step ``(N,)`` (0 for an object never present).

        navsim types a collision (is the object stopped?) with the object as first seen in the scoring window,
        not as it is at the moment of contact (see ``first_valid_speeds``).
        """
        return first_valid_speeds(self.velocities[None], self.valid[None])[0]

    def corners(self) -> FloatArray:
        """Box corners ``(T, N, 4, 2)`` in the ego footprint's order (FL, RL, RR, FR)."""
        h = self.poses[..., SE2Index.HEADING]
        cos, sin = np.cos(h)[..., None], np.sin(h)[..., None]
        half_l, half_w = self.sizes[:, 0, None] / 2, self.sizes[:, 1, None] / 2
        lon = np.array([1.0, -1.0, -1.0, 1.0]) * half_l  # (N, 4)
        lat = np.array([1.0, 1.0, -1.0, -1.0]) * half_w
        out = np.empty((*h.shape, 4, 2))
        out[..., 0] = self.poses[..., SE2Index.X, None] + lon * cos - lat * sin
        out[..., 1] = self.poses[..., SE2Index.Y, None] + lon * sin + lat * cos
        return out

    def select(self, keep: np.ndarray) -> Tracks:
        """Only the objects where the mask ``keep`` ``(N,)`` is true, or the objects at indices ``keep``, in order."""
        keep = np.asarray(keep)
        idx = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(int)
        return Tracks(
            self.poses[:, idx],
            self.velocities[:, idx],
            self.sizes[idx],
            self.valid[:, idx],
            [self.names[i] for i in idx],
            [self.tokens[i] for i in idx],
        )


@dataclass
class SceneCache:
    """Everything needed to score plans in one scene.

    Attributes:
        token: scene token.
        log_name: log of the scene.
        timestamp: current frame time [us].
        synthetic: whether the scene is a re-simulated (stage-2) scene; no human filter then.
        initial_state: ego state at the current frame ``(n_state,)`` (``StateIndex``).
        history_states: logged ego states at 0.1 s from -1.5 s to -0.2 s ``(H, n_state)``; empty without history.
        human_plan: logged future ``(8, 3)`` at 0.5 s in the current ego frame; ``None`` for synthetic scenes.
        tracks: other objects at 10 Hz.
        red_light_ids: route lane connectors with a traffic light that is red at some step.
        red_light_polygons: their polygons.
        red: which of them is red at each 10 Hz step ``(T, C)``.
        polygon_kinds: ``PolygonKind`` of each drivable polygon ``(P,)``.
        polygon_ids: map id of each polygon.
        polygons: the drivable polygons (roadblocks, their lanes, connector lanes, intersections, car parks).
        route_lane_ids: ids of on-route lanes and lane connectors.
        centerline: route centerline (x, y, heading) ``(M, 3)``.
        speed_limit: speed limit of the ego's route lane [m/s], ``None`` when the map has none.
        pdm_plan: PDM-Closed plan at 0.1 s in the current ego frame ``(50, 3)``, once planned.
        pdm_start: PDM-Closed's pose at t = 0 (the ego projected on its path) in the current ego frame ``(3,)``;
            the tracker's first reference pose. ``None``: the ego's own pose.
        traffic: inputs of reactive traffic (``traffic_seed``): t = 0 vehicles on their lane segments and the
            unfiltered non-vehicle tracks.
    """

    token: str
    log_name: str
    timestamp: int
    synthetic: bool
    initial_state: FloatArray
    history_states: FloatArray
    human_plan: FloatArray | None
    tracks: Tracks
    red_light_ids: list[str]
    red_light_polygons: list[Polygon]
    red: np.ndarray
    polygon_kinds: np.ndarray
    polygon_ids: list[str]
    polygons: list[Polygon]
    route_lane_ids: list[str]
    centerline: FloatArray
    speed_limit: float | None = None
    pdm_plan: FloatArray | None = None
    pdm_start: FloatArray | None = None
    traffic: TrafficSeed | None = None
    _derived: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def on_route(self) -> np.ndarray:
        """Whether each drivable polygon is an on-route lane or lane connector ``(P,)``."""
        route = set(self.route_lane_ids)
        lanes = np.isin(self.polygon_kinds, list(LANE_KINDS))
        return lanes & np.array([pid in route for pid in self.polygon_ids], dtype=bool)


# ---------------------------------------------------------------------------------------------- building
def _history_states(scene: Scene) -> FloatArray:
    """Logged ego states at 0.1 s steps from -1.5 s to -0.2 s (14), linearly interpolated; steering and yaw 0."""
    frames = scene.frames[: scene.current_index + 1]
    times = np.array([(f.timestamp - scene.current_frame.timestamp) / 1e6 for f in frames])
    if times[0] > -HISTORY_SPAN + 1e-6:
        return np.zeros((0, len(StateIndex)))
    query = np.arange(-HISTORY_SPAN, 0.0, STEP)[:-1]
    poses = interpolate_poses(times, np.stack([f.ego_status.ego_pose for f in frames]), query)

    def interpolated(values: FloatArray) -> FloatArray:  # (F, 2) at the frames -> (H, 2) at the query times
        return np.stack([np.interp(query, times, column) for column in values.T], axis=1)

    velocity = interpolated(np.stack([f.ego_status.ego_velocity for f in frames]))  # (H, 2) [m/s]
    acceleration = interpolated(np.stack([f.ego_status.ego_acceleration for f in frames]))  # (H, 2) [m/s^2]
    return np.stack([initial_state(*state) for state in zip(poses, velocity, acceleration, strict=True)])


def _tracks(scene: Scene, num_frames: int) -> Tracks:
    """Annotated boxes of the current and next ``num_frames - 1`` frames as 10 Hz global tracks."""
    frames = scene.frames[scene.current_index : scene.current_index + num_frames]
    t0 = scene.current_frame.timestamp
    frame_times = np.array([(f.timestamp - t0) / 1e6 for f in frames])
    query = np.arange(NUM_STEPS) * STEP
    per_track: dict[str, list[tuple[float, FloatArray, FloatArray, FloatArray, str]]] = {}
    for t, frame in zip(frame_times, frames, strict=True):
        ann, ego = frame.annotations, frame.ego_status.ego_pose
        if not len(ann):
            continue
        b = BoundingBoxIndex
        pose = relative_to_absolute(ann.boxes[:, [b.X, b.Y, b.HEADING]], ego)  # (n, 3)
        c, s = np.cos(ego[SE2Index.HEADING]), np.sin(ego[SE2Index.HEADING])
        vel = ann.velocity_3d[:, XY] @ np.array([[c, s], [-s, c]])  # ego frame -> global
        for i, token in enumerate(ann.track_tokens):
            per_track.setdefault(token, []).append(
                (float(t), pose[i], vel[i], ann.boxes[i, [b.LENGTH, b.WIDTH]], ann.names[i])
            )
    tokens = list(per_track)
    n = len(tokens)
    poses = np.zeros((NUM_STEPS, n, 3))
    vels = np.zeros((NUM_STEPS, n, 2))
    valid = np.zeros((NUM_STEPS, n), dtype=bool)
    sizes = np.zeros((n, 2))
    names = []
    for j, token in enumerate(tokens):
        obs = per_track[token]
        times = np.array([o[0] for o in obs])
        p = np.stack([o[1] for o in obs])
        p[:, SE2Index.HEADING] = np.unwrap(p[:, SE2Index.HEADING])
        v = np.stack([o[2] for o in obs])
        sizes[j] = obs[0][3]
        names.append(obs[0][4])
        if len(obs) == 1:
            poses[:, j], vels[:, j], valid[:, j] = p[0], v[0], True
            continue
        inside = (query >= times[0] - 1e-9) & (query <= times[-1] + 1e-9)
        for col in range(3):
            poses[:, j, col] = np.interp(query, times, p[:, col])
        for col in range(2):
            vels[:, j, col] = np.interp(query, times, v[:, col])
        poses[:, j, SE2Index.HEADING] = wrap_angle(poses[:, j, SE2Index.HEADING])
        valid[:, j] = inside
    return Tracks(poses, vels, sizes, valid, names, tokens)


def overlapping_at_start(tracks: Tracks, ego_pose: FloatArray) -> np.ndarray:
    """Which tracks ``(N,)`` the log-replay policy drops: those whose box intersects the ego's box at t = 0.

    Only the current frame counts (navsim's rule): an object that reaches the ego's initial footprint later
    stays, and a collision with it is scored.
    """
    if not len(tracks):
        return np.zeros(0, dtype=bool)
    ego_box = shapely.polygons(footprint(ego_pose)[:4])
    boxes = shapely.polygons(tracks.corners()[0])  # (N,) at t = 0
    return shapely.intersects(boxes, ego_box) & tracks.valid[0]


def _polygons_near(scene: Scene, center: FloatArray) -> tuple[list[int], list[str], list[Polygon]]:
    assert scene.map_api is not None
    near = scene.map_api.query_radius(
        center,
        MAP_RADIUS,
        [MapLayer.ROADBLOCK, MapLayer.ROADBLOCK_CONNECTOR, MapLayer.INTERSECTION, MapLayer.CARPARK_AREA],
    )
    kinds, ids, polys = [], [], []

    def add(kind: PolygonKind, obj_id: str, poly: Polygon) -> None:
        kinds.append(int(kind))
        ids.append(obj_id)
        polys.append(poly)

    for block in near[MapLayer.ROADBLOCK]:
        add(PolygonKind.ROADBLOCK, block.id, block.polygon)
        for lane_id in block.lane_ids:  # type: ignore[attr-defined]
            add(PolygonKind.LANE, lane_id, scene.map_api.get_lane(lane_id).polygon)
    for connector in near[MapLayer.ROADBLOCK_CONNECTOR]:
        for lane_id in connector.lane_ids:  # type: ignore[attr-defined]
            add(PolygonKind.LANE_CONNECTOR, lane_id, scene.map_api.get_lane(lane_id).polygon)
    for obj in near[MapLayer.INTERSECTION]:
        add(PolygonKind.INTERSECTION, obj.id, obj.polygon)
    for obj in near[MapLayer.CARPARK_AREA]:
        add(PolygonKind.CARPARK_AREA, obj.id, obj.polygon)
    return kinds, ids, polys


def build_scene_cache(scene: Scene) -> SceneCache:
    """The cache of ``scene`` without the PDM-Closed plan (``pdm_closed.plan_scene`` adds it).

    Raises:
        ValueError: naming the token if the scene has no map, no route or fewer than 4 s of future.
    """
    token = scene.token
    if scene.map_api is None:
        raise ValueError(f"scene {token}: no map attached")
    future_frames = round(HORIZON / LOG_INTERVAL)
    if scene.scene_metadata.num_future_frames < future_frames:
        raise ValueError(
            f"scene {token}: scoring needs {future_frames} future frames ({HORIZON} s), "
            f"the scene has {scene.scene_metadata.num_future_frames}"
        )
    current = scene.current_frame
    route = list(current.roadblock_ids)
    if not route:
        raise ValueError(f"scene {token}: the current frame has no route (roadblock_ids)")
    ego = current.ego_status
    state0 = initial_state(ego.ego_pose, ego.ego_velocity, ego.ego_acceleration)
    from irl_vla.scoring.traffic_seed import build_traffic_seed  # it builds on Tracks

    tracks = _tracks(scene, future_frames + 1)
    traffic = build_traffic_seed(scene, tracks)  # reactive traffic replays what log replay removes below
    tracks = tracks.select(~overlapping_at_start(tracks, ego.ego_pose))

    amap = scene.map_api
    route_lanes = amap.route_lanes(route)
    route_connectors = {lane.id for lane in route_lanes if lane.layer == MapLayer.LANE_CONNECTOR}
    frames = scene.frames[scene.current_index : scene.current_index + future_frames + 1]
    red_per_frame = [{cid for cid, red in f.traffic_lights if red and cid in route_connectors} for f in frames]
    red_ids = sorted(set().union(*red_per_frame))
    red = np.zeros((NUM_STEPS, len(red_ids)), dtype=bool)
    steps_per_frame = round(LOG_INTERVAL / STEP)
    for i in range(NUM_STEPS):
        held = red_per_frame[min(i // steps_per_frame, len(frames) - 1)]  # zero-order hold of the 2 Hz status
        red[i] = [cid in held for cid in red_ids]

    kinds, ids, polys = _polygons_near(scene, footprint(ego.ego_pose)[4])
    human = None
    if not scene.scene_metadata.is_synthetic:
        human = scene.get_future_trajectory(future_frames).poses.astype(np.float64)
    return SceneCache(
        token=token,
        log_name=scene.scene_metadata.log_name,
        timestamp=current.timestamp,
        synthetic=scene.scene_metadata.is_synthetic,
        initial_state=state0,
        history_states=_history_states(scene),
        human_plan=human,
        tracks=tracks,
        red_light_ids=red_ids,
        red_light_polygons=[amap.get_lane(cid).polygon for cid in red_ids],
        red=red,
        polygon_kinds=np.asarray(kinds, dtype=np.int64),
        polygon_ids=ids,
        polygons=polys,
        route_lane_ids=[lane.id for lane in route_lanes],
        centerline=amap.route_centerline(route, ego.ego_pose),
        speed_limit=amap.get_lane(amap.route_lane_sequence(route, ego.ego_pose)[0]).speed_limit,
        traffic=traffic,
    )


# ---------------------------------------------------------------------------------------------- storage
def _pack_polygons(polys: list[Polygon]) -> tuple[np.ndarray, np.ndarray]:
    blobs = [shapely.to_wkb(p) for p in polys]
    offsets = np.cumsum([0, *(len(b) for b in blobs)]).astype(np.int64)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).copy(), offsets


def _unpack_polygons(data: np.ndarray, offsets: np.ndarray) -> list[Polygon]:
    raw = data.tobytes()
    return [shapely.from_wkb(raw[a:b]) for a, b in pairwise(offsets)]


def save_scene_cache(cache: SceneCache, path: str | os.PathLike[str]) -> None:
    """Write ``cache`` to ``path`` atomically (``.npz``, no pickle)."""
    header = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "token": cache.token,
        "log_name": cache.log_name,
        "timestamp": cache.timestamp,
        "synthetic": cache.synthetic,
        "names": cache.tracks.names,
        "tokens": cache.tracks.tokens,
        "red_light_ids": cache.red_light_ids,
        "polygon_ids": cache.polygon_ids,
        "route_lane_ids": cache.route_lane_ids,
        "speed_limit": cache.speed_limit,
    }
    map_data, map_offsets = _pack_polygons(cache.polygons)
    red_data, red_offsets = _pack_polygons(cache.red_light_polygons)
    arrays = {
        "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        "initial_state": cache.initial_state,
        "history_states": cache.history_states,
        "track_poses": cache.tracks.poses,
        "track_velocities": cache.tracks.velocities,
        "track_sizes": cache.tracks.sizes,
        "track_valid": cache.tracks.valid,
        "red": cache.red,
        "polygon_kinds": cache.polygon_kinds,
        "map_wkb": map_data,
        "map_offsets": map_offsets,
        "red_wkb": red_data,
        "red_offsets": red_offsets,
        "centerline": cache.centerline,
    }
    if cache.human_plan is not None:
        arrays["human_plan"] = cache.human_plan
    if cache.pdm_plan is not None:
        arrays["pdm_plan"] = cache.pdm_plan
    if cache.pdm_start is not None:
        arrays["pdm_start"] = cache.pdm_start
    if cache.traffic is not None:
        from irl_vla.scoring.traffic_seed import seed_to_arrays

        traffic_header, traffic_arrays = seed_to_arrays(cache.traffic)
        header.update(traffic_header)
        arrays.update(traffic_arrays)
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_scene_cache(path: str | os.PathLike[str]) -> SceneCache:
    """Read a cache written by ``save_scene_cache``.

    Raises:
        FileNotFoundError: naming the file.
        DataFormatError: naming the file and field when it is corrupt or of another format/version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such metric cache file (build it with irl-vla eval or cache)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataFormatError(f"{path}: not a readable metric cache ({type(e).__name__}: {e})") from None
    try:
        header = json.loads(arrays["header"].tobytes())
        if header.get("format") != CACHE_FORMAT or header.get("version") != CACHE_VERSION:
            raise DataFormatError(
                f"{path}: format {header.get('format')} v{header.get('version')}, expected {CACHE_FORMAT} "
                f"v{CACHE_VERSION}: rebuild the cache"
            )
        tracks = Tracks(
            arrays["track_poses"],
            arrays["track_velocities"],
            arrays["track_sizes"],
            arrays["track_valid"].astype(bool),
            list(header["names"]),
            list(header["tokens"]),
        )
        traffic = None
        if "traffic_vehicle_tokens" in header:
            from irl_vla.scoring.traffic_seed import seed_from_arrays

            traffic = seed_from_arrays(header, arrays)
        return SceneCache(
            token=header["token"],
            log_name=header["log_name"],
            timestamp=int(header["timestamp"]),
            synthetic=bool(header["synthetic"]),
            initial_state=arrays["initial_state"],
            history_states=arrays["history_states"],
            human_plan=arrays.get("human_plan"),
            tracks=tracks,
            red_light_ids=list(header["red_light_ids"]),
            red_light_polygons=_unpack_polygons(arrays["red_wkb"], arrays["red_offsets"]),
            red=arrays["red"].astype(bool),
            polygon_kinds=arrays["polygon_kinds"],
            polygon_ids=list(header["polygon_ids"]),
            polygons=_unpack_polygons(arrays["map_wkb"], arrays["map_offsets"]),
            route_lane_ids=list(header["route_lane_ids"]),
            centerline=arrays["centerline"],
            speed_limit=header["speed_limit"],
            pdm_plan=arrays.get("pdm_plan"),
            pdm_start=arrays.get("pdm_start"),
            traffic=traffic,
        )
    except DataFormatError:
        raise
    except (KeyError, ValueError, TypeError, shapely.errors.GEOSException) as e:
        raise DataFormatError(f"{path}: bad or missing field ({type(e).__name__}: {e})") from None
