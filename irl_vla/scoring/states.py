"""Simulated ego states: the 11-column state vector, its construction from logged ego status, and footprints.

A state is the rear-axle state of NAVSIM's PDM simulation (``reference/navsim.md`` §1.3): pose, velocity and
acceleration in the ego frame, steering, and yaw rate/acceleration. Footprints are the Pacifica box corners in
NAVSIM's order (§1.4).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import SE2Index
from irl_vla.data.vehicle import PACIFICA, VehicleParameters

FloatArray = npt.NDArray[np.float64]


class StateIndex(IntEnum):
    """Columns of a simulated ego state ``(..., n_state)``, ``n_state = len(StateIndex)`` (rear-axle reference)."""

    X = 0  # [m]
    Y = 1  # [m]
    HEADING = 2  # [rad]
    VELOCITY_X = 3  # [m/s]
    VELOCITY_Y = 4  # [m/s]
    ACCELERATION_X = 5  # [m/s^2]
    ACCELERATION_Y = 6  # [m/s^2]
    STEERING_ANGLE = 7  # [rad]
    STEERING_RATE = 8  # [rad/s]
    ANGULAR_VELOCITY = 9  # [rad/s]
    ANGULAR_ACCELERATION = 10  # [rad/s^2]


#: Pose columns of a state, usable as ``states[..., POSE]``.
POSE = slice(StateIndex.X, StateIndex.HEADING + 1)


class CornerIndex(IntEnum):
    """Rows of a footprint ``(..., 5, 2)``: the four box corners (polygon order) and the centre."""

    FRONT_LEFT = 0
    REAR_LEFT = 1
    REAR_RIGHT = 2
    FRONT_RIGHT = 3
    CENTER = 4


#: The polygon rows of a footprint (corners only).
CORNERS = slice(CornerIndex.FRONT_LEFT, CornerIndex.FRONT_RIGHT + 1)


def initial_state(pose: npt.ArrayLike, velocity: npt.ArrayLike, acceleration: npt.ArrayLike) -> FloatArray:
    """State ``(n_state,)`` of a logged ego status: pose, ego-frame velocity and acceleration; steering and yaw 0."""
    state = np.zeros(len(StateIndex))
    state[POSE] = np.asarray(pose, dtype=np.float64)
    state[[StateIndex.VELOCITY_X, StateIndex.VELOCITY_Y]] = np.asarray(velocity, dtype=np.float64)
    state[[StateIndex.ACCELERATION_X, StateIndex.ACCELERATION_Y]] = np.asarray(acceleration, dtype=np.float64)
    return state


def speed(states: FloatArray) -> FloatArray:
    """Speed [m/s] ``(...)`` of states ``(..., n_state)``."""
    return np.hypot(states[..., StateIndex.VELOCITY_X], states[..., StateIndex.VELOCITY_Y])


def footprint(states: FloatArray, vehicle: VehicleParameters = PACIFICA) -> FloatArray:
    """Box corners and centre ``(..., 5, 2)`` [m] of rear-axle poses or states ``(..., >=3)``."""
    x, y, h = states[..., SE2Index.X], states[..., SE2Index.Y], states[..., SE2Index.HEADING]
    cos, sin = np.cos(h), np.sin(h)
    cx = x + vehicle.rear_axle_to_center * cos
    cy = y + vehicle.rear_axle_to_center * sin
    half_l, half_w = vehicle.length / 2, vehicle.width / 2
    # (lon, lat) offsets of FL, RL, RR, FR, centre
    lon = np.array([half_l, -half_l, -half_l, half_l, 0.0])
    lat = np.array([half_w, half_w, -half_w, -half_w, 0.0])
    out = np.empty((*x.shape, len(CornerIndex), 2))
    out[..., 0] = cx[..., None] + lon * cos[..., None] - lat * sin[..., None]
    out[..., 1] = cy[..., None] + lon * sin[..., None] + lat * cos[..., None]
    return out
