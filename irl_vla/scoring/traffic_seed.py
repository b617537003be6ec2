"""What reactive traffic needs from a scene, gathered once when its metric cache is built.

``reference/navsim.md`` §8.3-8.4 and §8.7: the vehicles of the current frame in annotation order, each with its
starting lane segment (a LANE whose polygon strictly contains the box centre, else a LANE_CONNECTOR containing it
when the centre lies in an INTERSECTION; among several, the one whose nearest baseline heading differs least
from the vehicle's, as a raw difference without wrapping, the first on ties), the nearest baseline pose (heading
from the point 0.5 m further along, or from 0.5 m before at the baseline's end), the projection's arc length
and the lateral deviation; whether the centre lies in any LANE or INTERSECTION polygon; the chosen segments'
baselines and speed limits; and the other (non-vehicle) objects as unfiltered 10 Hz tracks, which reactive
traffic replays. The lane look-ups need the whole map, so they are done here and not at scoring time.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import shapely

from irl_vla.data.enums import XY, AgentClass, SE2Index
from irl_vla.data.map.map_api import LaneLike, Map
from irl_vla.data.map.map_objects import MapLayer
from irl_vla.data.scene import Scene
from irl_vla.scoring.scene_cache import Tracks
from irl_vla.scoring.states import FloatArray

#: Distance along a baseline used to estimate the heading of its nearest pose [m].
HEADING_ESTIMATION_DISTANCE = 0.5


@dataclass
class TrafficSeed:
    """Reactive traffic inputs of one scene (global frame).

    Attributes:
        vehicle_tokens: track tokens of the current frame's vehicles, annotation order ``(V,)``.
        vehicle_poses: their logged box-centre poses ``(V, 3)``.
        vehicle_sizes: (length, width) [m] ``(V, 2)``.
        vehicle_velocities: logged (vx, vy) [m/s] ``(V, 2)``.
        vehicle_segment: index of the starting segment in ``segment_ids``, -1 without one ``(V,)``.
        vehicle_snapped: nearest baseline pose of the centre, NaN without a segment ``(V, 3)``.
        vehicle_progress: arc length of that pose along the baseline [m], NaN without a segment ``(V,)``.
        vehicle_deviation: distance from the centre to that pose [m], NaN without a segment ``(V,)``.
        vehicle_in_lanes: whether the centre lies strictly inside a LANE or INTERSECTION polygon ``(V,)``.
        segment_ids: map ids of the starting segments ``(S,)``.
        segment_baselines: their baseline vertices (x, y) [m], one ``(M, 2)`` array each.
        segment_speed_limits: their speed limits [m/s], NaN when the map has none ``(S,)``.
        replay: the non-vehicle objects as 10 Hz tracks, nothing removed.
        replay_current: which of them are annotated in the current frame ``(N,)``.
    """

    vehicle_tokens: list[str]
    vehicle_poses: FloatArray
    vehicle_sizes: FloatArray
    vehicle_velocities: FloatArray
    vehicle_segment: np.ndarray
    vehicle_snapped: FloatArray
    vehicle_progress: FloatArray
    vehicle_deviation: FloatArray
    vehicle_in_lanes: np.ndarray
    segment_ids: list[str]
    segment_baselines: list[FloatArray]
    segment_speed_limits: FloatArray
    replay: Tracks
    replay_current: np.ndarray

    def __len__(self) -> int:
        return len(self.vehicle_tokens)


def nearest_baseline_pose(baseline: shapely.LineString, point: FloatArray) -> tuple[FloatArray, float]:
    """Nearest pose (x, y, heading) ``(3,)`` on a baseline to ``point`` ``(2,)`` and its arc length [m]."""
    s = float(baseline.project(shapely.Point(point)))
    here = shapely.get_coordinates(baseline.interpolate(s))[0]
    ahead = shapely.get_coordinates(baseline.interpolate(s + HEADING_ESTIMATION_DISTANCE))[0]
    if np.array_equal(here, ahead):  # at the baseline's end: look back instead
        before = shapely.get_coordinates(baseline.interpolate(s - HEADING_ESTIMATION_DISTANCE))[0]
        d = here - before
    else:
        d = ahead - here
    return np.array([here[0], here[1], np.arctan2(d[1], d[0])]), s


def starting_segment(amap: Map, pose: FloatArray) -> LaneLike | None:
    """The lane segment a vehicle at box-centre ``pose`` ``(3,)`` starts on, ``None`` if it is on none."""
    xy = pose[XY]
    candidates: list = amap.objects_containing(xy, MapLayer.LANE)
    if not candidates and amap.is_in_layer(xy, MapLayer.INTERSECTION):
        candidates = amap.objects_containing(xy, MapLayer.LANE_CONNECTOR)
    best, best_error = None, np.inf
    for lane in candidates:
        line = shapely.LineString(lane.centerline[:, XY])
        near, _ = nearest_baseline_pose(line, xy)
        error = abs(near[SE2Index.HEADING] - pose[SE2Index.HEADING])  # raw difference, no wrapping (navsim)
        if error < best_error:
            best, best_error = lane, error
    return best


def build_traffic_seed(scene: Scene, tracks: Tracks) -> TrafficSeed:
    """The reactive traffic inputs of ``scene``.

    Args:
        scene: the scene, with its map.
        tracks: every annotated object as 10 Hz tracks (before any log-replay filter).
    """
    amap = scene.map_api
    assert amap is not None
    current = set(scene.current_frame.annotations.track_tokens)
    is_vehicle = np.array([n == AgentClass.VEHICLE.value for n in tracks.names], dtype=bool)
    present = np.array([t in current for t in tracks.tokens], dtype=bool)
    vehicles = tracks.select(is_vehicle & present)
    poses = vehicles.poses[0]  # (V, 3)
    v = len(vehicles)
    segment = np.full(v, -1, dtype=np.int64)
    snapped = np.full((v, 3), np.nan)
    progress = np.full(v, np.nan)
    deviation = np.full(v, np.nan)
    in_lanes = np.zeros(v, dtype=bool)
    seg_index: dict[str, int] = {}
    baselines: list[FloatArray] = []
    limits: list[float] = []
    for i, pose in enumerate(poses):
        xy = pose[XY]
        in_lanes[i] = amap.is_in_layer(xy, MapLayer.LANE) or amap.is_in_layer(xy, MapLayer.INTERSECTION)
        lane = starting_segment(amap, pose)
        if lane is None:
            continue
        if lane.id not in seg_index:
            seg_index[lane.id] = len(baselines)
            baselines.append(np.asarray(lane.centerline[:, XY], dtype=np.float64))
            limits.append(np.nan if lane.speed_limit is None else float(lane.speed_limit))
        segment[i] = seg_index[lane.id]
        snapped[i], progress[i] = nearest_baseline_pose(shapely.LineString(baselines[segment[i]]), xy)
        deviation[i] = float(np.hypot(*(snapped[i, XY] - xy)))
    return TrafficSeed(
        vehicle_tokens=list(vehicles.tokens),
        vehicle_poses=poses,
        vehicle_sizes=vehicles.sizes,
        vehicle_velocities=vehicles.velocities[0],
        vehicle_segment=segment,
        vehicle_snapped=snapped,
        vehicle_progress=progress,
        vehicle_deviation=deviation,
        vehicle_in_lanes=in_lanes,
        segment_ids=list(seg_index),
        segment_baselines=baselines,
        segment_speed_limits=np.asarray(limits, dtype=np.float64),
        replay=tracks.select(~is_vehicle),
        replay_current=present[~is_vehicle],
    )


# ---------------------------------------------------------------------------------------------- storage
PREFIX = "traffic_"


def seed_to_arrays(seed: TrafficSeed) -> tuple[dict, dict[str, np.ndarray]]:
    """Header fields (JSON) and arrays (npz, no pickle) of a seed, keys prefixed ``traffic_``."""
    header = {
        "vehicle_tokens": seed.vehicle_tokens,
        "segment_ids": seed.segment_ids,
        "replay_names": seed.replay.names,
        "replay_tokens": seed.replay.tokens,
    }
    lengths = [len(b) for b in seed.segment_baselines]
    arrays = {
        "vehicle_poses": seed.vehicle_poses,
        "vehicle_sizes": seed.vehicle_sizes,
        "vehicle_velocities": seed.vehicle_velocities,
        "vehicle_segment": seed.vehicle_segment,
        "vehicle_snapped": seed.vehicle_snapped,
        "vehicle_progress": seed.vehicle_progress,
        "vehicle_deviation": seed.vehicle_deviation,
        "vehicle_in_lanes": seed.vehicle_in_lanes,
        "segment_xy": np.concatenate(seed.segment_baselines) if lengths else np.zeros((0, 2)),
        "segment_offsets": np.cumsum([0, *lengths]).astype(np.int64),
        "segment_speed_limits": seed.segment_speed_limits,
        "replay_poses": seed.replay.poses,
        "replay_velocities": seed.replay.velocities,
        "replay_sizes": seed.replay.sizes,
        "replay_valid": seed.replay.valid,
        "replay_current": seed.replay_current,
    }
    return {PREFIX + k: v for k, v in header.items()}, {PREFIX + k: v for k, v in arrays.items()}


def seed_from_arrays(header: dict, arrays: dict[str, np.ndarray]) -> TrafficSeed:
    """Inverse of ``seed_to_arrays`` (raises ``KeyError`` on a missing field)."""
    h = {k[len(PREFIX) :]: v for k, v in header.items() if k.startswith(PREFIX)}
    a = {k[len(PREFIX) :]: v for k, v in arrays.items() if k.startswith(PREFIX)}
    xy, offsets = a["segment_xy"], a["segment_offsets"]
    replay = Tracks(
        a["replay_poses"],
        a["replay_velocities"],
        a["replay_sizes"],
        a["replay_valid"].astype(bool),
        list(h["replay_names"]),
        list(h["replay_tokens"]),
    )
    return TrafficSeed(
        vehicle_tokens=list(h["vehicle_tokens"]),
        vehicle_poses=a["vehicle_poses"],
        vehicle_sizes=a["vehicle_sizes"],
        vehicle_velocities=a["vehicle_velocities"],
        vehicle_segment=a["vehicle_segment"].astype(np.int64),
        vehicle_snapped=a["vehicle_snapped"],
        vehicle_progress=a["vehicle_progress"],
        vehicle_deviation=a["vehicle_deviation"],
        vehicle_in_lanes=a["vehicle_in_lanes"].astype(bool),
        segment_ids=list(h["segment_ids"]),
        segment_baselines=[xy[i:j] for i, j in pairwise(offsets)],
        segment_speed_limits=a["segment_speed_limits"],
        replay=replay,
        replay_current=a["replay_current"].astype(bool),
    )
