"""Sensor payloads (cameras, LiDAR) and the ``SensorConfig`` that says which ones an agent loads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import LidarIndex
from irl_vla.data.validation import check_array

#: NAVSIM's eight camera names (lower-case of the OpenScene log names).
NAVSIM_CAMERA_NAMES: tuple[str, ...] = (
    "cam_f0",
    "cam_l0",
    "cam_l1",
    "cam_l2",
    "cam_r0",
    "cam_r1",
    "cam_r2",
    "cam_b0",
)


@dataclass
class CameraCalibration:
    """Pinhole calibration of one camera.

    Attributes:
        sensor2lidar_rotation: rotation from camera to LiDAR frame ``(3, 3)``; camera axes are OpenCV's
            (x right, y down, z forward).
        sensor2lidar_translation: camera origin in the LiDAR frame [m] ``(3,)``.
        intrinsics: pinhole matrix [px] ``(3, 3)``.
        distortion: distortion coefficients ``(5,)`` (zero for the embedded renderer).
    """

    sensor2lidar_rotation: npt.NDArray[np.float64]
    sensor2lidar_translation: npt.NDArray[np.float64]
    intrinsics: npt.NDArray[np.float64]
    distortion: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(5))

    def __post_init__(self) -> None:
        check_array(self.sensor2lidar_rotation, "CameraCalibration.sensor2lidar_rotation", (3, 3))
        check_array(self.sensor2lidar_translation, "CameraCalibration.sensor2lidar_translation", (3,))
        check_array(self.intrinsics, "CameraCalibration.intrinsics", (3, 3))
        check_array(self.distortion, "CameraCalibration.distortion", (None,))


@dataclass
class Camera:
    """One camera image ``(H, W, 3)`` uint8 with its calibration; ``image=None`` means not loaded."""

    calibration: CameraCalibration
    image: npt.NDArray[np.uint8] | None = None

    def __post_init__(self) -> None:
        if self.image is not None:
            check_array(self.image, "Camera.image", (None, None, 3), dtype_kind="u")


#: Cameras of one frame, keyed by camera name (``cam_f0``, ...).
Cameras = dict[str, Camera]


@dataclass
class Lidar:
    """A merged point cloud ``(6, N)`` with rows named by ``LidarIndex``, in the LiDAR frame."""

    lidar_pc: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        check_array(self.lidar_pc, "Lidar.lidar_pc", (len(LidarIndex), None))


SensorSelection = bool | list[int]


@dataclass
class SensorConfig:
    """Which sensors to load for which history frames (0 = oldest, ``num_history - 1`` = current).

    Each entry is ``True`` (every history frame), ``False`` (none) or a list of history indices.
    """

    cameras: dict[str, SensorSelection] = field(default_factory=dict)
    lidar_pc: SensorSelection = False

    def __post_init__(self) -> None:
        for name, sel in [*self.cameras.items(), ("lidar_pc", self.lidar_pc)]:
            if isinstance(sel, bool):
                continue
            if not isinstance(sel, list) or not all(isinstance(i, int) and i >= 0 for i in sel):
                raise ValueError(f"SensorConfig.{name}: expected a bool or a list of history indices, got {sel!r}")

    @classmethod
    def build_all_sensors(
        cls, camera_names: tuple[str, ...] = NAVSIM_CAMERA_NAMES, *, lidar: bool = True
    ) -> SensorConfig:
        """All cameras (and LiDAR) at every history frame."""
        return cls(cameras={name: True for name in camera_names}, lidar_pc=lidar)

    @classmethod
    def build_no_sensors(cls) -> SensorConfig:
        """No sensors at all (blind agents)."""
        return cls()

    @staticmethod
    def _selected(sel: SensorSelection, frame_index: int) -> bool:
        return sel if isinstance(sel, bool) else frame_index in sel

    def cameras_at(self, frame_index: int) -> list[str]:
        """Names of the cameras to load at history index ``frame_index``."""
        return [name for name, sel in self.cameras.items() if self._selected(sel, frame_index)]

    def lidar_at(self, frame_index: int) -> bool:
        """Whether to load the LiDAR at history index ``frame_index``."""
        return self._selected(self.lidar_pc, frame_index)

    @property
    def needs_any(self) -> bool:
        """Whether any sensor is requested at any frame."""
        return bool(self.lidar_pc) or any(bool(sel) for sel in self.cameras.values())
