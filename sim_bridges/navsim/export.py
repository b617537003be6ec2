"""Exporting an embedded split as a NAVSIM data root that navsim's loaders, metric caching and scoring accept.

Layout under ``out_root`` (``reference/nuplan_openscene_formats.md`` §3.4)::

    maps/                          NUPLAN_MAPS_ROOT: nuplan-maps-v1.0.json, <location>/<version>/map.gpkg (+ stubs)
    navsim_logs/<split>/<log>.pkl  one OpenScene log pickle per log
    sensor_blobs/<split>/<log>/CAM_F0/<token>.jpg ... MergedPointCloud/<token>.pcd
    train_test_split/<split>.yaml  the split's scene filter for navsim (tokens, log names, window sizes); its
                                   tokens are the split's scenes and each one's predecessor (0.5 s earlier)
    export.json                    where each log's map tile went (offset [m], id shift), counts

NAVSIM knows four map locations and each log names one, but every embedded log has its own road network. The
exporter therefore lays the logs' maps side by side as tiles of one map installed under ``location``: log
``k`` is shifted by ``tile_offset(k)`` metres and its map ids by ``k * id_stride``, and its poses, route and
traffic-light ids with it. Annotations are ego-relative and need no change. Scoring is translation-invariant,
so a split scores the same before and after export (``irl-vla eval`` on both, tested).

Sensors are rendered by the renderer the command passes in (``irl-vla navsim-export`` gives the embedded world's,
with all eight NAVSIM cameras on its rig; the bridge never imports another bridge) for the cameras in
``cameras`` and the LiDAR; every frame dict still lists all eight NAVSIM cameras (navsim requires the keys),
with the calibration of the renderer's rig and the image path a rendered camera would have.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from omegaconf import OmegaConf
from PIL import Image

from irl_vla.common import parallel
from irl_vla.common.io import DataFormatError, atomic_open, read_json, write_json
from irl_vla.data.enums import SE2Index
from irl_vla.data.map import Map, MapObject
from irl_vla.data.scene import EgoStatus, Frame
from irl_vla.data.sensors import NAVSIM_CAMERA_NAMES
from irl_vla.data.source import FrameRenderer
from irl_vla.data.split import SceneLoader, SplitManifest
from sim_bridges.navsim.nuplan_map import DEFAULT_EPSG, DEFAULT_LOCATION, MAP_LOCATIONS, write_map_root
from sim_bridges.navsim.openscene import LIDAR_FOLDER, LOG_SUFFIX, FrameContext, frame_to_dict, write_log_pickle
from sim_bridges.navsim.pcd import write_pcd

# id-bearing fields of map objects (single ids and lists of ids)
_ID_FIELDS = {"id", "roadblock_id", "intersection_id"}
_ID_LIST_FIELDS = {"incoming_ids", "outgoing_ids", "lane_ids", "stop_line_ids", "lane_connector_ids"}
_XY_FIELDS = {"centerline", "left_boundary", "right_boundary"}


@dataclass
class ExportConfig:
    """Settings of ``irl-vla navsim-export`` (``configs/navsim_export.yaml``).

    Attributes:
        data_root: where the embedded splits are.
        split: the split to export.
        out_root: the NAVSIM data root to write.
        location: the nuPlan location name the map is installed under.
        epsg: EPSG code named as the map's projected reference system.
        tile_spacing: distance between the logs' map tiles [m].
        tiles_per_row: tiles per row of the grid.
        id_stride: map-id shift between consecutive logs.
        cameras: cameras rendered (all eight NAVSIM names by default).
        lidar: render the merged LiDAR point cloud.
        image_width: rendered image width [px] (the command builds the rig; its height keeps the rig's aspect).
        jpeg_quality: JPEG quality of the images.
        workers: processes (or local Ray CPUs).
        backend: where logs are exported: ``sequential`` | ``process`` | ``ray``.
        ray_address: with ``backend=ray``, a running cluster's address (``None``: a local Ray instance).
        progress: show a progress bar.
    """

    data_root: str = "data"
    split: str = "synth_navtest"
    out_root: str = "data/navsim"
    location: str = DEFAULT_LOCATION
    epsg: int = DEFAULT_EPSG
    tile_spacing: float = 2000.0
    tiles_per_row: int = 16
    id_stride: int = 100_000
    cameras: list[str] = field(default_factory=lambda: list(NAVSIM_CAMERA_NAMES))
    lidar: bool = True
    image_width: int = 256
    jpeg_quality: int = 95
    workers: int = 2
    backend: str = "process"
    ray_address: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.location not in MAP_LOCATIONS:
            raise ValueError(f"ExportConfig.location: {self.location!r} is not one of nuPlan's {list(MAP_LOCATIONS)}")
        unknown = sorted(set(self.cameras) - set(NAVSIM_CAMERA_NAMES))
        if unknown:
            raise ValueError(f"ExportConfig.cameras: unknown cameras {unknown}; NAVSIM has {list(NAVSIM_CAMERA_NAMES)}")
        if self.tile_spacing <= 0 or self.tiles_per_row < 1 or self.id_stride < 1:
            raise ValueError("ExportConfig: tile_spacing, tiles_per_row and id_stride must be positive")
        self.executor()  # validates backend, workers and ray_address

    def executor(self) -> parallel.ExecutorConfig:
        """Where logs are exported."""
        return parallel.ExecutorConfig(self.backend, self.workers, self.ray_address)


@dataclass(frozen=True)
class Tile:
    """Where one log's map went: shift [m] and id shift."""

    dx: float
    dy: float
    id_shift: int


def tile_of(index: int, cfg: ExportConfig) -> Tile:
    """The tile of the ``index``-th log."""
    row, col = divmod(index, cfg.tiles_per_row)
    return Tile(col * cfg.tile_spacing, row * cfg.tile_spacing, index * cfg.id_stride)


# ---------------------------------------------------------------------------------------------- shifting
def _shift_id(value: str, tile: Tile) -> str:
    return str(int(value) + tile.id_shift)


def shift_object(obj: MapObject, tile: Tile) -> MapObject:
    """A copy of ``obj`` moved by the tile's offset, with every id shifted."""
    changes: dict[str, Any] = {"polygon": shapely.affinity.translate(obj.polygon, tile.dx, tile.dy)}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in _ID_FIELDS and value is not None:
            changes[f.name] = _shift_id(value, tile)
        elif f.name in _ID_LIST_FIELDS:
            changes[f.name] = [_shift_id(v, tile) for v in value]
        elif f.name in _XY_FIELDS:
            moved = np.array(value, dtype=np.float64, copy=True)
            if len(moved):
                moved[:, 0] += tile.dx
                moved[:, 1] += tile.dy
            changes[f.name] = moved
    return dataclasses.replace(obj, **changes)


def shift_frame(frame: Frame, tile: Tile) -> Frame:
    """A copy of ``frame`` with its global pose moved and its route and light ids shifted."""
    ego = frame.ego_status
    pose = ego.ego_pose.copy()
    pose[SE2Index.X] += tile.dx
    pose[SE2Index.Y] += tile.dy
    status = EgoStatus(pose, ego.ego_velocity, ego.ego_acceleration, ego.driving_command, in_global_frame=True)
    return dataclasses.replace(
        frame,
        ego_status=status,
        roadblock_ids=[_shift_id(r, tile) for r in frame.roadblock_ids],
        traffic_lights=[(_shift_id(c, tile), red) for c, red in frame.traffic_lights],
    )


# ---------------------------------------------------------------------------------------------- one log
def _camera_path(log_name: str, camera: str, token: str) -> str:
    return f"{log_name}/{camera.upper()}/{token}.jpg"


def _lidar_path(log_name: str, token: str) -> str:
    return f"{log_name}/{LIDAR_FOLDER}/{token}.pcd"


def export_log(
    split_dir: str, log_name: str, index: int, cfg: ExportConfig, renderer: Callable[[], FrameRenderer]
) -> dict[str, Any]:
    """Write one log's pickle and sensors (drawn by the renderer ``renderer`` builds); returns its tile and tokens.

    Raises:
        ValueError: when the renderer's rig lacks one of the eight NAVSIM cameras (naming them).
    """
    loader = SceneLoader(split_dir)
    entry = next(e for e in loader.manifest.logs if e.log_name == log_name)
    record = loader.log(entry)
    tile = tile_of(index, cfg)
    out = Path(cfg.out_root)
    sensor_dir = out / "sensor_blobs" / cfg.split
    sensors = renderer()
    calibrations = sensors.calibrations
    missing = [n for n in NAVSIM_CAMERA_NAMES if n not in calibrations]
    if missing:
        raise ValueError(f"export: the renderer's rig lacks NAVSIM cameras {missing} (navsim needs all eight)")
    lidar_origin = (0.0, 0.0, 0.0)  # the embedded LiDAR frame is the ego frame
    dicts = []
    for i, frame in enumerate(record.frames):
        for name, camera in sensors.render_cameras(frame, record.map, cfg.cameras).items():
            buffer = io.BytesIO()
            assert camera.image is not None
            Image.fromarray(camera.image).save(buffer, format="JPEG", quality=cfg.jpeg_quality)
            with atomic_open(sensor_dir / _camera_path(log_name, name, frame.token), "wb") as f:
                f.write(buffer.getvalue())
        if cfg.lidar:
            write_pcd(
                sensor_dir / _lidar_path(log_name, frame.token), sensors.render_lidar(frame, record.map).lidar_pc
            )
        ctx = FrameContext(
            log_name=log_name,
            scene_token=record.frames[0].token,
            map_location=cfg.location,
            frame_idx=i,
            cameras={n: (_camera_path(log_name, n, frame.token), calibrations[n]) for n in NAVSIM_CAMERA_NAMES},
            lidar_path=_lidar_path(log_name, frame.token),
            lidar_to_ego=lidar_origin,
            sample_prev=record.frames[i - 1].token if i else None,
            sample_next=record.frames[i + 1].token if i + 1 < len(record.frames) else None,
        )
        dicts.append(frame_to_dict(shift_frame(frame, tile), ctx))
    write_log_pickle(out / "navsim_logs" / cfg.split / f"{log_name}{LOG_SUFFIX}", dicts)
    return {"log_name": log_name, "tile": dataclasses.asdict(tile), "tokens": list(entry.scene_tokens)}


# ---------------------------------------------------------------------------------------------- resuming
#: Bumped when the same settings would export different files; older records are redone.
EXPORT_VERSION = 1
#: ``ExportConfig`` fields that do not change what is written.
_RUN_FIELDS = ("workers", "backend", "ray_address", "progress")


def _record_path(cfg: ExportConfig, log_name: str) -> Path:
    """Where a log's export is recorded as done (written after its pickle, so a killed log is redone)."""
    return Path(cfg.out_root) / "export_records" / cfg.split / f"{log_name}.json"


def _record_key(cfg: ExportConfig, renderer: Callable[[], FrameRenderer], sha: str, index: int) -> dict[str, Any]:
    """What an exported log depends on: its source log, tile, settings and renderer (by its factory's repr)."""
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _RUN_FIELDS}
    drawn_by = re.sub(r" at 0x[0-9a-f]+", "", repr(renderer))
    return {"version": EXPORT_VERSION, "source_sha256": sha, "index": index, "settings": settings, "renderer": drawn_by}


def _export_task(
    split_dir: str, log_name: str, index: int, cfg: ExportConfig, renderer: Callable[[], FrameRenderer], sha: str
) -> dict[str, Any]:
    """Executor task: export one log, then record it as done (``sha``: the SHA-256 of its source log)."""
    result = export_log(split_dir, log_name, index, cfg, renderer)
    write_json(_record_path(cfg, log_name), {**_record_key(cfg, renderer, sha, index), "result": result})
    return result


def _exported(job: parallel.Task, cfg: ExportConfig) -> dict[str, Any] | None:
    """The result of a log exported before from the same log with the same settings, else None (redo)."""
    path = _record_path(cfg, job.name)
    pickle = Path(cfg.out_root) / "navsim_logs" / cfg.split / f"{job.name}{LOG_SUFFIX}"
    if not path.is_file() or not pickle.is_file():
        return None
    try:
        record = read_json(path)
    except DataFormatError:
        return None
    _, _, index, _, renderer, sha = job.args
    expected = _record_key(cfg, renderer, sha, index)
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in expected.items()):
        return None
    return record.get("result")


# ---------------------------------------------------------------------------------------------- a split
def merged_map(loader: SceneLoader, cfg: ExportConfig) -> Map:
    """One map holding every log's map as a tile."""
    objects: list[MapObject] = []
    for k, entry in enumerate(loader.manifest.logs):
        tile = tile_of(k, cfg)
        objects += [shift_object(o, tile) for o in loader.log(entry).map.all_objects()]
    return Map(cfg.location, objects)


def predecessor_tokens(loader: SceneLoader) -> dict[str, str]:
    """Each scene's predecessor: the scene one frame (0.5 s) earlier in its log, where the log has one with a route.

    navsim's one-stage scoring pairs a scene with the scene 0.5 s before it for two-frame comfort (EC) only when
    both are scored, so the exported split lists the predecessors too.
    """
    out = {}
    for token in loader.tokens:
        previous = loader.get_previous_scene(token)
        if previous is not None and previous.current_frame.roadblock_ids:
            out[token] = previous.token
    return out


def split_filter_yaml(
    manifest: SplitManifest, settings: dict[str, Any], predecessors: dict[str, str] | None = None
) -> str:
    """Navsim's ``train_test_split`` config selecting the split's scenes and their ``predecessors``."""
    predecessors = predecessors or {}
    listed: dict[str, None] = {}  # in log order, each scene after its predecessor, no token twice
    for token in manifest.tokens:
        if token in predecessors:
            listed[predecessors[token]] = None
        listed[token] = None
    doc = {
        "data_split": manifest.split,
        "scene_filter": {
            "_target_": "navsim.common.dataclasses.SceneFilter",
            "_convert_": "all",
            "num_history_frames": int(settings.get("num_history_frames", 4)),
            "num_future_frames": int(settings.get("num_future_frames", 10)),
            "frame_interval": 1,
            "has_route": True,
            "max_scenes": None,
            "log_names": [e.log_name for e in manifest.logs],
            "tokens": list(listed),
        },
    }
    return OmegaConf.to_yaml(OmegaConf.create(doc))


def export_split(
    cfg: ExportConfig,
    progress: Callable[[int, int], None] | None = None,
    *,
    renderer: Callable[[], FrameRenderer],
) -> dict[str, Any]:
    """Export ``cfg.split`` to ``cfg.out_root``; returns counts and paths (also written to ``export.json``).

    ``renderer`` is a picklable factory of the renderer drawing the sensors (each worker builds its own).
    """
    split_dir = Path(cfg.data_root) / cfg.split
    loader = SceneLoader(split_dir)
    manifest = loader.manifest
    out = Path(cfg.out_root)
    map_file = write_map_root(out / "maps", merged_map(loader, cfg), cfg.location, cfg.epsg)
    predecessors = predecessor_tokens(loader)
    logs = [e.log_name for e in manifest.logs]
    jobs = [
        parallel.Task(e.log_name, (str(split_dir), e.log_name, k, cfg, renderer, e.sha256))
        for k, e in enumerate(manifest.logs)
    ]
    outcome = parallel.run_tasks(
        _export_task, jobs, cfg.executor(), done=lambda job: _exported(job, cfg), progress=progress
    )
    results = outcome.raise_failures(f"export {cfg.split}").results
    split_file = out / "train_test_split" / f"{cfg.split}.yaml"
    with atomic_open(split_file, "w") as f:
        f.write(split_filter_yaml(manifest, manifest.settings, predecessors))
    summary = {
        "format": "irl_vla.navsim_export",
        "version": 1,
        "source_split": str(split_dir),
        "split": cfg.split,
        "location": cfg.location,
        "epsg": cfg.epsg,
        "logs": [results[n] for n in logs],
        "num_logs": len(logs),
        "num_scenes": len(manifest.tokens),
        "num_predecessors": len(predecessors),
        "paths": {
            "maps_root": str(out / "maps"),
            "map": str(map_file),
            "logs": str(out / "navsim_logs" / cfg.split),
            "sensor_blobs": str(out / "sensor_blobs" / cfg.split),
            "split_file": str(split_file),
        },
    }
    write_json(out / "export.json", summary)
    return summary
