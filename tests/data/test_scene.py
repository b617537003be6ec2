"""Scene model: every validation path raises ValueError naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.enums import DrivingCommand
from irl_vla.data.scene import Annotations, EgoStatus, Frame, Scene, SceneMetadata, one_hot_command
from irl_vla.data.scene_filter import SceneFilter
from irl_vla.data.sensors import Camera, CameraCalibration, Lidar, SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory, TrajectorySampling
from tests.fixtures import build_straight_scene


def test_sampling_derives_the_missing_field() -> None:
    s = TrajectorySampling(time_horizon=4, interval_length=0.5)
    assert s.num_poses == 8
    assert TrajectorySampling(num_poses=40, interval_length=0.1).time_horizon == pytest.approx(4.0)
    np.testing.assert_allclose(DEFAULT_SAMPLING.times, np.arange(1, 9) * 0.5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_poses": 8}, "at least two"),
        ({"num_poses": 0, "interval_length": 0.5}, "num_poses"),
        ({"num_poses": 8, "interval_length": -0.5}, "interval_length"),
        ({"num_poses": 8, "time_horizon": 4.0, "interval_length": 0.1}, "time_horizon"),
    ],
)
def test_sampling_rejects_inconsistent_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrajectorySampling(**kwargs)


def test_trajectory_shape_and_finiteness() -> None:
    Trajectory(np.zeros((8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Trajectory.poses: expected shape \(8, 3\), got \(7, 3\)"):
        Trajectory(np.zeros((7, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Trajectory.poses: expected shape \(8, 3\)"):
        Trajectory(np.zeros((8, 2), dtype=np.float32))
    bad = np.zeros((8, 3), dtype=np.float32)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"Trajectory.poses: non-finite value at index \(3, 1\)"):
        Trajectory(bad)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        Trajectory(bad)
    with pytest.raises(ValueError, match="expected a numpy array"):
        Trajectory([[0, 0, 0]] * 8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected shape \(40, 3\)"):
        Trajectory(np.zeros((8, 3)), TrajectorySampling(num_poses=40, interval_length=0.1))


def _status(**over) -> EgoStatus:
    kw = dict(
        ego_pose=np.zeros(3),
        ego_velocity=np.zeros(2),
        ego_acceleration=np.zeros(2),
        driving_command=one_hot_command(DrivingCommand.LEFT),
    )
    kw.update(over)
    return EgoStatus(**kw)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("ego_pose", np.zeros(2), r"EgoStatus.ego_pose: expected shape \(3,\)"),
        ("ego_pose", np.array([0.0, np.nan, 0.0]), "EgoStatus.ego_pose: non-finite"),
        ("ego_velocity", np.zeros(3), "EgoStatus.ego_velocity"),
        ("ego_acceleration", np.array([np.inf, 0.0]), "EgoStatus.ego_acceleration: non-finite"),
        ("driving_command", np.array([1, 1, 0, 0]), "EgoStatus.driving_command: expected one-hot"),
        ("driving_command", np.zeros(4, dtype=np.int64), "one-hot"),
        ("driving_command", np.array([2, -1, 0, 0]), "one-hot"),  # sums to 1, not 0/1
        ("driving_command", np.array([0.0, 1.0, 0.0, 0.0]), "dtype kind"),
    ],
)
def test_ego_status_validation(field: str, value: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _status(**{field: value})


def test_ego_status_command() -> None:
    assert _status().command is DrivingCommand.LEFT


def test_annotations_validation() -> None:
    ok = dict(
        boxes=np.zeros((2, 7)),
        names=["vehicle", "pedestrian"],
        velocity_3d=np.zeros((2, 3)),
        instance_tokens=["a", "b"],
        track_tokens=["a", "b"],
    )
    assert len(Annotations(**ok)) == 2
    for field, value, match in [
        ("boxes", np.zeros((2, 6)), r"Annotations.boxes: expected shape \(\*, 7\)"),
        ("velocity_3d", np.zeros((3, 3)), r"Annotations.velocity_3d: expected shape \(2, 3\)"),
        ("names", ["vehicle"], "Annotations.names: expected 2 entries, got 1"),
        ("track_tokens", ["a"], "Annotations.track_tokens: expected 2 entries"),
        ("instance_tokens", ["a", "b", "c"], "Annotations.instance_tokens"),
        ("names", ["vehicle", "unicorn"], r"Annotations.names: unknown class names \['unicorn'\]"),
    ]:
        with pytest.raises(ValueError, match=match):
            Annotations(**{**ok, field: value})
    boxes = np.zeros((2, 7))
    boxes[1, 4] = np.nan
    with pytest.raises(ValueError, match="Annotations.boxes: non-finite value at index"):
        Annotations(**{**ok, "boxes": boxes})


def test_sensor_validation() -> None:
    calib = CameraCalibration(np.eye(3), np.zeros(3), np.eye(3))
    Camera(calib, np.zeros((4, 6, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="Camera.image: expected dtype kind"):
        Camera(calib, np.zeros((4, 6, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="Camera.image: expected shape"):
        Camera(calib, np.zeros((4, 6), dtype=np.uint8))
    with pytest.raises(ValueError, match="CameraCalibration.intrinsics"):
        CameraCalibration(np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match=r"Lidar.lidar_pc: expected shape \(6, \*\)"):
        Lidar(np.zeros((4, 10), dtype=np.float32))
    with pytest.raises(ValueError, match="SensorConfig.cam_f0"):
        SensorConfig(cameras={"cam_f0": [1, -2]})
    cfg = SensorConfig(cameras={"cam_f0": [3], "cam_l0": True}, lidar_pc=[3])
    assert cfg.cameras_at(0) == ["cam_l0"] and cfg.cameras_at(3) == ["cam_f0", "cam_l0"]
    assert cfg.lidar_at(3) and not cfg.lidar_at(2)
    assert not SensorConfig.build_no_sensors().needs_any and SensorConfig.build_all_sensors().needs_any


def test_frame_and_scene_validation() -> None:
    scene = build_straight_scene()
    frames = scene.frames
    with pytest.raises(ValueError, match="global frame"):
        Frame("t", 0, [], [], Annotations.empty(), _status())
    with pytest.raises(ValueError, match="Frame.token"):
        Frame("", 0, [], [], Annotations.empty(), frames[0].ego_status)
    meta = scene.scene_metadata
    with pytest.raises(ValueError, match="Scene.frames: expected 14 entries, got 13"):
        Scene(meta, frames[:-1])
    with pytest.raises(ValueError, match="timestamps must increase"):
        Scene(meta, [frames[1], frames[0], *frames[2:]])
    bad_meta = SceneMetadata(meta.log_name, meta.scene_token, meta.map_name, frames[0].token, 4, 10)
    with pytest.raises(ValueError, match="initial_token"):
        Scene(bad_meta, frames)
    with pytest.raises(ValueError, match="num_history_frames"):
        SceneMetadata("l", "s", "m", "t", 0, 10)


def test_scene_trajectories_and_agent_input() -> None:
    scene = build_straight_scene(speed=10.0)
    fut = scene.get_future_trajectory(8)
    np.testing.assert_allclose(fut.poses[:, 0], 5.0 * np.arange(1, 9), atol=1e-5)
    np.testing.assert_allclose(fut.poses[:, 1:], 0.0, atol=1e-5)
    hist = scene.get_history_trajectory()
    np.testing.assert_allclose(hist.poses[:, 0], [-15, -10, -5, 0], atol=1e-5)
    ai = scene.get_agent_input()
    assert len(ai.ego_statuses) == 4 and not ai.current.in_global_frame
    np.testing.assert_allclose(ai.current.ego_pose, 0.0, atol=1e-9)
    with pytest.raises(ValueError, match="11 frames requested"):
        scene.get_future_trajectory(11)


def test_scene_filter() -> None:
    f = SceneFilter(num_history_frames=4, num_future_frames=10)
    assert list(f.window_starts(30)) == [0, 14]
    assert list(SceneFilter(frame_interval=1, num_future_frames=2).window_starts(8)) == [0, 1, 2]
    assert f.keeps("log", "tok") and not SceneFilter(tokens=["x"]).keeps("log", "tok")
    with pytest.raises(ValueError, match="SceneFilter.frame_interval"):
        SceneFilter(frame_interval=0)
