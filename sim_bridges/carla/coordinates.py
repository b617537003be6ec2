"""CARLA <-> suite coordinates: the one place where frames are converted.

CARLA (Unreal) is left-handed: x forward, y right, z up, metres, angles in degrees with yaw growing from +x
towards +y (clockwise seen from above). The suite uses nuPlan's right-handed frame: x forward, y left, headings
in radians counter-clockwise, ego poses at the rear axle. The map is the same under both once y is mirrored:
a CARLA point ``(x, y, z)`` is the suite point ``(x, -y, z)``, a CARLA yaw ``psi`` [deg] is the heading
``-radians(psi)``, a CARLA yaw rate [deg/s] about z is the CCW yaw rate ``-radians(rate)`` [rad/s]. The mirror is
its own inverse, so every function here has a twin that undoes it.

Array functions take ``(..., k)`` arrays and broadcast; the ``*_carla`` functions build and read the ``carla``
value types (``Location``, ``Rotation``, ``Transform``, ``Vector3D``, ``BoundingBox``), importing ``carla`` only
when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import XY, BoundingBoxIndex, SE2Index
from irl_vla.data.geometry import absolute_to_relative, compose, wrap_angle
from irl_vla.data.vehicle import VehicleParameters

if TYPE_CHECKING:  # pragma: no cover
    import carla

FloatArray = npt.NDArray[np.float64]


def mirror_points(points: npt.ArrayLike) -> FloatArray:
    """Points ``(..., 2|3)`` from one frame to the other (negates y; its own inverse)."""
    out = np.array(points, dtype=np.float64)
    if out.shape[-1] not in (2, 3):
        raise ValueError(f"mirror_points: expected points (..., 2) or (..., 3), got shape {out.shape}")
    out[..., SE2Index.Y] *= -1.0
    return out


def yaw_to_heading(yaw_deg: npt.ArrayLike) -> FloatArray:
    """CARLA yaw [deg, clockwise] -> suite heading [rad, CCW], wrapped into ``[-pi, pi)``."""
    return wrap_angle(-np.radians(np.asarray(yaw_deg, dtype=np.float64)))


def heading_to_yaw(heading: npt.ArrayLike) -> FloatArray:
    """Suite heading [rad, CCW] -> CARLA yaw [deg, clockwise] in ``[-180, 180)``."""
    return np.degrees(wrap_angle(-np.asarray(heading, dtype=np.float64)))


def carla_to_se2(poses: npt.ArrayLike) -> FloatArray:
    """CARLA planar poses ``(..., 3)`` = ``(x [m], y [m], yaw [deg])`` -> suite SE(2) ``(x, y, heading [rad])``."""
    p = np.asarray(poses, dtype=np.float64)
    out = np.empty_like(p)
    out[..., SE2Index.X] = p[..., 0]
    out[..., SE2Index.Y] = -p[..., 1]
    out[..., SE2Index.HEADING] = yaw_to_heading(p[..., 2])
    return out


def se2_to_carla(poses: npt.ArrayLike) -> FloatArray:
    """Suite SE(2) poses ``(..., 3)`` -> CARLA planar poses ``(x [m], y [m], yaw [deg])``."""
    p = np.asarray(poses, dtype=np.float64)
    out = np.empty_like(p)
    out[..., 0] = p[..., SE2Index.X]
    out[..., 1] = -p[..., SE2Index.Y]
    out[..., 2] = heading_to_yaw(p[..., SE2Index.HEADING])
    return out


def rear_axle_from_actor(poses: npt.ArrayLike, vehicle: VehicleParameters, center_offset: float = 0.0) -> FloatArray:
    """Suite rear-axle poses ``(..., 3)`` of CARLA actor-origin poses already in the suite frame ``(..., 3)``.

    Args:
        poses: actor-origin poses in the suite frame.
        vehicle: the ego's geometry (rear axle -> box centre).
        center_offset: forward offset of the bounding-box centre from the actor origin [m]
            (``actor.bounding_box.location.x``; about 0 for CARLA's cars).
    """
    return _shift_forward(poses, center_offset - vehicle.rear_axle_to_center)


def actor_from_rear_axle(poses: npt.ArrayLike, vehicle: VehicleParameters, center_offset: float = 0.0) -> FloatArray:
    """Inverse of ``rear_axle_from_actor``: actor-origin poses (suite frame) of rear-axle poses."""
    return _shift_forward(poses, vehicle.rear_axle_to_center - center_offset)


def _shift_forward(poses: npt.ArrayLike, forward: float) -> FloatArray:
    out = np.array(poses, dtype=np.float64)
    h = out[..., SE2Index.HEADING]
    out[..., SE2Index.X] += forward * np.cos(h)
    out[..., SE2Index.Y] += forward * np.sin(h)
    return out


def velocity_to_suite(velocity: npt.ArrayLike) -> FloatArray:
    """CARLA velocities/accelerations ``(..., 2|3)`` [m/s] -> suite frame (negates y)."""
    return mirror_points(velocity)


def yaw_rate_to_suite(rate_deg_s: npt.ArrayLike) -> FloatArray:
    """CARLA angular velocity about z [deg/s, clockwise] -> suite yaw rate [rad/s, CCW]."""
    return -np.radians(np.asarray(rate_deg_s, dtype=np.float64))


def yaw_rate_to_carla(rate: npt.ArrayLike) -> FloatArray:
    """Suite yaw rate [rad/s, CCW] -> CARLA angular velocity about z [deg/s]."""
    return -np.degrees(np.asarray(rate, dtype=np.float64))


def velocity_in_ego_frame(velocity_suite: npt.ArrayLike, heading: npt.ArrayLike) -> FloatArray:
    """Global suite-frame velocities ``(..., 2)`` rotated into the ego frame of ``heading`` [rad] ``(...)``."""
    v = np.asarray(velocity_suite, dtype=np.float64)[..., XY]
    h = np.asarray(heading, dtype=np.float64)
    c, s = np.cos(h), np.sin(h)
    return np.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]], axis=-1)


def box_to_suite(center: npt.ArrayLike, extent: npt.ArrayLike, yaw_deg: npt.ArrayLike) -> FloatArray:
    """CARLA boxes -> suite boxes ``(..., len(BoundingBoxIndex))`` (x, y, z, length, width, height, heading).

    Args:
        center: world box centres ``(..., 3)`` in CARLA coordinates [m].
        extent: half sizes ``(..., 3)`` (CARLA's ``BoundingBox.extent``) [m].
        yaw_deg: box yaw ``(...)`` [deg].
    """
    c = mirror_points(center)
    e = np.asarray(extent, dtype=np.float64)
    out = np.empty((*c.shape[:-1], len(BoundingBoxIndex)))
    out[..., BoundingBoxIndex.X] = c[..., 0]
    out[..., BoundingBoxIndex.Y] = c[..., 1]
    out[..., BoundingBoxIndex.Z] = c[..., 2]
    out[..., BoundingBoxIndex.LENGTH] = 2.0 * e[..., 0]
    out[..., BoundingBoxIndex.WIDTH] = 2.0 * e[..., 1]
    out[..., BoundingBoxIndex.HEIGHT] = 2.0 * e[..., 2]
    out[..., BoundingBoxIndex.HEADING] = yaw_to_heading(yaw_deg)
    return out


def box_to_carla(boxes: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Suite boxes ``(..., len(BoundingBoxIndex))`` -> CARLA ``(center (..., 3), extent (..., 3), yaw [deg] (...))``."""
    b = np.asarray(boxes, dtype=np.float64)
    center = mirror_points(b[..., [BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.Z]])
    dims = [BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]
    return center, b[..., dims] / 2.0, heading_to_yaw(b[..., BoundingBoxIndex.HEADING])


def trajectory_to_carla(poses_local: npt.ArrayLike, ego_pose: npt.ArrayLike) -> FloatArray:
    """A plan in the ego frame ``(T, 3)`` (suite, rear axle) -> CARLA world poses ``(T, 3)`` (x, y, yaw [deg])."""
    return se2_to_carla(compose(np.asarray(ego_pose, dtype=np.float64)[None], np.asarray(poses_local)))


def trajectory_to_suite(carla_poses: npt.ArrayLike, ego_pose: npt.ArrayLike) -> FloatArray:
    """CARLA world poses ``(T, 3)`` -> poses ``(T, 3)`` in the suite ego frame of ``ego_pose`` (suite, global)."""
    return absolute_to_relative(carla_to_se2(carla_poses), np.asarray(ego_pose, dtype=np.float64)[None])


# ---------------------------------------------------------------------------------------------- carla value types
def _carla() -> Any:
    try:
        import carla
    except ImportError as err:  # pragma: no cover - the extra is documented
        raise ImportError(
            "the CARLA bridge needs the carla client: pip install 'irl-vla[carla]' (carla==0.9.16)"
        ) from err
    return carla


def transform_to_se2(transform: carla.Transform) -> FloatArray:
    """A ``carla.Transform`` -> suite SE(2) pose ``(3,)`` of the same point (its z, pitch and roll dropped)."""
    loc, rot = transform.location, transform.rotation
    return carla_to_se2([loc.x, loc.y, rot.yaw])


def se2_to_transform(pose: npt.ArrayLike, z: float = 0.0) -> carla.Transform:
    """A suite SE(2) pose ``(3,)`` -> ``carla.Transform`` at height ``z`` [m] (pitch and roll 0)."""
    carla = _carla()
    x, y, yaw = se2_to_carla(pose)
    return carla.Transform(carla.Location(x=float(x), y=float(y), z=float(z)), carla.Rotation(yaw=float(yaw)))


def location_to_suite(location: carla.Location | carla.Vector3D) -> FloatArray:
    """A ``carla.Location`` / ``Vector3D`` -> suite point ``(3,)``."""
    return mirror_points([location.x, location.y, location.z])


def suite_to_location(point: npt.ArrayLike) -> carla.Location:
    """A suite point ``(2|3,)`` -> ``carla.Location`` (z 0 for a 2-D point)."""
    carla = _carla()
    p = mirror_points(point)
    return carla.Location(x=float(p[0]), y=float(p[1]), z=float(p[2]) if p.shape[-1] == 3 else 0.0)


def local_to_world(transform: carla.Transform, location: carla.Location) -> carla.Location:
    """``transform.transform(location)`` without changing ``location`` (LibCarla rewrites its argument in place)."""
    carla = _carla()
    return transform.transform(carla.Location(x=location.x, y=location.y, z=location.z))


def bounding_box_to_suite(box: carla.BoundingBox, actor_transform: carla.Transform) -> FloatArray:
    """An actor's ``carla.BoundingBox`` (in the actor frame) -> suite world box ``(len(BoundingBoxIndex),)``."""
    center = local_to_world(actor_transform, box.location)
    yaw = actor_transform.rotation.yaw + box.rotation.yaw
    return box_to_suite([center.x, center.y, center.z], [box.extent.x, box.extent.y, box.extent.z], yaw)
