"""``SceneSource``: what every reader of scenes offers (embedded splits, NAVSIM data roots).

Every source serves a scene with the sensors an agent asks for (``get_scene(token, sensors)``): a NAVSIM root
reads them from its sensor blobs, an embedded split renders them on load with the renderer its command gave it
(``FrameRenderer``, see ``irl_vla.data.rendered_sensors``). Evaluation and metric caching take a picklable factory
of a source (e.g. ``functools.partial(SceneLoader, split_dir)``), so worker processes open their own reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from irl_vla.data.scene import Frame, Scene
from irl_vla.data.sensors import CameraCalibration, Cameras, Lidar, SensorConfig

if TYPE_CHECKING:
    from irl_vla.data.map.map_api import Map


class SceneSource(Protocol):
    """Scenes by token, with the sensors asked for."""

    @property
    def name(self) -> str:
        """The split's name."""
        ...

    @property
    def tokens(self) -> list[str]:
        """Every scene token, in log order."""
        ...

    def get_scene(self, token: str, sensors: SensorConfig | None = None) -> Scene:
        """The scene with current-frame ``token``, map attached, history sensors per ``sensors`` (none if None)."""
        ...

    def get_previous_scene(self, token: str, sensors: SensorConfig | None = None) -> Scene | None:
        """The window one frame (0.5 s) earlier in the same log, if any (sensors as in ``get_scene``)."""
        ...

    def log_hash(self, token: str) -> str:
        """A fingerprint of the log holding ``token``: it changes when the log does."""
        ...


class FrameRenderer(Protocol):
    """Draws a logged frame's sensors from what the frame and its map hold (the embedded world's renderer).

    Attributes:
        calibrations: the rig's cameras by name.
    """

    calibrations: dict[str, CameraCalibration]

    def render_cameras(self, frame: Frame, map_api: Map, names: list[str] | None = None) -> Cameras:
        """Images of the cameras ``names`` (all of the rig if None)."""
        ...

    def render_lidar(self, frame: Frame, map_api: Map) -> Lidar:
        """The LiDAR point cloud ``(6, N)``."""
        ...


#: A picklable callable that opens a source (in this or a worker process).
SourceFactory = Callable[[], SceneSource]


@dataclass(frozen=True)
class SceneSources:
    """The sources a command reads, chosen once at the command level (``tools/``).

    Attributes:
        split: opens the command's split (an embedded split or a NAVSIM root).
        stage_two: opens the split's re-simulated stage-2 scenes (two-stage embedded splits), if it has them.
    """

    split: SourceFactory
    stage_two: SourceFactory | None = None

