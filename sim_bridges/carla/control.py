"""Backend-neutral ``Controls`` -> CARLA ``VehicleControl`` (throttle, brake, steer).

``Controls.acceleration`` [m/s^2] maps linearly to throttle (up to ``max_acceleration``) or brake (down to
``-max_deceleration``); ``Controls.steering_angle`` [rad, left positive] maps to CARLA's ``steer`` in [-1, 1],
which turns right when positive, as ``-angle / max_steering_angle``. The limits are the driven vehicle's
(config ``carla.control``); the defaults are round values for a mid-size car, to be set from the vehicle's
``get_physics_control()`` (``max_steer_angle`` of its front wheels) where known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from irl_vla.envs.env import Controls


@dataclass(frozen=True)
class ControlLimits:
    """What full throttle, full brake and full steer mean for the driven vehicle.

    Attributes:
        max_acceleration: acceleration at full throttle [m/s^2].
        max_deceleration: deceleration at full brake [m/s^2] (positive).
        max_steering_angle: front-wheel angle at ``steer = +-1`` [rad].
    """

    max_acceleration: float = 3.0
    max_deceleration: float = 8.0
    max_steering_angle: float = 1.22

    def __post_init__(self) -> None:
        for name in ("max_acceleration", "max_deceleration", "max_steering_angle"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"ControlLimits.{name}: expected a positive number, got {value!r}")


@dataclass(frozen=True)
class PedalsAndSteer:
    """CARLA's control values (what ``carla.VehicleControl`` holds)."""

    throttle: float  # [0, 1]
    brake: float  # [0, 1]
    steer: float  # [-1, 1], positive turns right (clockwise)


def to_pedals(controls: Controls, limits: ControlLimits = ControlLimits()) -> PedalsAndSteer:
    """Map suite ``Controls`` to throttle, brake and steer (clipped to CARLA's ranges)."""
    acc = controls.acceleration
    throttle = float(np.clip(acc / limits.max_acceleration, 0.0, 1.0))
    brake = float(np.clip(-acc / limits.max_deceleration, 0.0, 1.0))
    steer = float(np.clip(-controls.steering_angle / limits.max_steering_angle, -1.0, 1.0))
    return PedalsAndSteer(throttle, brake, steer)


def from_pedals(pedals: PedalsAndSteer, limits: ControlLimits = ControlLimits()) -> Controls:
    """Inverse of ``to_pedals`` inside the unclipped range (brake wins over throttle)."""
    acc = -pedals.brake * limits.max_deceleration if pedals.brake > 0 else pedals.throttle * limits.max_acceleration
    return Controls(acceleration=acc, steering_angle=-pedals.steer * limits.max_steering_angle)


def to_vehicle_control(controls: Controls, limits: ControlLimits = ControlLimits()) -> Any:
    """A ``carla.VehicleControl`` for ``controls``."""
    import carla

    p = to_pedals(controls, limits)
    return carla.VehicleControl(throttle=p.throttle, steer=p.steer, brake=p.brake)
