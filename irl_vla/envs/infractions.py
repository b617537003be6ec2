"""Infractions: ``InfractionKind`` with the CARLA leaderboard 2.x penalty rules, and the ``Infraction`` record.

Every backend reports what went wrong as ``Infraction`` records (the embedded world from its own detectors,
``irl_vla.envs.detectors``; the CARLA bridge from CARLA's sensors), so one driving score serves both.

Penalty rules (leaderboard 2.x):

- a fixed factor per event: collision with a pedestrian x0.50, a vehicle x0.60, a static object x0.65, red light
  x0.70, stop sign x0.80, scenario timeout x0.70, failing to yield to an emergency vehicle x0.70;
- minimum speed: x(1 - 0.3 (1 - p / 100)) for an event of value ``p`` [%] (the ego's speed as a percentage of the
  surrounding traffic's);
- off-road and wrong-way driving carry the distance driven in that state [m] as their value; together they make
  the leaderboard's "outside route lanes" factor (1 - pct / 100), pct = their distance / driven route distance;
- route deviation, blocked and route timeout end the route (route completion freezes) with no factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

from irl_vla.data.validation import check_array


class InfractionKind(str, Enum):
    """What went wrong; values are the names written to per-route records."""

    COLLISION_VEHICLE = "collision_vehicle"
    COLLISION_PEDESTRIAN = "collision_pedestrian"  # pedestrians and cyclists (vulnerable road users)
    COLLISION_STATIC = "collision_static"  # cones, barriers, parked scenery, anything that is not a road user
    RED_LIGHT = "red_light"
    STOP_SIGN = "stop_sign"
    OFF_ROAD = "off_road"  # value: distance driven outside every lane [m]
    WRONG_WAY = "wrong_way"  # value: distance driven against the lane direction [m]
    ROUTE_DEVIATION = "route_deviation"
    BLOCKED = "blocked"
    SCENARIO_TIMEOUT = "scenario_timeout"
    ROUTE_TIMEOUT = "route_timeout"
    MIN_SPEED = "min_speed"  # value: ego speed as % of the surrounding traffic's at one checkpoint
    YIELD_EMERGENCY_VEHICLE = "yield_emergency_vehicle"

    @property
    def penalty_factor(self) -> float | None:
        """The fixed leaderboard 2.x factor of one event.

        ``None`` when the factor depends on the value (min speed, off-road, wrong way) or the event ends the route.
        """
        return PENALTY_FACTORS.get(self)

    @property
    def ends_route(self) -> bool:
        """Whether the leaderboard ends the route at this event (route completion freezes, no factor)."""
        return self in ROUTE_ENDING

    @property
    def is_collision(self) -> bool:
        """Whether this is one of the three collision kinds."""
        return self in COLLISIONS

    @property
    def statistics_key(self) -> str:
        """The key of the leaderboard statistics JSON's ``infractions`` dict that lists this kind."""
        return STATISTICS_KEYS[self]


#: Fixed penalty factor per event (leaderboard 2.x).
PENALTY_FACTORS: dict[InfractionKind, float] = {
    InfractionKind.COLLISION_PEDESTRIAN: 0.50,
    InfractionKind.COLLISION_VEHICLE: 0.60,
    InfractionKind.COLLISION_STATIC: 0.65,
    InfractionKind.RED_LIGHT: 0.70,
    InfractionKind.STOP_SIGN: 0.80,
    InfractionKind.SCENARIO_TIMEOUT: 0.70,
    InfractionKind.YIELD_EMERGENCY_VEHICLE: 0.70,
}
#: Kinds that end the route without a factor.
ROUTE_ENDING: frozenset[InfractionKind] = frozenset(
    {InfractionKind.ROUTE_DEVIATION, InfractionKind.BLOCKED, InfractionKind.ROUTE_TIMEOUT}
)
#: The collision kinds.
COLLISIONS: frozenset[InfractionKind] = frozenset(
    {InfractionKind.COLLISION_VEHICLE, InfractionKind.COLLISION_PEDESTRIAN, InfractionKind.COLLISION_STATIC}
)
#: Kinds whose distances make the "outside route lanes" percentage.
OUTSIDE_LANES: frozenset[InfractionKind] = frozenset({InfractionKind.OFF_ROAD, InfractionKind.WRONG_WAY})
#: Weight of the minimum-speed penalty: factor = 1 - MIN_SPEED_WEIGHT * (1 - p / 100).
MIN_SPEED_WEIGHT = 0.3

#: Leaderboard statistics JSON key per kind (``_checkpoint.records[].infractions``).
STATISTICS_KEYS: dict[InfractionKind, str] = {
    InfractionKind.COLLISION_STATIC: "collisions_layout",
    InfractionKind.COLLISION_PEDESTRIAN: "collisions_pedestrian",
    InfractionKind.COLLISION_VEHICLE: "collisions_vehicle",
    InfractionKind.RED_LIGHT: "red_light",
    InfractionKind.STOP_SIGN: "stop_infraction",
    InfractionKind.OFF_ROAD: "outside_route_lanes",
    InfractionKind.WRONG_WAY: "outside_route_lanes",
    InfractionKind.MIN_SPEED: "min_speed_infractions",
    InfractionKind.YIELD_EMERGENCY_VEHICLE: "yield_emergency_vehicle_infractions",
    InfractionKind.SCENARIO_TIMEOUT: "scenario_timeouts",
    InfractionKind.ROUTE_DEVIATION: "route_dev",
    InfractionKind.BLOCKED: "vehicle_blocked",
    InfractionKind.ROUTE_TIMEOUT: "route_timeout",
}
#: Every key of the statistics JSON's ``infractions`` dict, in the leaderboard's order.
STATISTICS_INFRACTION_KEYS: tuple[str, ...] = (
    "collisions_layout",
    "collisions_pedestrian",
    "collisions_vehicle",
    "red_light",
    "stop_infraction",
    "outside_route_lanes",
    "min_speed_infractions",
    "yield_emergency_vehicle_infractions",
    "scenario_timeouts",
    "route_dev",
    "vehicle_blocked",
    "route_timeout",
)


@dataclass(frozen=True)
class Infraction:
    """One infraction event.

    Attributes:
        kind: what went wrong.
        time: simulated time of the event since the reset [s].
        position: global ego rear-axle position at the event (x [m], y [m]) ``(2,)``.
        other_id: track token of the other object (collisions), light or stop-line id (red light, stop sign),
            or ``""``.
        value: the event's measure where its penalty needs one: distance [m] for off-road and wrong way,
            percentage [%] for minimum speed; ``None`` otherwise.
        message: a human-readable line, as the leaderboard lists infractions.
    """

    kind: InfractionKind
    time: float
    position: npt.NDArray[np.float64]
    other_id: str = ""
    value: float | None = None
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", InfractionKind(self.kind))
        object.__setattr__(self, "position", np.asarray(self.position, dtype=np.float64))
        check_array(self.position, f"Infraction({self.kind.value}).position", (2,))
        if not np.isfinite(self.time) or self.time < 0:
            raise ValueError(f"Infraction({self.kind.value}).time: expected a finite time >= 0 [s], got {self.time}")
        needs_value = self.kind in OUTSIDE_LANES or self.kind is InfractionKind.MIN_SPEED
        if needs_value and (self.value is None or not np.isfinite(self.value) or self.value < 0):
            raise ValueError(f"Infraction({self.kind.value}).value: expected a finite value >= 0, got {self.value}")

    def describe(self) -> str:
        """The message, or one made from the fields."""
        if self.message:
            return self.message
        x, y = self.position
        other = f" with {self.other_id}" if self.other_id else ""
        value = f" ({self.value:.1f})" if self.value is not None else ""
        return f"{self.kind.value}{other}{value} at t={self.time:.1f} s, (x={x:.1f}, y={y:.1f})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the per-route record's form)."""
        return {
            "kind": self.kind.value,
            "time": float(self.time),
            "position": [float(v) for v in self.position],
            "other_id": self.other_id,
            "value": None if self.value is None else float(self.value),
            "message": self.describe(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Infraction:
        """The record written by ``to_dict``.

        Raises:
            ValueError: naming the missing or bad field.
        """
        try:
            return cls(
                kind=InfractionKind(data["kind"]),
                time=float(data["time"]),
                position=np.asarray(data["position"], dtype=np.float64),
                other_id=str(data.get("other_id", "")),
                value=None if data.get("value") is None else float(data["value"]),
                message=str(data.get("message", "")),
            )
        except KeyError as e:
            raise ValueError(f"Infraction record: missing field {e.args[0]!r}") from None
