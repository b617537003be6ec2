"""Rendered sensors: lamps show their colour, heads stand on poles, cameras meet, shapes differ, LiDAR is true."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import shapely

from irl_vla.data.enums import AgentClass, BoundingBoxIndex, LidarIndex
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.map import MapLayer
from irl_vla.data.scene import Annotations, EgoStatus, Frame
from irl_vla.data.vehicle import PACIFICA
from sim_bridges.embedded.placement import DIMENSIONS
from sim_bridges.embedded.render.camera import LIGHT_COLOURS, Box3D
from sim_bridges.embedded.render.rig import CameraSpec, LidarConfig, RigConfig
from sim_bridges.embedded.render.sensors import LAMP_OFFSET, LIGHT_HEIGHT, SensorRenderer, signal_heads, signals
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


def _lamp_pixels(distance: float) -> dict[bool, int]:
    """Pixels of the lit lamp's colour in ``cam_f0`` (default rig), ``distance`` [m] before the ego's heads."""
    net = build_intersection()
    west_lane = net.map.get_lane(net.arms["west"].in_lanes[0])
    heads = [hd for hd in signal_heads(net.map) if hd.connector_id in west_lane.outgoing_ids]
    assert heads
    h = heads[0].pose[2] - np.pi  # the direction the ego drives to face them
    centre = np.mean([hd.pose[:2] for hd in heads], axis=0)
    ego = np.array([centre[0] - distance * np.cos(h), centre[1] - distance * np.sin(h), h])
    renderer = SensorRenderer()
    counts = {}
    for red in (True, False):
        frame = frame_at(ego, lights=[(hd.connector_id, red) for hd in heads])
        image = renderer.render_cameras(frame, net.map, ["cam_f0"])["cam_f0"].image.astype(int)
        lamp = np.array(LIGHT_COLOURS[red])
        # The lamp is where the head is: project the lit lamp's centre and look around it.
        rel = absolute_to_relative(heads[0].pose, ego)
        z = LIGHT_HEIGHT + (LAMP_OFFSET if red else -LAMP_OFFSET)
        uv, depth = renderer.cameras["cam_f0"].project(np.array([[rel[0], rel[1], z]]))
        u, v = np.round(uv[0]).astype(int)
        assert depth[0] > 0 and 0 <= u < image.shape[1] and 0 <= v < image.shape[0]
        patch = image[max(v - 4, 0) : v + 5, max(u - 4, 0) : u + 5]
        counts[red] = int(np.sum(np.abs(patch - lamp).sum(axis=-1) < 40))
    return counts


@pytest.mark.parametrize("distance", [15.0, 40.0])
def test_a_lit_lamp_shows_its_colour_over_several_pixels(distance: float) -> None:
    """At the default rig and resolution, red and green are visible where the head is, even 40 m away."""
    counts = _lamp_pixels(distance)
    assert counts[True] >= 5 and counts[False] >= 5, counts


def test_signal_heads_hang_from_mast_arms_on_poles() -> None:
    net = build_intersection()
    sigs = signals(net.map)
    poles = sigs.supports.size[:, 2] > 3.0  # tall, thin boxes standing on the ground
    assert poles.sum() == 4 and np.all(
        sigs.supports.centre[poles, 2] == pytest.approx(sigs.supports.size[poles, 2] / 2)
    )
    road = shapely.union_all([o.polygon for o in net.map.objects(MapLayer.ROADBLOCK)])
    for x, y in sigs.supports.centre[poles, :2]:
        assert not road.contains(shapely.Point(x, y))  # beside the road
    arms = ~poles
    assert np.all(sigs.supports.centre[arms, 2] > LIGHT_HEIGHT)  # heads hang below their arms


def test_front_cameras_meet_without_seams() -> None:
    """The default rig's front cameras share an origin and the ray at one's edge is the next one's edge ray."""
    rig = RigConfig()
    cals = rig.calibrations()
    order = ["cam_l0", "cam_f0", "cam_r0"]
    k_inv = np.linalg.inv(rig.intrinsics())
    for left, right in itertools.pairwise(order):
        a, b = cals[left], cals[right]
        np.testing.assert_allclose(a.sensor2lidar_translation, b.sensor2lidar_translation)
        for v in (0.0, rig.height / 2, rig.height):
            ray_a = a.sensor2lidar_rotation @ k_inv @ [rig.width, v, 1.0]  # right edge of the left camera
            ray_b = b.sensor2lidar_rotation @ k_inv @ [0.0, v, 1.0]  # left edge of the right camera
            np.testing.assert_allclose(ray_a / np.linalg.norm(ray_a), ray_b / np.linalg.norm(ray_b), atol=1e-12)


def _silhouette(name: str, heading: float = 0.0, distance: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``cam_f0`` changes for one object ``distance`` ahead, and their colours."""
    net = build_corridor(lanes_forward=2, lanes_backward=1)
    ego = np.array([100.0, -1.75, 0.0])
    length, width, height = DIMENSIONS[AgentClass(name)]
    row = np.zeros(7)
    row[[BoundingBoxIndex.X, BoundingBoxIndex.Z, BoundingBoxIndex.HEADING]] = distance, height / 2, heading
    row[[BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]] = length, width, height
    frame = frame_at(ego)
    with_object = dataclasses.replace(frame, annotations=Annotations(row[None], [name], np.zeros((1, 3)), ["t"], ["t"]))
    renderer = SensorRenderer()
    empty = renderer.render_cameras(frame, net.map, ["cam_f0"])["cam_f0"].image
    image = renderer.render_cameras(with_object, net.map, ["cam_f0"])["cam_f0"].image
    changed = np.any(empty != image, axis=2)
    return changed, image[changed]


def _extent(mask: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1  # height, width [px]


def test_vehicles_people_and_cyclists_are_distinct_shapes() -> None:
    car, car_colours = _silhouette(AgentClass.VEHICLE.value)
    person, person_colours = _silhouette(AgentClass.PEDESTRIAN.value)
    cyclist, _ = _silhouette(AgentClass.BICYCLE.value, heading=np.pi / 2)  # crossing: seen from the side
    walker, _ = _silhouette(AgentClass.PEDESTRIAN.value, heading=np.pi / 2)
    car_h, car_w = _extent(car)
    person_h, person_w = _extent(person)
    assert car_w > car_h and person_h > 2 * person_w  # a wide, low vehicle; a tall, narrow person
    assert len(np.unique(car_colours, axis=0)) >= 3  # body, glass and tyres: not one flat box
    assert len(np.unique(person_colours, axis=0)) >= 3  # legs, clothes and head
    assert _extent(cyclist)[1] > 2 * _extent(walker)[1]  # a bicycle's length shows from the side


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


def test_lidar_casting_only_towards_each_box_gives_the_full_cloud() -> None:
    net = build_corridor(lanes_forward=2, lanes_backward=1)
    renderer = SensorRenderer(lidar=LidarConfig(beams=8, azimuths=720))
    rng = np.random.default_rng(0)
    boxes = [
        Box3D(
            np.array([*rng.uniform(-50, 50, 2), 0.8]), np.array([4.6, 1.9, 1.6]), float(rng.uniform(-3, 3)), (1, 2, 3)
        )
        for _ in range(30)
    ]
    boxes += [
        Box3D(np.array([1.0, 0.0, 0.8]), np.array([4.6, 1.9, 1.6]), 0.3, (1, 2, 3)),  # around the sensor
        Box3D(np.array([-20.0, 0.01, 0.8]), np.array([4.6, 1.9, 1.6]), 0.3, (1, 2, 3)),  # behind: azimuths wrap
    ]
    ground, _ = renderer._map_assets(net.map)
    ego = np.array([100.0, -1.75, 0.0])
    culled = renderer.lidar.render(ground, ego, boxes)
    every_ray = np.arange(len(renderer.lidar.directions))
    renderer.lidar._rays_towards = lambda box: every_ray  # type: ignore[method-assign]
    np.testing.assert_array_equal(culled, renderer.lidar.render(ground, ego, boxes))
