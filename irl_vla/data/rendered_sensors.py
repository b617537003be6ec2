"""Sensors rendered when a scene is loaded, with an optional on-disk cache.

An embedded split stores no images: its scenes' cameras and LiDAR are drawn from the frame (boxes, light states)
and the map by a ``FrameRenderer`` that the command chooses (``tools/``; ``irl_vla`` never imports the embedded
world). ``RenderedSensors`` fills exactly the history frames and sensors a ``SensorConfig`` asks for.

The cache (``cache_dir``) keeps each rendered camera as a lossless PNG and each LiDAR cloud as ``.npy`` under
``<cache_dir>/<fingerprint>/<log hash>/<frame token>/``: the fingerprint names the renderer (rig, LiDAR
settings, code), the log hash the log's content, so a changed renderer or a regenerated log renders afresh. A
cached file that cannot be read is rendered again (with a warning naming it) and replaced.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from irl_vla.common.io import atomic_open
from irl_vla.data.enums import LidarIndex
from irl_vla.data.scene import Frame, Scene
from irl_vla.data.sensors import Camera, Lidar, SensorConfig
from irl_vla.data.source import FrameRenderer

LIDAR_FILE = "lidar.npy"


class RenderedSensors:
    """Attaches rendered sensors to scenes (picklable: the renderer is built on first use in each process).

    Args:
        renderer: builds the renderer (a class or a picklable factory).
        cache_dir: where rendered sensors are kept between runs (``None``: render every time).
        fingerprint: names the renderer's output in the cache (required with ``cache_dir``).
    """

    def __init__(
        self,
        renderer: Callable[[], FrameRenderer],
        cache_dir: str | os.PathLike[str] | None = None,
        fingerprint: str = "",
    ) -> None:
        if cache_dir is not None and not fingerprint:
            raise ValueError("RenderedSensors: a sensor cache needs the renderer's fingerprint")
        self.make_renderer = renderer
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.fingerprint = fingerprint
        self._renderer: FrameRenderer | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_renderer": None}  # workers build their own

    @property
    def renderer(self) -> FrameRenderer:
        """The renderer (built once)."""
        if self._renderer is None:
            self._renderer = self.make_renderer()
        return self._renderer

    def attach(self, scene: Scene, sensors: SensorConfig, log_hash: str = "") -> Scene:
        """Fill the history frames' cameras and LiDAR that ``sensors`` asks for (in place); returns the scene.

        Raises:
            ValueError: when the scene has no map, or a camera is not in the renderer's rig (both named).
        """
        if not sensors.needs_any:
            return scene
        if scene.map_api is None:
            raise ValueError(f"scene {scene.token}: rendering sensors needs the scene's map")
        for index, frame in enumerate(scene.frames[: scene.current_index + 1]):
            names = sensors.cameras_at(index)
            folder = self._folder(log_hash, frame)
            if names:
                frame.cameras = self._cameras(frame, scene, names, folder)
            if sensors.lidar_at(index):
                frame.lidar = self._lidar(frame, scene, folder)
        return scene

    def _folder(self, log_hash: str, frame: Frame) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / self.fingerprint / (log_hash[:16] or "unhashed") / frame.token

    def _cameras(self, frame: Frame, scene: Scene, names: list[str], folder: Path | None) -> dict[str, Camera]:
        rig = self.renderer.calibrations
        unknown = [n for n in names if n not in rig]
        if unknown:
            raise ValueError(f"scene {scene.token}: cameras {unknown} are not in the renderer's rig {sorted(rig)}")
        out: dict[str, Camera] = {}
        missing = []
        for name in names:
            image = None if folder is None else _read_png(folder / f"{name}.png")
            if image is None:
                missing.append(name)
            else:
                out[name] = Camera(rig[name], image)
        if missing:
            assert scene.map_api is not None
            rendered = self.renderer.render_cameras(frame, scene.map_api, missing)
            for name, camera in rendered.items():
                out[name] = camera
                if folder is not None and camera.image is not None:
                    buffer = io.BytesIO()
                    Image.fromarray(camera.image).save(buffer, format="PNG")
                    with atomic_open(folder / f"{name}.png", "wb") as f:
                        f.write(buffer.getvalue())
        return {name: out[name] for name in names}

    def _lidar(self, frame: Frame, scene: Scene, folder: Path | None) -> Lidar:
        if folder is not None:
            cloud = _read_npy(folder / LIDAR_FILE)
            if cloud is not None:
                return Lidar(cloud)
        assert scene.map_api is not None
        lidar = self.renderer.render_lidar(frame, scene.map_api)
        if folder is not None:
            with atomic_open(folder / LIDAR_FILE, "wb") as f:
                np.save(f, lidar.lidar_pc, allow_pickle=False)
        return lidar


def _stale(path: Path, error: Exception) -> None:
    message = f"{path}: unreadable cached sensor ({type(error).__name__}: {error}); rendering it again"
    warnings.warn(message, stacklevel=3)


def _read_png(path: Path) -> np.ndarray | None:
    """A cached RGB image, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with Image.open(path) as image:
            if image.mode != "RGB":
                raise ValueError(f"mode {image.mode}, expected RGB")
            return np.array(image)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        _stale(path, e)
        return None


def _read_npy(path: Path) -> np.ndarray | None:
    """A cached LiDAR cloud ``(6, N)``, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        cloud = np.load(path, allow_pickle=False)
        if cloud.ndim != 2 or cloud.shape[0] != len(LidarIndex):
            raise ValueError(f"shape {cloud.shape}, expected ({len(LidarIndex)}, N)")
        return cloud
    except (OSError, ValueError, EOFError) as e:
        _stale(path, e)
        return None
