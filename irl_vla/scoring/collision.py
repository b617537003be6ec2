"""Collision classification shared by both scorer implementations (nuPlan's ``CollisionType`` semantics)."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from irl_vla.scoring.states import FloatArray


class CollisionType(IntEnum):
    """How the ego met an object (``reference/navsim.md`` §1.7 NC), checked in this order."""

    STOPPED_EGO = 0  # the ego was (almost) standing still
    STOPPED_TRACK = 1  # the object is static or standing still
    ACTIVE_REAR = 2  # the object came from behind
    ACTIVE_FRONT = 3  # the object touches the ego's front bumper
    ACTIVE_LATERAL = 4  # anything else


def bearing_angle(heading: FloatArray, origin: FloatArray, target: FloatArray) -> FloatArray:
    """Angle [deg] between a heading [rad] ``(...)`` and the vector ``origin -> target`` ``(..., 2)``.

    ``arccos`` of the dot product of unit vectors, as nuPlan computes "ahead" and "behind".
    """
    d = np.asarray(target, dtype=np.float64) - origin
    norm = np.hypot(d[..., 0], d[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (np.cos(heading) * d[..., 0] + np.sin(heading) * d[..., 1]) / norm
    return np.degrees(np.arccos(np.clip(np.nan_to_num(cos, nan=1.0), -1.0, 1.0)))


def classify_collision(
    ego_speed: FloatArray,
    object_is_agent: np.ndarray,
    object_speed: FloatArray,
    object_bearing: FloatArray,
    touches_front_bumper: np.ndarray,
    stopped_speed: float,
    behind_angle: float,
) -> np.ndarray:
    """``CollisionType`` per event; every argument broadcasts over events."""
    return np.select(
        [
            ego_speed <= stopped_speed,
            ~object_is_agent | (object_speed <= stopped_speed),
            object_bearing > behind_angle,
            touches_front_bumper,
        ],
        [CollisionType.STOPPED_EGO, CollisionType.STOPPED_TRACK, CollisionType.ACTIVE_REAR, CollisionType.ACTIVE_FRONT],
        CollisionType.ACTIVE_LATERAL,
    )


def is_at_fault(collision: np.ndarray, ego_off_lane: np.ndarray) -> np.ndarray:
    """At-fault collisions.

    Into a stopped object, with the front bumper, or sideways while the ego straddles lanes or leaves the drivable
    area (``ego_off_lane``).
    """
    return (
        (collision == CollisionType.STOPPED_TRACK)
        | (collision == CollisionType.ACTIVE_FRONT)
        | ((collision == CollisionType.ACTIVE_LATERAL) & ego_off_lane)
    )


def collision_penalty(object_is_agent: np.ndarray) -> FloatArray:
    """NC value of an at-fault collision: 0 with a road user, 0.5 with a static object."""
    return np.where(object_is_agent, 0.0, 0.5)
