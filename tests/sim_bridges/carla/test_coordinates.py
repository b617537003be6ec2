"""CARLA <-> suite coordinates round-trip and agree with the ``carla`` value types; control mapping."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.enums import BoundingBoxIndex, SE2Index
from irl_vla.data.vehicle import PACIFICA
from irl_vla.envs.env import Controls
from sim_bridges.carla import coordinates as co
from sim_bridges.carla.control import ControlLimits, PedalsAndSteer, from_pedals, to_pedals

carla = pytest.importorskip("carla", reason="the carla client (extra 'carla') is not installed")

RNG = np.random.default_rng(0)
POSES = np.column_stack([RNG.uniform(-100, 100, 50), RNG.uniform(-100, 100, 50), RNG.uniform(-np.pi, np.pi, 50)])


def test_pose_conversions_round_trip() -> None:
    back = co.carla_to_se2(co.se2_to_carla(POSES))
    np.testing.assert_allclose(back[:, :2], POSES[:, :2])
    np.testing.assert_allclose(np.cos(back[:, 2] - POSES[:, 2]), 1.0)


def test_yaw_is_clockwise_degrees_and_heading_counter_clockwise_radians() -> None:
    # CARLA yaw 90 faces +y_carla, which is the suite's -y: heading -pi/2.
    np.testing.assert_allclose(co.yaw_to_heading(90.0), -np.pi / 2)
    np.testing.assert_allclose(co.heading_to_yaw(np.pi / 2), -90.0)
    np.testing.assert_allclose(co.yaw_rate_to_suite(co.yaw_rate_to_carla(0.3)), 0.3)
    np.testing.assert_allclose(co.yaw_rate_to_suite(-180.0), np.pi)


@pytest.mark.parametrize("k", range(5))
def test_local_to_world_matches_carla_transform(k: int) -> None:
    """A point ahead-left of a suite pose lands where ``carla.Transform.transform`` puts it in CARLA."""
    pose = POSES[k]
    transform = co.se2_to_transform(pose, z=1.0)
    local_suite = np.array([2.0, 1.5, 0.0])  # 2 m ahead, 1.5 m left
    world_carla = transform.transform(carla.Location(x=2.0, y=-1.5, z=0.0))  # left is -y in CARLA
    expected = co.location_to_suite(world_carla)
    c, s = np.cos(pose[2]), np.sin(pose[2])
    mine = pose[:2] + np.array([c * local_suite[0] - s * local_suite[1], s * local_suite[0] + c * local_suite[1]])
    np.testing.assert_allclose(mine, expected[:2], atol=1e-4)
    np.testing.assert_allclose(co.transform_to_se2(transform)[:2], pose[:2], atol=1e-4)
    forward = transform.get_forward_vector()
    np.testing.assert_allclose(co.location_to_suite(forward)[:2], [c, s], atol=1e-5)


def test_location_round_trip() -> None:
    location = co.suite_to_location([3.0, 4.0, 0.5])
    assert (location.x, location.y, location.z) == pytest.approx((3.0, -4.0, 0.5))
    np.testing.assert_allclose(co.location_to_suite(location), [3.0, 4.0, 0.5])
    assert co.suite_to_location([3.0, 4.0]).z == 0.0


def test_rear_axle_and_actor_origin_shift_along_the_heading() -> None:
    actor = np.array([10.0, 5.0, np.pi / 2])
    rear = co.rear_axle_from_actor(actor, PACIFICA)
    np.testing.assert_allclose(rear[:2], [10.0, 5.0 - PACIFICA.rear_axle_to_center])
    np.testing.assert_allclose(co.actor_from_rear_axle(rear, PACIFICA), actor)


def test_velocities_mirror_and_rotate_into_the_ego_frame() -> None:
    v_suite = co.velocity_to_suite([3.0, -4.0, 0.0])
    np.testing.assert_allclose(v_suite, [3.0, 4.0, 0.0])
    heading = np.arctan2(4.0, 3.0)
    np.testing.assert_allclose(co.velocity_in_ego_frame(v_suite, heading), [5.0, 0.0], atol=1e-12)


def test_bounding_box_matches_carla_box_vertices() -> None:
    transform = carla.Transform(carla.Location(x=5.0, y=-2.0, z=0.0), carla.Rotation(yaw=30.0))
    box = carla.BoundingBox(carla.Location(x=0.4, y=0.0, z=0.8), carla.Vector3D(2.4, 1.0, 0.8))
    suite = co.bounding_box_to_suite(box, transform)
    assert (box.location.x, box.location.z) == pytest.approx((0.4, 0.8))  # the actor's box is left as it was
    world = [transform.transform(v) for v in box.get_local_vertices()]
    vertices = np.array([[v.x, v.y] for v in world])
    corners = co.mirror_points(vertices)
    centre = corners.mean(axis=0)
    np.testing.assert_allclose(suite[[BoundingBoxIndex.X, BoundingBoxIndex.Y]], centre, atol=1e-4)
    assert suite[BoundingBoxIndex.LENGTH] == pytest.approx(4.8) and suite[BoundingBoxIndex.WIDTH] == pytest.approx(2.0)
    assert suite[BoundingBoxIndex.HEADING] == pytest.approx(-np.radians(30.0))
    center, extent, yaw = co.box_to_carla(suite)
    np.testing.assert_allclose(extent, [2.4, 1.0, 0.8], atol=1e-6)
    assert yaw == pytest.approx(30.0)
    np.testing.assert_allclose(center[:2], co.mirror_points(centre), atol=1e-4)


def test_trajectories_round_trip_through_carla_world_poses() -> None:
    ego = np.array([20.0, -3.0, 0.7])
    plan = np.column_stack([np.arange(1, 9) * 2.0, np.linspace(0, 1.0, 8), np.linspace(0, 0.2, 8)])  # (T, 3)
    world = co.trajectory_to_carla(plan, ego)
    np.testing.assert_allclose(co.trajectory_to_suite(world, ego), plan, atol=1e-9)
    first = co.se2_to_transform(co.carla_to_se2(world[0]))
    ahead = co.se2_to_transform(ego).transform(carla.Location(x=2.0, y=0.0, z=0.0))
    assert (first.location.x, first.location.y) == pytest.approx((ahead.x, ahead.y), abs=1e-4)
    assert plan.shape[-1] == len(SE2Index)


def test_controls_map_to_pedals_and_back() -> None:
    limits = ControlLimits(max_acceleration=3.0, max_deceleration=8.0, max_steering_angle=1.0)
    p = to_pedals(Controls(acceleration=1.5, steering_angle=0.25), limits)
    assert p == PedalsAndSteer(throttle=0.5, brake=0.0, steer=-0.25)  # a left turn is negative CARLA steer
    p = to_pedals(Controls(acceleration=-4.0, steering_angle=-2.0), limits)
    assert p == PedalsAndSteer(throttle=0.0, brake=0.5, steer=1.0)  # clipped
    back = from_pedals(to_pedals(Controls(acceleration=-2.0, steering_angle=0.3), limits), limits)
    assert (back.acceleration, back.steering_angle) == pytest.approx((-2.0, 0.3))
    with pytest.raises(ValueError, match="max_deceleration"):
        ControlLimits(max_deceleration=0.0)


def test_vehicle_control_is_a_carla_value() -> None:
    from sim_bridges.carla.control import to_vehicle_control

    control = to_vehicle_control(Controls(acceleration=-8.0, steering_angle=0.0))
    assert isinstance(control, carla.VehicleControl) and control.brake == pytest.approx(1.0)


def test_local_to_world_leaves_its_argument_alone() -> None:
    transform = carla.Transform(carla.Location(x=5.0, y=-2.0, z=0.0), carla.Rotation(yaw=90.0))
    local = carla.Location(x=1.0, y=0.0, z=0.0)
    world = co.local_to_world(transform, local)
    assert (world.x, world.y) == pytest.approx((5.0, -1.0), abs=1e-5) and (local.x, local.y) == (1.0, 0.0)
