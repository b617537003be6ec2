"""The scene sources of a command, chosen once here (the only place that knows both worlds).

An embedded split is read by ``irl_vla``'s ``SceneLoader`` with sensors drawn by the embedded world's renderer;
a NAVSIM data root by the NAVSIM bridge's reader, with sensors from its blobs. ``irl_vla`` never imports a
bridge and no bridge imports another, so the choice (and the renderer) is passed in from here.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

from irl_vla.common.config_source import SceneSourceConfig
from irl_vla.data.rendered_sensors import RenderedSensors
from irl_vla.data.source import SceneSources
from irl_vla.data.split import embedded_sources
from sim_bridges.embedded import render
from sim_bridges.embedded.render.rig import CameraSpec, LidarConfig, RigConfig
from sim_bridges.embedded.render.sensors import SensorRenderer
from sim_bridges.navsim.openscene import navsim_split

#: NAVSIM's cameras beyond the default rig's front three (cam_l0, cam_f0, cam_r0), mounted around the car.
OTHER_NAVSIM_CAMERAS: tuple[CameraSpec, ...] = (
    CameraSpec("cam_l1", 110.0, x=1.0, y=0.9),
    CameraSpec("cam_l2", 155.0, x=0.0, y=0.9),
    CameraSpec("cam_r1", -110.0, x=1.0, y=-0.9),
    CameraSpec("cam_r2", -155.0, x=0.0, y=-0.9),
    CameraSpec("cam_b0", 180.0, x=-1.0),
)


def navsim_rig(image_width: int | None = None) -> RigConfig:
    """The default rig with all eight NAVSIM cameras (its front three unchanged), ``image_width`` wide if given."""
    base = RigConfig()
    names = {c.name for c in base.cameras}
    cameras = base.cameras + tuple(c for c in OTHER_NAVSIM_CAMERAS if c.name not in names)
    if image_width is None:
        return dataclasses.replace(base, cameras=cameras)
    height = max(8, round(image_width * base.height / base.width))
    return dataclasses.replace(base, cameras=cameras, width=image_width, height=height)


def navsim_renderer(image_width: int | None = None) -> Callable[[], SensorRenderer]:
    """A picklable factory of the embedded renderer on ``navsim_rig`` (what ``navsim-export`` draws with)."""
    return partial(SensorRenderer, navsim_rig(image_width), LidarConfig())


def renderer_fingerprint(rig: RigConfig, lidar: LidarConfig) -> str:
    """Names what a renderer draws: its rig, its LiDAR and the renderer's code (any change renders afresh)."""
    digest = hashlib.sha256(repr((rig, lidar)).encode())
    for path in sorted(Path(render.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def embedded_renderer(
    sensor_cache: str | None = None, rig: RigConfig | None = None, lidar: LidarConfig | None = None
) -> RenderedSensors:
    """The embedded world's sensor renderer (``navsim_rig`` and the default LiDAR), caching under ``sensor_cache``.

    Every NAVSIM camera an agent may ask for is on the rig; only those asked for are drawn.
    """
    rig, lidar = rig or navsim_rig(), lidar or LidarConfig()
    return RenderedSensors(partial(SensorRenderer, rig, lidar), sensor_cache, renderer_fingerprint(rig, lidar))


def scene_sources(
    source: str,
    data_root: str,
    split: str,
    navsim_root: str | None = None,
    maps_root: str | None = None,
    split_file: str | None = None,
    sensor_cache: str | None = None,
) -> SceneSources:
    """The sources a command config asks for: the embedded split (rendered) or a NAVSIM root's split.

    Raises:
        ValueError: for ``source=navsim`` without ``navsim_root``, or an unknown source.
    """
    if source == "embedded":
        return embedded_sources(Path(data_root) / split, embedded_renderer(sensor_cache))
    if source == "navsim":
        if not navsim_root:
            raise ValueError("source=navsim needs navsim_root")
        return SceneSources(navsim_split(navsim_root, split, maps_root, split_file))
    raise ValueError(f"unknown scene source {source!r}: embedded or navsim")


def config_sources(config: SceneSourceConfig, split: str | None = None, render_cache: bool = True) -> SceneSources:
    """``scene_sources`` of a command's settings (every command that reads a split: ``SceneSourceConfig``).

    Args:
        config: the command's settings.
        split: another split of the same source (a training run's ``val_split``); ``None``: ``config.split``.
        render_cache: keep rendered sensors in ``config.sensor_cache`` (training reads its own split through the
            feature cache, so only its validation split's sensors are kept).
    """
    return scene_sources(
        config.source,
        config.data_root,
        config.split if split is None else split,
        config.navsim_root,
        config.maps_root,
        config.split_file,
        config.sensor_cache if render_cache else None,
    )
