"""Ego vehicle geometry (nuPlan's Chrysler Pacifica, the vehicle NAVSIM scores) and rear-axle/centre shifts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import SE2Index


@dataclass(frozen=True)
class VehicleParameters:
    """Box and axle geometry [m] of a vehicle; poses of the ego are poses of its rear axle."""

    width: float
    front_length: float  # rear axle -> front bumper
    rear_length: float  # rear axle -> rear bumper
    wheel_base: float
    height: float

    @property
    def length(self) -> float:
        """Bumper to bumper [m]."""
        return self.front_length + self.rear_length

    @property
    def rear_axle_to_center(self) -> float:
        """Distance from the rear axle forward to the box centre [m]."""
        return self.length / 2 - self.rear_length

    def center_from_rear_axle(self, poses: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Box-centre poses ``(..., 3)`` of rear-axle poses ``(..., 3)``."""
        return _shift(poses, self.rear_axle_to_center)

    def rear_axle_from_center(self, poses: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Rear-axle poses ``(..., 3)`` of box-centre poses ``(..., 3)``."""
        return _shift(poses, -self.rear_axle_to_center)


def _shift(poses: npt.ArrayLike, forward: float) -> npt.NDArray[np.float64]:
    out = np.array(poses, dtype=np.float64)
    h = out[..., SE2Index.HEADING]
    out[..., SE2Index.X] += forward * np.cos(h)
    out[..., SE2Index.Y] += forward * np.sin(h)
    return out


#: The ego of NAVSIM and of the embedded world.
PACIFICA = VehicleParameters(width=2.297, front_length=4.049, rear_length=1.127, wheel_base=3.089, height=1.777)
