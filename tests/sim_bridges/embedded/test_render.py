"""Rendered sensors: lights project where they are, objects ahead are centred, LiDAR ranges are true."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.enums import AgentClass, BoundingBoxIndex, LidarIndex
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.scene import Annotations, EgoStatus, Frame
from irl_vla.data.vehicle import PACIFICA
from sim_bridges.embedded.render.rig import CameraSpec, LidarConfig, RigConfig
from sim_bridges.embedded.render.sensors import LIGHT_HEIGHT, SensorRenderer, signal_heads
from sim_bridges.embedded.road_network import build_corridor, build_intersection


def frame_at(
    pose: np.ndarray, boxes: list[tuple[float, float, str]] = (), lights: list[tuple[str, bool]] = ()
) -> Frame:
    rows = []
    for x, y, _ in boxes:
        row = np.zeros(7)
        row[[BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.Z]] = x, y, 0.8
        row[[BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]] = 4.6, 1.9, 1.6
        rows.append(row)
    names = [n for _, _, n in boxes]
    ann = (
        Annotations(
            np.array(rows),
            names,
            np.zeros((len(rows), 3)),
            [f"t{i}" for i in range(len(rows))],
            [f"t{i}" for i in range(len(rows))],
        )
        if rows
        else Annotations.empty()
    )
    status = EgoStatus(pose, np.zeros(2), np.zeros(2), np.array([0, 1, 0, 0]), in_global_frame=True)
    return Frame("f0", 0, [], list(lights), ann, status)


def test_red_and_green_lights_project_their_colour_where_they_are() -> None:
    net = build_intersection()
    west_lane = net.map.get_lane(net.arms["west"].in_lanes[0])
    x, y, h = west_lane.centerline[-1]
    ego = np.array([x - 30.0 * np.cos(h), y - 30.0 * np.sin(h), h])  # 30 m before the stop line, facing it
    renderer = SensorRenderer()
    heads = [hd for hd in signal_heads(net.map) if np.hypot(*(hd.pose[:2] - [x, y])) < 1.0]
    assert heads
    for red, channel in ((True, 0), (False, 1)):
        frame = frame_at(ego, lights=[(hd.connector_id, red) for hd in heads])
        image = renderer.render_cameras(frame, net.map, ["cam_f0"])["cam_f0"].image
        rel = absolute_to_relative(heads[0].pose, ego)
        centre = np.array([[rel[0] + 0.15, rel[1], LIGHT_HEIGHT]])  # the lamp face, towards the ego
        uv, depth = renderer.cameras["cam_f0"].project(centre)
        u, v = np.round(uv[0]).astype(int)
        assert depth[0] > 0 and 0 <= u < image.shape[1] and 0 <= v < image.shape[0]
        patch = image[v - 1 : v + 2, u - 1 : u + 2].reshape(-1, 3).astype(int)
        dominant = patch[:, channel] - patch[:, 1 - channel]
        assert np.max(dominant) > 120, (red, patch)


def test_vehicle_straight_ahead_is_in_the_centre_of_the_front_camera() -> None:
    net = build_corridor(lanes_forward=2, lanes_backward=1)
    ego = np.array([100.0, -1.75, 0.0])
    renderer = SensorRenderer()
    empty = renderer.render_cameras(frame_at(ego), net.map, ["cam_f0"])["cam_f0"].image
    with_car = renderer.render_cameras(frame_at(ego, [(20.0, 0.0, "vehicle")]), net.map, ["cam_f0"])["cam_f0"].image
    changed = np.any(empty != with_car, axis=2)
    cols = np.flatnonzero(changed.any(axis=0))
    assert len(cols) > 5
    centre_col = (cols.min() + cols.max()) / 2
    assert abs(centre_col - empty.shape[1] / 2) < 2.0
    # and the left camera does not see it
    left = renderer.render_cameras(frame_at(ego, [(20.0, 0.0, "vehicle")]), net.map, ["cam_l0"])["cam_l0"].image
    left_empty = renderer.render_cameras(frame_at(ego), net.map, ["cam_l0"])["cam_l0"].image
    assert np.array_equal(left, left_empty)


def test_lidar_sees_a_box_at_its_true_range() -> None:
    net = build_corridor(lanes_forward=2, lanes_backward=1)
    ego = np.array([100.0, -1.75, 0.0])
    cfg = LidarConfig(beams=16, azimuths=1440, elevation_deg=(-10.0, 5.0))
    renderer = SensorRenderer(lidar=cfg)
    pc = renderer.render_lidar(frame_at(ego, [(20.0, 0.0, "vehicle")]), net.map).lidar_pc
    x, y, z = pc[LidarIndex.X], pc[LidarIndex.Y], pc[LidarIndex.Z]
    on_box = (np.abs(y) < 0.5) & (z > 0.3)
    rear_face = 20.0 - 4.6 / 2  # the box's rear face in the ego frame [m]
    assert on_box.sum() > 3
    assert np.min(x[on_box]) == pytest.approx(rear_face, abs=0.02)
    ground = z < 0.01
    assert ground.sum() > 100 and np.all(np.hypot(x, y) <= cfg.max_range + 1.5)


def test_rendering_is_deterministic_and_rig_is_configurable() -> None:
    net = build_intersection()
    ego = np.array([-60.0, -1.75, 0.0])
    frame = frame_at(ego, [(15.0, 3.5, AgentClass.VEHICLE.value), (25.0, -4.0, AgentClass.PEDESTRIAN.value)])
    rig = RigConfig(cameras=(CameraSpec("cam_f0", 0.0), CameraSpec("cam_b0", 180.0)), width=64, height=48)
    a = SensorRenderer(rig).render_cameras(frame, net.map)
    b = SensorRenderer(rig).render_cameras(frame, net.map)
    assert set(a) == {"cam_f0", "cam_b0"} and a["cam_f0"].image.shape == (48, 64, 3)
    assert all(np.array_equal(a[k].image, b[k].image) for k in a)
    np.testing.assert_allclose(a["cam_f0"].calibration.sensor2lidar_rotation @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    with pytest.raises(ValueError, match="fov_deg"):
        RigConfig(fov_deg=200.0)
    with pytest.raises(KeyError, match="cam_x"):
        SensorRenderer(rig).render_cameras(frame, net.map, ["cam_x"])
    assert PACIFICA.length == pytest.approx(5.176)
