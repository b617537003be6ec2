"""Sensor rig configuration: cameras (pinhole intrinsics and mounting) and the LiDAR.

The LiDAR frame of the embedded world is the ego frame (origin at the rear axle on the ground, x forward,
y left, z up), so camera extrinsics are ``sensor2lidar`` = camera-to-ego transforms. Camera axes are
OpenCV's (x right, y down, z forward), as in NAVSIM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from irl_vla.data.sensors import CameraCalibration


@dataclass(frozen=True)
class CameraSpec:
    """One camera of the rig.

    Attributes:
        name: camera name (NAVSIM's ``cam_f0``, ``cam_l0``, ...).
        yaw_deg: heading of the optical axis, left positive [deg].
        pitch_deg: downward tilt of the optical axis [deg].
        x: mounting position forward of the rear axle [m].
        y: mounting position left of the centre line [m].
        z: mounting height above the ground [m].
    """

    name: str
    yaw_deg: float
    pitch_deg: float = 0.0
    x: float = 1.7
    y: float = 0.0
    z: float = 1.6


@dataclass(frozen=True)
class RigConfig:
    """The camera rig: cameras plus one image size and horizontal field of view for all of them.

    The default front cameras share one mounting point and their yaws step by the field of view, so the
    strip ``cam_l0 | cam_f0 | cam_r0`` covers 180 degrees with neither gap nor overlap at its joins.
    """

    cameras: tuple[CameraSpec, ...] = (
        CameraSpec("cam_l0", 60.0),
        CameraSpec("cam_f0", 0.0),
        CameraSpec("cam_r0", -60.0),
    )
    width: int = 256  # [px]
    height: int = 144  # [px]
    fov_deg: float = 60.0  # horizontal field of view [deg]: the front cameras' yaws step by it, so they meet
    max_range: float = 120.0  # [m] ground and objects farther than this fade into haze

    def __post_init__(self) -> None:
        if self.width < 8 or self.height < 8:
            raise ValueError(f"RigConfig: image size must be at least 8 x 8 px, got {self.width} x {self.height}")
        if not 10.0 <= self.fov_deg <= 170.0:
            raise ValueError(f"RigConfig.fov_deg: expected 10..170 degrees, got {self.fov_deg}")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"RigConfig.cameras: duplicate names {names}")

    def intrinsics(self) -> npt.NDArray[np.float64]:
        """Pinhole matrix ``(3, 3)`` [px] shared by the rig's cameras."""
        f = self.width / 2 / np.tan(np.radians(self.fov_deg) / 2)
        return np.array([[f, 0.0, self.width / 2], [0.0, f, self.height / 2], [0.0, 0.0, 1.0]])

    def calibration(self, spec: CameraSpec) -> CameraCalibration:
        """Calibration of one camera: rotation and translation camera -> LiDAR (= ego) frame, intrinsics."""
        yaw, pitch = np.radians(spec.yaw_deg), np.radians(spec.pitch_deg)
        forward = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), -np.sin(pitch)])
        right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
        down = np.cross(forward, right)
        rotation = np.stack([right, down, forward], axis=1)  # columns: camera axes in the ego frame
        return CameraCalibration(rotation, np.array([spec.x, spec.y, spec.z]), self.intrinsics())

    def calibrations(self) -> dict[str, CameraCalibration]:
        """Calibration of every camera, by name."""
        return {spec.name: self.calibration(spec) for spec in self.cameras}


@dataclass(frozen=True)
class LidarConfig:
    """A spinning LiDAR: ``beams`` elevation channels times ``azimuths`` steps per sweep."""

    beams: int = 32
    azimuths: int = 720
    elevation_deg: tuple[float, float] = (-25.0, 10.0)  # lowest and highest beam [deg]
    origin: tuple[float, float, float] = (1.0, 0.0, 1.9)  # sensor position in the ego frame [m]
    max_range: float = 80.0  # [m]

    def __post_init__(self) -> None:
        if self.beams < 1 or self.azimuths < 1:
            raise ValueError(f"LidarConfig: beams and azimuths must be >= 1, got {self.beams}, {self.azimuths}")

    def directions(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Unit ray directions ``(R, 3)`` in the ego frame and the beam (ring) index of each ray ``(R,)``."""
        el = np.radians(np.linspace(*self.elevation_deg, self.beams))
        az = np.linspace(-np.pi, np.pi, self.azimuths, endpoint=False)
        e, a = np.meshgrid(el, az, indexing="ij")  # (B, A)
        d = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1).reshape(-1, 3)
        ring = np.repeat(np.arange(self.beams), self.azimuths)
        return d, ring
