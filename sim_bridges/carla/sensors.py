"""Sensors on the CARLA ego that match the agent's ``SensorConfig``, frame-matched, converted to the suite's types.

The rig (``RigSettings``, config ``carla.rig``) is given in the suite's ego frame (rear axle on the ground, x
forward, y left, z up; camera yaw left positive, pitch down positive) with the same defaults as the embedded
world's renderer: ``cam_l0 | cam_f0 | cam_r0`` at 256 x 144 px, 60 deg each, and a 32-channel LiDAR. Only the
cameras the agent's ``SensorConfig`` names (and the LiDAR if it asks) are spawned. The suite's LiDAR frame is the
ego frame, so camera extrinsics (``sensor2lidar``) are camera-to-ego transforms, as in the embedded world.

Callbacks run on LibCarla's threads: they only copy the payload and put ``(name, frame, payload)`` on a
``FrameQueue``; the main thread waits, after each tick, for every sensor's data of exactly that frame and raises
``SensorTimeout`` naming the sensors that are late.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import LidarIndex
from irl_vla.data.sensors import Camera, CameraCalibration, Lidar, SensorConfig

LIDAR = "lidar_pc"


class SensorTimeout(RuntimeError):
    """A sensor sent no data for the frame the world ticked to."""


@dataclass(frozen=True)
class CameraMount:
    """One camera: name, optical-axis yaw (left positive) and pitch (down positive) [deg], position [m] (ego)."""

    name: str
    yaw_deg: float
    pitch_deg: float = 0.0
    x: float = 1.7
    y: float = 0.0
    z: float = 1.6


@dataclass(frozen=True)
class LidarSettings:
    """The ray-cast LiDAR: channels, range [m], elevation limits [deg], position (ego frame) [m].

    ``points_per_step`` points are cast per simulation step; the rotation frequency is the simulation rate, so
    every step is one full sweep (CARLA's rule for a 360 deg cloud per tick).
    """

    channels: int = 32
    range: float = 80.0
    upper_fov: float = 10.0
    lower_fov: float = -25.0
    points_per_step: int = 23040  # 32 x 720, the embedded LiDAR's rays
    origin: tuple[float, float, float] = (1.0, 0.0, 1.9)


@dataclass(frozen=True)
class RigSettings:
    """Cameras (one image size and field of view) and the LiDAR."""

    cameras: tuple[CameraMount, ...] = (
        CameraMount("cam_l0", 60.0),
        CameraMount("cam_f0", 0.0),
        CameraMount("cam_r0", -60.0),
    )
    width: int = 256
    height: int = 144
    fov_deg: float = 60.0
    lidar: LidarSettings = field(default_factory=LidarSettings)

    def __post_init__(self) -> None:
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"RigSettings.cameras: duplicate names {names}")
        if not 10.0 <= self.fov_deg <= 170.0:
            raise ValueError(f"RigSettings.fov_deg: expected 10..170 degrees, got {self.fov_deg}")

    def mount(self, name: str) -> CameraMount:
        """The camera called ``name``.

        Raises:
            ValueError: naming the camera and the rig's cameras when there is none of that name.
        """
        for c in self.cameras:
            if c.name == name:
                return c
        raise ValueError(f"the CARLA rig has no camera {name!r} (has {[c.name for c in self.cameras]}); set carla.rig")

    def intrinsics(self) -> npt.NDArray[np.float64]:
        """Pinhole matrix ``(3, 3)`` [px] of CARLA's camera: f = W / (2 tan(fov / 2)), principal point centred."""
        f = self.width / (2.0 * np.tan(np.radians(self.fov_deg) / 2.0))
        return np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0.0, 0.0, 1.0]])

    def calibration(self, name: str) -> CameraCalibration:
        """Camera ``name``'s calibration: OpenCV camera axes (x right, y down, z forward) in the ego frame."""
        m = self.mount(name)
        yaw, pitch = np.radians(m.yaw_deg), np.radians(m.pitch_deg)
        rz = np.array([[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
        ry = np.array([[np.cos(pitch), 0.0, np.sin(pitch)], [0.0, 1.0, 0.0], [-np.sin(pitch), 0.0, np.cos(pitch)]])
        # OpenCV axes in a forward-left-up body frame: x_cv = -y, y_cv = -z, z_cv = x.
        cv_in_body = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
        rotation = rz @ ry @ cv_in_body
        return CameraCalibration(rotation, np.array([m.x, m.y, m.z]), self.intrinsics())

    def selected(self, config: SensorConfig) -> tuple[list[str], bool]:
        """The cameras and whether the LiDAR that ``config`` asks for at any history frame."""
        cameras = [name for name, sel in config.cameras.items() if sel]
        for name in cameras:
            self.mount(name)
        return cameras, bool(config.lidar_pc)


def mount_transform(x: float, y: float, z: float, yaw_deg: float, pitch_deg: float, rear_to_origin: float) -> Any:
    """A ``carla.Transform`` of a sensor relative to the ego actor's origin.

    Args:
        x: position forward of the rear axle (suite ego frame) [m].
        y: position left of the centre line [m].
        z: height above the ground [m].
        yaw_deg: left-positive yaw [deg].
        pitch_deg: down-positive pitch [deg].
        rear_to_origin: distance from the rear axle forward to the actor's origin [m].
    """
    import carla

    return carla.Transform(
        carla.Location(x=float(x - rear_to_origin), y=float(-y), z=float(z)),
        carla.Rotation(pitch=float(-pitch_deg), yaw=float(-yaw_deg), roll=0.0),
    )


def camera_attributes(rig: RigSettings) -> dict[str, str]:
    """Blueprint attributes of the rig's RGB cameras (CARLA takes strings)."""
    return {
        "image_size_x": str(rig.width),
        "image_size_y": str(rig.height),
        "fov": str(rig.fov_deg),
        "sensor_tick": "0.0",
    }


def lidar_attributes(lidar: LidarSettings, fixed_delta_seconds: float) -> dict[str, str]:
    """Blueprint attributes of the ray-cast LiDAR: one full sweep per simulation step."""
    rate = 1.0 / fixed_delta_seconds
    return {
        "channels": str(lidar.channels),
        "range": str(lidar.range),
        "upper_fov": str(lidar.upper_fov),
        "lower_fov": str(lidar.lower_fov),
        "rotation_frequency": str(rate),
        "points_per_second": str(int(lidar.points_per_step * rate)),
        "sensor_tick": "0.0",
    }


def bgra_to_rgb(raw: bytes | bytearray | memoryview, width: int, height: int) -> npt.NDArray[np.uint8]:
    """CARLA camera ``raw_data`` (BGRA, 8 bit) -> an RGB image ``(H, W, 3)`` uint8 (a copy)."""
    data = np.frombuffer(raw, dtype=np.uint8)
    if data.size != width * height * 4:
        raise ValueError(f"camera image: expected {width} x {height} x 4 bytes, got {data.size}")
    return np.ascontiguousarray(data.reshape(height, width, 4)[:, :, 2::-1])


def lidar_to_cloud(
    raw: bytes | bytearray | memoryview, channel_counts: list[int], origin: tuple[float, float, float]
) -> npt.NDArray[np.float32]:
    """CARLA LiDAR ``raw_data`` -> the suite's ``(len(LidarIndex), N)`` cloud in the ego frame.

    The raw points are float32 (x, y, z, intensity) in the sensor's left-handed frame; y is mirrored, the mount
    added, and the ring is the channel index.
    """
    points = np.frombuffer(raw, dtype=np.float32).reshape(-1, 4)
    if sum(channel_counts) != len(points):
        raise ValueError(f"LiDAR: channel counts sum to {sum(channel_counts)}, the data holds {len(points)} points")
    cloud = np.zeros((len(LidarIndex), len(points)), dtype=np.float32)
    cloud[LidarIndex.X] = points[:, 0] + origin[0]
    cloud[LidarIndex.Y] = -points[:, 1] + origin[1]
    cloud[LidarIndex.Z] = points[:, 2] + origin[2]
    cloud[LidarIndex.INTENSITY] = points[:, 3]
    cloud[LidarIndex.RING] = np.repeat(np.arange(len(channel_counts)), channel_counts)
    return cloud


class FrameQueue:
    """What the sensor callbacks deliver, matched to the world's frame on the main thread."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        self._early: dict[tuple[str, int], Any] = {}

    def put(self, name: str, frame: int, payload: Any) -> None:
        """From a callback thread: one sensor's data of one frame."""
        self._queue.put((name, int(frame), payload))

    def collect(self, frame: int, names: list[str], timeout: float) -> dict[str, Any]:
        """Every sensor's payload of ``frame``: older data is dropped, newer kept for its own frame.

        Raises:
            SensorTimeout: naming the sensors with nothing for ``frame`` after ``timeout`` seconds.
        """
        got: dict[str, Any] = {}
        for key in [k for k in self._early if k[1] <= frame]:
            payload = self._early.pop(key)
            if key[1] == frame:
                got[key[0]] = payload
        deadline = time.monotonic() + timeout
        while any(n not in got for n in names):
            left = deadline - time.monotonic()
            try:
                name, data_frame, payload = (
                    self._queue.get(timeout=max(left, 0.0)) if left > 0 else self._queue.get_nowait()
                )
            except queue.Empty:
                late = [n for n in names if n not in got]
                raise SensorTimeout(
                    f"sensor(s) {late} sent no data for frame {frame} within {timeout:g} s "
                    f"(received: {sorted(got) or 'nothing'})"
                ) from None
            if data_frame == frame:
                got[name] = payload
            elif data_frame > frame:
                self._early[(name, data_frame)] = payload
        return got


def to_camera(image: npt.NDArray[np.uint8], calibration: CameraCalibration) -> Camera:
    """A suite ``Camera`` of an RGB image and its calibration."""
    return Camera(calibration=calibration, image=image)


def to_lidar(cloud: npt.NDArray[np.float32]) -> Lidar:
    """A suite ``Lidar`` of a converted cloud."""
    return Lidar(lidar_pc=cloud)


class SensorRig:
    """The spawned sensors of one episode.

    Args:
        world: the ``SyncWorld`` that spawns (and later destroys) them.
        ego: the ego actor they are attached to.
        rig: the rig settings.
        sensor_config: what the agent (and the viewers) read.
        rear_to_origin: distance from the ego's rear axle forward to its actor origin [m].
        timeout: longest wait for one frame's data [s].
    """

    def __init__(
        self,
        world: Any,
        ego: Any,
        rig: RigSettings,
        sensor_config: SensorConfig,
        rear_to_origin: float,
        timeout: float = 10.0,
    ) -> None:
        self.rig, self.timeout = rig, timeout
        self.queue = FrameQueue()
        self.cameras, self.lidar = rig.selected(sensor_config)
        self.calibrations = {name: rig.calibration(name) for name in self.cameras}
        library = world.world.get_blueprint_library()
        for name in self.cameras:
            m = rig.mount(name)
            bp = library.find("sensor.camera.rgb")
            for key, value in camera_attributes(rig).items():
                bp.set_attribute(key, value)
            sensor = world.spawn(
                bp, mount_transform(m.x, m.y, m.z, m.yaw_deg, m.pitch_deg, rear_to_origin), attach_to=ego, sensor=True
            )
            sensor.listen(self._camera_callback(name))
        if self.lidar:
            bp = library.find("sensor.lidar.ray_cast")
            for key, value in lidar_attributes(rig.lidar, world.config.fixed_delta_seconds).items():
                bp.set_attribute(key, value)
            x, y, z = rig.lidar.origin
            sensor = world.spawn(bp, mount_transform(x, y, z, 0.0, 0.0, rear_to_origin), attach_to=ego, sensor=True)
            sensor.listen(self._lidar_callback())

    @property
    def names(self) -> list[str]:
        """Every sensor whose data each frame waits for."""
        return [*self.cameras, *([LIDAR] if self.lidar else [])]

    def _camera_callback(self, name: str) -> Any:
        q, width, height = self.queue, self.rig.width, self.rig.height

        def on_image(image: Any) -> None:
            q.put(name, image.frame, bgra_to_rgb(bytes(image.raw_data), width, height))

        return on_image

    def _lidar_callback(self) -> Any:
        q, origin = self.queue, self.rig.lidar.origin

        def on_cloud(data: Any) -> None:
            counts = [data.get_point_count(c) for c in range(data.channels)]
            q.put(LIDAR, data.frame, lidar_to_cloud(bytes(data.raw_data), counts, origin))

        return on_cloud

    def read(self, frame: int) -> tuple[dict[str, Camera], Lidar | None]:
        """The cameras and LiDAR of ``frame`` (waits for them; ``SensorTimeout`` names the late ones)."""
        data = self.queue.collect(frame, self.names, self.timeout)
        cameras = {name: to_camera(data[name], self.calibrations[name]) for name in self.cameras}
        return cameras, (to_lidar(data[LIDAR]) if self.lidar else None)
