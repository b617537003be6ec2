"""OpenScene log pickles (NAVSIM's ``navsim_logs``) <-> the suite's frames and scenes.

A log pickle is a list of frame dicts at 2 Hz (``reference/nuplan_openscene_formats.md`` §2.2-2.4). Poses are
the rear axle's: ``ego2global_translation`` (x, y, z) and ``ego2global_rotation`` (quaternion w, x, y, z);
``ego_dynamic_state`` is (vx, vy, ax, ay) in the ego frame; ``anns`` holds ego-frame boxes
``(x, y, z, l, w, h, yaw)``, class names, ego-frame velocities and tokens; ``traffic_lights`` pairs integer
lane-connector ids with "is red"; ``cams`` has the eight cameras' relative image paths and calibrations and
``lidar_path`` the merged point cloud, both relative to the split's sensor-blob folder. The suite adds one key
navsim ignores, ``irl_vla`` (navigation instruction, scene description and meta-action label), so an exported log
reads back whole. A frame without it (real OpenScene data) gets the navigation instruction of its driving command.

``OpenSceneLoader`` serves a NAVSIM split (a folder of log pickles plus a nuPlan map root and the sensor blobs)
with the interface of the suite's ``SceneLoader``: tokens, scenes by token, the previous frame's scene, and
sensors on request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from irl_vla.common.io import DataFormatError, atomic_open
from irl_vla.data.enums import MetaAction
from irl_vla.data.instruction import command_instruction
from irl_vla.data.map import Map
from irl_vla.data.scene import Annotations, EgoStatus, Frame, Scene, SceneMetadata
from irl_vla.data.sensors import NAVSIM_CAMERA_NAMES, Camera, CameraCalibration, Lidar, SensorConfig
from sim_bridges.navsim import pickles
from sim_bridges.navsim.nuplan_map import MAP_VERSION, map_path, read_map
from sim_bridges.navsim.pcd import read_pcd

LOG_SUFFIX = ".pkl"
LIDAR_FOLDER = "MergedPointCloud"
SUITE_KEY = "irl_vla"  # extra frame key with the suite's language fields
SYNTHETIC_TOKEN_LENGTH = 17


# ---------------------------------------------------------------------------------------------- poses
def yaw_quaternion(heading: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by ``heading`` [rad] about z."""
    return np.array([np.cos(heading / 2), 0.0, 0.0, np.sin(heading / 2)])


def quaternion_yaw(q: np.ndarray) -> float:
    """Yaw [rad] of a quaternion (w, x, y, z)."""
    w, x, y, z = (float(v) for v in q)
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def _homogeneous(x: float, y: float, z: float, heading: float) -> np.ndarray:
    c, s = np.cos(heading), np.sin(heading)
    return np.array([[c, -s, 0.0, x], [s, c, 0.0, y], [0.0, 0.0, 1.0, z], [0.0, 0.0, 0.0, 1.0]])


# ---------------------------------------------------------------------------------------------- writing
@dataclass
class FrameContext:
    """What a frame dict needs beyond the ``Frame``: where it lives and its sensors' files and calibrations."""

    log_name: str
    scene_token: str
    map_location: str
    frame_idx: int
    cameras: dict[str, tuple[str, CameraCalibration]]  # all eight NAVSIM cameras: (relative path, calibration)
    lidar_path: str
    lidar_to_ego: tuple[float, float, float] = (0.0, 0.0, 0.0)
    sample_prev: str | None = None
    sample_next: str | None = None


def frame_to_dict(frame: Frame, ctx: FrameContext) -> dict[str, Any]:
    """The OpenScene frame dict of ``frame`` (global pose, ego-frame boxes)."""
    missing = [n for n in NAVSIM_CAMERA_NAMES if n not in ctx.cameras]
    if missing:
        raise ValueError(f"frame {frame.token}: NAVSIM needs all eight cameras, {missing} are missing")
    ego = frame.ego_status
    x, y, heading = (float(v) for v in ego.ego_pose)
    quat = yaw_quaternion(heading)
    vx, vy = (float(v) for v in ego.ego_velocity)
    ax, ay = (float(v) for v in ego.ego_acceleration)
    ego2global = _homogeneous(x, y, 0.0, heading)
    lidar2ego = _homogeneous(*ctx.lidar_to_ego, 0.0)
    ann = frame.annotations
    can_bus = np.zeros(18)
    can_bus[:3], can_bus[3:7], can_bus[7:9], can_bus[10:12] = (x, y, 0.0), quat, (ax, ay), (vx, vy)
    return {
        "token": frame.token,
        "timestamp": int(frame.timestamp),
        "log_name": ctx.log_name,
        "log_token": hashlib.sha1(ctx.log_name.encode()).hexdigest()[:16],
        "scene_token": ctx.scene_token,
        "scene_name": f"log-0000-{ctx.log_name}",
        "vehicle_name": "irl-vla-embedded",
        "frame_idx": ctx.frame_idx,
        "map_location": ctx.map_location,
        "roadblock_ids": list(frame.roadblock_ids),
        "traffic_lights": [(int(cid), bool(red)) for cid, red in frame.traffic_lights],
        "ego2global_translation": np.array([x, y, 0.0]),
        "ego2global_rotation": quat,
        "ego2global": ego2global,
        "ego_dynamic_state": [vx, vy, ax, ay],
        "driving_command": np.asarray(ego.driving_command, dtype=np.int64),
        "can_bus": can_bus,
        "lidar2ego_translation": np.array(ctx.lidar_to_ego, dtype=np.float64),
        "lidar2ego_rotation": [1.0, 0.0, 0.0, 0.0],
        "lidar2ego": lidar2ego,
        "lidar2global": ego2global @ lidar2ego,
        "lidar_path": ctx.lidar_path,
        "cams": {
            name.upper(): {
                "data_path": path,
                "sensor2lidar_rotation": np.asarray(cal.sensor2lidar_rotation, dtype=np.float64),
                "sensor2lidar_translation": np.asarray(cal.sensor2lidar_translation, dtype=np.float64),
                "cam_intrinsic": np.asarray(cal.intrinsics, dtype=np.float64),
                "distortion": np.asarray(cal.distortion, dtype=np.float64),
            }
            for name, (path, cal) in ctx.cameras.items()
        },
        "anns": {
            "gt_boxes": np.asarray(ann.boxes, dtype=np.float64).reshape(-1, 7),
            "gt_names": np.array(ann.names, dtype=str),
            "gt_velocity_3d": np.asarray(ann.velocity_3d, dtype=np.float64).reshape(-1, 3),
            "instance_tokens": list(ann.instance_tokens),
            "track_tokens": list(ann.track_tokens),
        },
        "sample_prev": ctx.sample_prev,
        "sample_next": ctx.sample_next,
        SUITE_KEY: {
            "instruction": frame.instruction,
            "scene_description": frame.scene_description,
            "meta_action": None if frame.meta_action is None else frame.meta_action.value,
        },
    }


def write_log_pickle(path: str | os.PathLike[str], frames: list[dict[str, Any]]) -> None:
    """Write a log's frame dicts as a pickle navsim's numpy 1.x loads (atomically)."""
    data = pickles.dumps(frames)
    with atomic_open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------- reading
def read_log_pickle(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The frame dicts of a log pickle, loaded with the restricted unpickler.

    Raises:
        FileNotFoundError: naming the file.
        DataFormatError: naming the file when it holds anything but a list of frame dicts, or names a global
            an OpenScene log does not contain.
    """
    frames = pickles.load(path, pickles.LOG_GLOBALS)
    if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
        raise DataFormatError(f"{path}: an OpenScene log is a list of frame dicts, got {type(frames).__name__}")
    return frames


def _array(d: dict[str, Any], key: str, shape: tuple[int | None, ...], where: str) -> np.ndarray:
    try:
        value = np.asarray(d[key], dtype=np.float64)
    except KeyError:
        raise DataFormatError(f"{where}: missing key {key!r}") from None
    except (TypeError, ValueError) as e:
        raise DataFormatError(f"{where}: {key} is not numeric ({e})") from None
    if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape, strict=False)):
        raise DataFormatError(f"{where}: {key} has shape {value.shape}, expected {shape}")
    if not np.all(np.isfinite(value)):
        raise DataFormatError(f"{where}: {key} holds NaN or infinite values")
    return value


def frame_from_dict(d: dict[str, Any], where: str) -> Frame:
    """The suite's ``Frame`` of an OpenScene frame dict (no sensors loaded).

    Raises:
        DataFormatError: naming ``where`` (file and frame) and the key that is missing or malformed.
    """
    try:
        token = str(d["token"])
        where = f"{where} (frame {token})"
        translation = _array(d, "ego2global_translation", (3,), where)
        rotation = _array(d, "ego2global_rotation", (4,), where)
        dynamic = _array(d, "ego_dynamic_state", (4,), where)
        command = np.asarray(d["driving_command"], dtype=np.int64).reshape(-1)
        anns = d["anns"]
        boxes = _array(anns, "gt_boxes", (None, 7), f"{where} anns")
        velocity = _array(anns, "gt_velocity_3d", (None, 3), f"{where} anns")
        extra = d.get(SUITE_KEY) or {}
        meta_action = extra.get("meta_action")
        status = EgoStatus(
            ego_pose=np.array([translation[0], translation[1], quaternion_yaw(rotation)]),
            ego_velocity=dynamic[:2].copy(),
            ego_acceleration=dynamic[2:].copy(),
            driving_command=command,
            in_global_frame=True,
        )
        return Frame(
            token=token,
            timestamp=int(d["timestamp"]),
            roadblock_ids=[str(r) for r in d["roadblock_ids"]],
            traffic_lights=[(str(int(cid)), bool(red)) for cid, red in d["traffic_lights"]],
            annotations=Annotations(
                boxes,
                [str(n) for n in anns["gt_names"]],
                velocity,
                [str(t) for t in anns["instance_tokens"]],
                [str(t) for t in anns["track_tokens"]],
            ),
            ego_status=status,
            instruction=str(extra["instruction"]) if "instruction" in extra else command_instruction(status.command),
            scene_description=str(extra.get("scene_description", "")),
            meta_action=None if meta_action is None else MetaAction(meta_action),
        )
    except DataFormatError:
        raise
    except KeyError as e:
        raise DataFormatError(f"{where}: missing key {e}") from None
    except (TypeError, ValueError) as e:
        raise DataFormatError(f"{where}: {type(e).__name__}: {e}") from None


def calibration_from_dict(cam: dict[str, Any], where: str) -> CameraCalibration:
    """Calibration of one ``cams`` entry."""
    return CameraCalibration(
        _array(cam, "sensor2lidar_rotation", (3, 3), where),
        _array(cam, "sensor2lidar_translation", (3,), where),
        _array(cam, "cam_intrinsic", (3, 3), where),
        _array(cam, "distortion", (None,), where) if "distortion" in cam else np.zeros(5),
    )


# ---------------------------------------------------------------------------------------------- loader
_EXTRA_KEYS = ("map_location", "cams", "lidar_path", SUITE_KEY)  # raw fields kept beside the decoded frames


@dataclass
class _DecodedLog:
    """A log's frames and, per frame, the raw fields in ``_EXTRA_KEYS``."""

    frames: list[Frame]
    extras: list[dict[str, Any]]


@dataclass(frozen=True)
class OpenSceneFilter:
    """Which windows of the logs are scenes (NAVSIM's ``SceneFilter``).

    Attributes:
        num_history_frames: frames up to and including the current one.
        num_future_frames: frames after it.
        frame_interval: frames between window starts (``None``: windows do not overlap).
        has_route: drop windows whose current frame has no route.
        tokens: keep only these scene tokens (``None``: all).
        log_names: read only these logs (``None``: every pickle of the folder).
    """

    num_history_frames: int = 4
    num_future_frames: int = 10
    frame_interval: int | None = None
    has_route: bool = True
    tokens: tuple[str, ...] | None = None
    log_names: tuple[str, ...] | None = None

    @property
    def num_frames(self) -> int:
        """Frames per window."""
        return self.num_history_frames + self.num_future_frames


class OpenSceneLoader:
    """Scenes of a NAVSIM split.

    Args:
        log_dir: the split's log folder (``$OPENSCENE_DATA_ROOT/navsim_logs/<split>``).
        maps_root: the nuPlan map root (``$NUPLAN_MAPS_ROOT``).
        sensor_dir: the split's sensor blobs (``$OPENSCENE_DATA_ROOT/sensor_blobs/<split>``), if sensors are read.
        scene_filter: the windows that are scenes.
        cache_logs: decoded logs kept in memory.

    Raises:
        FileNotFoundError: when the log folder is missing or empty.
        DataFormatError: naming the file of a log that cannot be read.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        maps_root: str | os.PathLike[str],
        sensor_dir: str | os.PathLike[str] | None = None,
        scene_filter: OpenSceneFilter | None = None,
        cache_logs: int = 8,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.maps_root = Path(maps_root)
        self.sensor_dir = None if sensor_dir is None else Path(sensor_dir)
        self.filter = scene_filter or OpenSceneFilter()
        if not self.log_dir.is_dir():
            raise FileNotFoundError(f"NAVSIM log folder {self.log_dir} does not exist")
        files = sorted(p for p in self.log_dir.iterdir() if p.suffix == LOG_SUFFIX)
        if self.filter.log_names is not None:
            files = [p for p in files if p.stem in self.filter.log_names]
        if not files:
            raise FileNotFoundError(f"NAVSIM log folder {self.log_dir} holds no {LOG_SUFFIX} logs")
        self._files = {p.stem: p for p in files}
        self._cache: OrderedDict[str, _DecodedLog] = OrderedDict()
        self._cache_size = cache_logs
        self._maps: dict[str, Map] = {}
        self._scenes: dict[str, tuple[str, int]] = {}  # token -> (log name, window start)
        wanted = None if self.filter.tokens is None else set(self.filter.tokens)
        for log_name in self._files:
            frames = self._log(log_name).frames
            step = self.filter.frame_interval or self.filter.num_frames
            for start in range(0, len(frames) - self.filter.num_frames + 1, step):
                current = frames[start + self.filter.num_history_frames - 1]
                if self.filter.has_route and not current.roadblock_ids:
                    continue
                if wanted is not None and current.token not in wanted:
                    continue
                self._scenes[current.token] = (log_name, start)

    @property
    def name(self) -> str:
        """The split's name (its folder)."""
        return self.log_dir.name

    @property
    def tokens(self) -> list[str]:
        """Every scene token, in log order."""
        return list(self._scenes)

    def __len__(self) -> int:
        return len(self._scenes)

    def log_hash(self, token: str) -> str:
        """A fingerprint of the log file holding scene ``token`` (size and modification time)."""
        log_name, _ = self._where(token)
        stat = self._files[log_name].stat()
        return f"{stat.st_size}-{stat.st_mtime_ns}"

    def _where(self, token: str) -> tuple[str, int]:
        try:
            return self._scenes[token]
        except KeyError:
            raise KeyError(f"NAVSIM split {self.name}: unknown scene token {token!r}") from None

    def _log(self, log_name: str) -> _DecodedLog:
        """A log's frames and the per-frame fields scenes and sensors need (decoded once, LRU-cached)."""
        if log_name in self._cache:
            self._cache.move_to_end(log_name)
            return self._cache[log_name]
        path = self._files[log_name]
        raw = read_log_pickle(path)
        for i, d in enumerate(raw):
            if str(d.get("log_name", log_name)) != log_name:
                raise DataFormatError(f"{path}: frame {i} belongs to log {d.get('log_name')!r}, not the file's stem")
        log = _DecodedLog(
            [frame_from_dict(d, f"{path} frame {i}") for i, d in enumerate(raw)],
            [{k: d.get(k) for k in _EXTRA_KEYS} for d in raw],
        )
        self._cache[log_name] = log
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return log

    def map_of(self, location: str) -> Map:
        """The map of a location (read once)."""
        if location not in self._maps:
            self._maps[location] = read_map(map_path(self.maps_root, location, MAP_VERSION), name=location)
        return self._maps[location]

    def _scene_at(self, log_name: str, start: int) -> Scene:
        log = self._log(log_name)
        # the scene's own frame objects: sensors attached to it never reach the cached log
        window = [dataclasses.replace(f) for f in log.frames[start : start + self.filter.num_frames]]
        current = window[self.filter.num_history_frames - 1]
        extra = log.extras[start + self.filter.num_history_frames - 1]
        location = str(extra["map_location"])
        original = None
        if len(current.token) == SYNTHETIC_TOKEN_LENGTH:  # NAVSIM's mark of a synthetic scene
            original = str((extra.get(SUITE_KEY) or {}).get("corresponding_original_scene") or "unknown")
        meta = SceneMetadata(
            log_name=log_name,
            scene_token=current.token,
            map_name=location,
            initial_token=current.token,
            num_history_frames=self.filter.num_history_frames,
            num_future_frames=self.filter.num_future_frames,
            corresponding_original_scene=original,
            corresponding_original_initial_token=original,
        )
        return Scene(meta, window, self.map_of(location))

    def get_scene(self, token: str, sensors: SensorConfig | None = None) -> Scene:
        """The scene with current-frame ``token`` and its map; history sensors per ``sensors``."""
        log_name, start = self._where(token)
        scene = self._scene_at(log_name, start)
        if sensors is not None and sensors.needs_any:
            self._attach_sensors(scene, log_name, start, sensors)
        return scene

    def get_previous_scene(self, token: str, sensors: SensorConfig | None = None) -> Scene | None:
        """The window one frame (0.5 s) before scene ``token``, or ``None`` at the start of its log."""
        log_name, start = self._where(token)
        if start < 1:
            return None
        scene = self._scene_at(log_name, start - 1)
        if sensors is not None and sensors.needs_any:
            self._attach_sensors(scene, log_name, start - 1, sensors)
        return scene

    def _attach_sensors(self, scene: Scene, log_name: str, start: int, sensors: SensorConfig) -> None:
        if self.sensor_dir is None:
            raise ValueError(f"NAVSIM split {self.name}: sensors requested but no sensor folder given")
        extras = self._log(log_name).extras
        for index in range(scene.current_index + 1):
            d, frame = extras[start + index], scene.frames[index]
            where = f"{self._files[log_name]} frame {frame.token}"
            cameras = {}
            for name in sensors.cameras_at(index):
                cam = d["cams"].get(name.upper())
                if cam is None:
                    raise DataFormatError(f"{where}: no camera {name.upper()} in cams")
                path = self.sensor_dir / str(cam["data_path"])
                if not path.is_file():
                    raise FileNotFoundError(f"{where}: camera image {path} does not exist")
                image = np.array(Image.open(path).convert("RGB"))
                cameras[name] = Camera(calibration_from_dict(cam, f"{where} {name}"), image)
            frame.cameras = cameras
            if sensors.lidar_at(index):
                frame.lidar = Lidar(read_pcd(self.sensor_dir / str(d["lidar_path"])))


def read_scene_filter(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``scene_filter`` mapping of a navsim ``train_test_split`` yaml (or the file's top level).

    Raises:
        DataFormatError: naming the file when it cannot be read or holds no mapping.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        doc = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except (OSError, OmegaConfBaseException) as e:
        raise DataFormatError(f"{path}: not a readable split file ({e})") from None
    sf = doc.get("scene_filter", doc) if isinstance(doc, dict) else None
    if not isinstance(sf, dict):
        raise DataFormatError(f"{path}: no scene_filter mapping")
    return {str(k): v for k, v in sf.items()}


def filter_from_yaml(path: str | os.PathLike[str]) -> OpenSceneFilter:
    """The scene filter of a navsim ``train_test_split`` yaml (``scene_filter`` keys; others ignored)."""
    sf = read_scene_filter(path)
    try:
        return OpenSceneFilter(
            num_history_frames=int(sf.get("num_history_frames", 4)),
            num_future_frames=int(sf.get("num_future_frames", 10)),
            frame_interval=None if sf.get("frame_interval") is None else int(sf["frame_interval"]),
            has_route=bool(sf.get("has_route", True)),
            tokens=None if sf.get("tokens") is None else tuple(str(t) for t in sf["tokens"]),
            log_names=None if sf.get("log_names") is None else tuple(str(n) for n in sf["log_names"]),
        )
    except (TypeError, ValueError) as e:
        raise DataFormatError(f"{path}: bad scene_filter ({e})") from None


def open_navsim_split(
    navsim_root: str, split: str, maps_root: str | None = None, split_file: str | None = None
) -> OpenSceneLoader:
    """The loader of ``<navsim_root>/navsim_logs/<split>`` (maps from ``<navsim_root>/maps`` by default).

    The scene filter comes from ``split_file``, else ``<navsim_root>/train_test_split/<split>.yaml`` if it
    exists (the exporter writes it), else every window at NAVSIM's defaults.
    """
    root = Path(navsim_root)
    default_file = root / "train_test_split" / f"{split}.yaml"
    file = Path(split_file) if split_file else (default_file if default_file.is_file() else None)
    scene_filter = filter_from_yaml(file) if file is not None else OpenSceneFilter()
    return OpenSceneLoader(
        root / "navsim_logs" / split,
        Path(maps_root) if maps_root else root / "maps",
        root / "sensor_blobs" / split,
        scene_filter,
    )


def navsim_split(
    navsim_root: str, split: str, maps_root: str | None = None, split_file: str | None = None
) -> Callable[[], OpenSceneLoader]:
    """A picklable factory of ``open_navsim_split`` (evaluation opens one reader per worker process)."""
    return partial(open_navsim_split, navsim_root, split, maps_root, split_file)
