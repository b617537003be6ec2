"""Sensors: rig calibrations, BGRA and LiDAR conversion, frame matching with a timeout naming the late sensor."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from irl_vla.data.enums import LidarIndex
from irl_vla.data.sensors import SensorConfig
from sim_bridges.carla.sensors import (
    LIDAR,
    FrameQueue,
    RigSettings,
    SensorRig,
    SensorTimeout,
    bgra_to_rgb,
    lidar_to_cloud,
    mount_transform,
)
from sim_bridges.carla.world import ConnectionConfig, SyncWorld
from tests.sim_bridges.carla.fakes import FakeClient


def test_calibrations_equal_the_embedded_renderers_for_the_same_mounts() -> None:
    from sim_bridges.embedded.render.rig import CameraSpec, RigConfig

    rig = RigSettings()
    embedded = RigConfig(cameras=tuple(CameraSpec(c.name, c.yaw_deg, 10.0, c.x, c.y, c.z) for c in rig.cameras))
    mine = RigSettings(cameras=tuple(type(c)(c.name, c.yaw_deg, 10.0, c.x, c.y, c.z) for c in rig.cameras))
    for spec in embedded.cameras:
        theirs, ours = embedded.calibration(spec), mine.calibration(spec.name)
        np.testing.assert_allclose(ours.sensor2lidar_rotation, theirs.sensor2lidar_rotation, atol=1e-12)
        np.testing.assert_allclose(ours.sensor2lidar_translation, theirs.sensor2lidar_translation)
        np.testing.assert_allclose(ours.intrinsics, theirs.intrinsics)


def test_mount_is_mirrored_into_carla_relative_to_the_actor_origin() -> None:
    pytest.importorskip("carla", reason="the carla client (extra 'carla') is not installed")
    t = mount_transform(1.7, 0.5, 1.6, 60.0, 10.0, rear_to_origin=1.4)
    assert (t.location.x, t.location.y, t.location.z) == pytest.approx((0.3, -0.5, 1.6))
    assert (t.rotation.yaw, t.rotation.pitch) == pytest.approx((-60.0, -10.0))  # left is -yaw, down is -pitch


def test_bgra_becomes_rgb() -> None:
    bgra = np.zeros((2, 3, 4), dtype=np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 255
    rgb = bgra_to_rgb(bgra.tobytes(), 3, 2)
    assert rgb.shape == (2, 3, 3) and rgb[0, 0].tolist() == [30, 20, 10] and rgb.flags["C_CONTIGUOUS"]
    with pytest.raises(ValueError, match="3 x 2 x 4"):
        bgra_to_rgb(b"\x00" * 5, 3, 2)


def test_lidar_points_are_mirrored_moved_to_the_ego_frame_and_ringed() -> None:
    points = np.array([[10.0, 2.0, -1.0, 0.5], [0.0, -3.0, 0.0, 0.25], [1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    cloud = lidar_to_cloud(points.tobytes(), [2, 1], origin=(1.0, 0.0, 1.9))
    assert cloud.shape == (len(LidarIndex), 3)
    np.testing.assert_allclose(cloud[LidarIndex.X], [11.0, 1.0, 2.0])
    np.testing.assert_allclose(cloud[LidarIndex.Y], [-2.0, 3.0, -1.0])  # CARLA's right is the suite's -y
    np.testing.assert_allclose(cloud[LidarIndex.Z], [0.9, 1.9, 2.9], rtol=1e-6)
    assert cloud[LidarIndex.RING].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="channel counts"):
        lidar_to_cloud(points.tobytes(), [1, 1], origin=(0.0, 0.0, 0.0))


def test_frame_queue_matches_frames_and_names_the_late_sensor() -> None:
    q = FrameQueue()
    q.put("cam_f0", 4, "old")  # a late frame from before: dropped
    q.put("cam_f0", 5, "f5")
    q.put("cam_f0", 6, "f6")  # already the next frame: kept for it
    threading.Timer(0.05, lambda: q.put(LIDAR, 5, "l5")).start()  # from another thread, a little later
    assert q.collect(5, ["cam_f0", LIDAR], timeout=2.0) == {"cam_f0": "f5", LIDAR: "l5"}
    with pytest.raises(SensorTimeout, match=r"\['lidar_pc'\] sent no data for frame 6 .*received: \['cam_f0'\]"):
        q.collect(6, ["cam_f0", LIDAR], timeout=0.1)


class _Blueprint:
    def __init__(self, bp_id: str) -> None:
        self.id, self.attributes = bp_id, {}

    def set_attribute(self, key: str, value: str) -> None:
        assert isinstance(value, str)
        self.attributes[key] = value

    def __str__(self) -> str:
        return self.id


class _Library:
    def find(self, bp_id: str) -> _Blueprint:
        return _Blueprint(bp_id)


class _Image:
    def __init__(self, frame: int, w: int, h: int) -> None:
        self.frame, self.raw_data = frame, np.full((h, w, 4), 7, dtype=np.uint8).tobytes()


def test_rig_spawns_what_the_sensor_config_asks_and_reads_a_frame() -> None:
    pytest.importorskip("carla", reason="the carla client (extra 'carla') is not installed")
    client = FakeClient()
    client.world.get_blueprint_library = _Library  # type: ignore[attr-defined]
    rig = RigSettings(width=8, height=6)
    config = SensorConfig(cameras={"cam_f0": True, "cam_l0": False, "cam_r0": [3]}, lidar_pc=False)
    with SyncWorld(client, ConnectionConfig()) as world:
        ego = world.spawn("vehicle.ego", None)
        sensors = SensorRig(world, ego, rig, config, rear_to_origin=1.4, timeout=0.2)
        assert sensors.names == ["cam_f0", "cam_r0"] and len(world.sensors) == 2
        for sensor in world.sensors:
            sensor.callback(_Image(12, 8, 6))
        cameras, lidar = sensors.read(12)
        assert lidar is None and cameras["cam_f0"].image.shape == (6, 8, 3)
        assert cameras["cam_r0"].calibration.intrinsics[0, 2] == 4.0
        with pytest.raises(SensorTimeout, match="cam_f0"):
            sensors.read(13)
    with pytest.raises(ValueError, match="no camera 'cam_b0'"):
        rig.selected(SensorConfig(cameras={"cam_b0": True}))
