"""Batched kinematic bicycle model with first-order actuator lag (``reference/navsim.md`` §1.3).

Rear-axle reference, explicit Euler. Commands are (longitudinal acceleration [m/s^2], steering rate [rad/s]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irl_vla.data.geometry import wrap_angle
from irl_vla.data.vehicle import PACIFICA, VehicleParameters
from irl_vla.scoring.states import FloatArray, StateIndex

S = StateIndex


@dataclass(frozen=True)
class BicycleConfig:
    """Constants of the model.

    Attributes:
        accel_time_constant: first-order lag of the acceleration [s].
        steering_angle_time_constant: first-order lag of the steering angle [s].
        max_steering_angle: steering limit [rad].
    """

    accel_time_constant: float = 0.2
    steering_angle_time_constant: float = 0.05
    max_steering_angle: float = np.pi / 3


def propagate(
    states: FloatArray,
    accel_cmd: FloatArray,
    steering_rate_cmd: FloatArray,
    dt: float,
    vehicle: VehicleParameters = PACIFICA,
    config: BicycleConfig = BicycleConfig(),
) -> FloatArray:
    """One step of ``dt`` [s] for states ``(K, n_state)`` under commands ``(K,)``; returns the next states."""
    accel = states[:, S.ACCELERATION_X] + dt / (dt + config.accel_time_constant) * (
        accel_cmd - states[:, S.ACCELERATION_X]
    )
    steer = states[:, S.STEERING_ANGLE]
    ideal_steer = steer + dt * steering_rate_cmd
    lagged_steer = steer + dt / (dt + config.steering_angle_time_constant) * (ideal_steer - steer)
    steering_rate = (lagged_steer - steer) / dt

    v = states[:, S.VELOCITY_X]
    h = states[:, S.HEADING]
    nxt = np.zeros_like(states)
    nxt[:, S.X] = states[:, S.X] + dt * v * np.cos(h)
    nxt[:, S.Y] = states[:, S.Y] + dt * v * np.sin(h)
    nxt[:, S.HEADING] = wrap_angle(h + dt * v * np.tan(steer) / vehicle.wheel_base)
    nxt[:, S.VELOCITY_X] = v + dt * accel
    nxt[:, S.ACCELERATION_X] = accel
    nxt[:, S.STEERING_ANGLE] = np.clip(
        steer + dt * steering_rate, -config.max_steering_angle, config.max_steering_angle
    )
    nxt[:, S.STEERING_RATE] = steering_rate
    nxt[:, S.ANGULAR_VELOCITY] = nxt[:, S.VELOCITY_X] * np.tan(nxt[:, S.STEERING_ANGLE]) / vehicle.wheel_base
    nxt[:, S.ANGULAR_ACCELERATION] = (nxt[:, S.ANGULAR_VELOCITY] - states[:, S.ANGULAR_VELOCITY]) / dt
    # lateral velocity and acceleration stay 0 (no slip)
    return nxt
