"""Collision detection: the ego's box against every other box, classified and de-duplicated as the leaderboard does.

The overlap test is the scorer's oriented-box test (touching counts). Classes follow CARLA's: pedestrians are
``collision_pedestrian``; vehicles and bicycles (vehicles in CARLA) ``collision_vehicle``; everything else (cones,
barriers, signs, generic objects) ``collision_static``. De-duplication: the same object is not counted again
within ``same_object_time``; a collision within ``same_place_distance`` of the last counted one is not counted
until the ego has moved farther than that; a collision while the ego is nearly stopped is not the ego's fault and
is not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from irl_vla.data.enums import XY, AgentClass, BoundingBoxIndex, SE2Index
from irl_vla.envs.infractions import Infraction, InfractionKind
from irl_vla.envs.tick import Tick
from irl_vla.scoring.fast_scorer import _boxes_overlap

#: [m] the pre-test on the ego's axes rejects only boxes separated by more than this (rounding of the full test).
SEPARATION_SLACK = 1e-6

_KIND_OF_CLASS: dict[str, InfractionKind] = {
    AgentClass.VEHICLE.value: InfractionKind.COLLISION_VEHICLE,
    AgentClass.BICYCLE.value: InfractionKind.COLLISION_VEHICLE,
    AgentClass.PEDESTRIAN.value: InfractionKind.COLLISION_PEDESTRIAN,
}


def collision_kind(class_name: str) -> InfractionKind:
    """The collision kind of hitting an object of class ``class_name``."""
    return _KIND_OF_CLASS.get(class_name, InfractionKind.COLLISION_STATIC)


@dataclass
class CollisionDetector:
    """Counts collisions once each.

    Attributes:
        same_object_time: the same object id is ignored this long after a counted collision [s].
        same_place_distance: collisions this close to the last counted one are ignored until the ego moved
            farther away [m].
        stopped_speed: collisions while the ego is slower than this are not counted [m/s].
    """

    same_object_time: float = 5.0
    same_place_distance: float = 5.0
    stopped_speed: float = 0.1

    def __post_init__(self) -> None:
        self._last_time: dict[str, float] = {}
        self._last_place: np.ndarray | None = None

    def touching(self, tick: Tick) -> np.ndarray:
        """Indices of the boxes the ego's box overlaps ``(M,)``."""
        boxes = tick.boxes
        if len(boxes) == 0:
            return np.zeros(0, dtype=np.int64)
        center = tick.ego_center
        half_ego = np.array([tick.vehicle.length / 2, tick.vehicle.width / 2])
        dx = boxes[:, BoundingBoxIndex.X] - center[SE2Index.X]
        dy = boxes[:, BoundingBoxIndex.Y] - center[SE2Index.Y]
        half_l, half_w = boxes[:, BoundingBoxIndex.LENGTH] / 2, boxes[:, BoundingBoxIndex.WIDTH] / 2
        reach = np.hypot(*half_ego) + np.hypot(half_l, half_w)
        idx = np.flatnonzero(dx * dx + dy * dy <= reach * reach)
        if len(idx) == 0:
            return idx
        # The two separating axes of the ego's own box first, with a margin: a box they separate by more than
        # ``SEPARATION_SLACK`` is separated for the full test too, so only the others go through it.
        cos, sin = math.cos(center[SE2Index.HEADING]), math.sin(center[SE2Index.HEADING])
        rel = boxes[idx, BoundingBoxIndex.HEADING] - center[SE2Index.HEADING]
        rel_cos, rel_sin = np.abs(np.cos(rel)), np.abs(np.sin(rel))
        along = np.abs(dx[idx] * cos + dy[idx] * sin) - half_l[idx] * rel_cos - half_w[idx] * rel_sin
        across = np.abs(dy[idx] * cos - dx[idx] * sin) - half_l[idx] * rel_sin - half_w[idx] * rel_cos
        idx = idx[(along <= half_ego[0] + SEPARATION_SLACK) & (across <= half_ego[1] + SEPARATION_SLACK)]
        if len(idx) == 0:
            return idx
        hit = _boxes_overlap(
            center[XY],
            center[SE2Index.HEADING],
            half_ego,
            np.stack([boxes[idx, BoundingBoxIndex.X], boxes[idx, BoundingBoxIndex.Y]], axis=1),
            boxes[idx, BoundingBoxIndex.HEADING],
            np.stack([half_l[idx], half_w[idx]], axis=1),
        )
        return idx[hit]

    def update(self, tick: Tick) -> list[Infraction]:
        """Collisions that count at this tick."""
        if self._last_place is not None and np.linalg.norm(tick.ego_xy - self._last_place) > self.same_place_distance:
            self._last_place = None
        events = []
        for i in self.touching(tick):
            other = tick.ids[i]
            if abs(tick.ego_speed) < self.stopped_speed:
                continue
            if tick.time - self._last_time.get(other, -np.inf) < self.same_object_time:
                continue
            if self._last_place is not None:
                continue
            kind = collision_kind(tick.names[i])
            self._last_time[other] = tick.time
            self._last_place = tick.ego_xy.copy()
            events.append(
                Infraction(
                    kind,
                    tick.time,
                    tick.ego_xy,
                    other_id=other,
                    message=f"Agent collided against object {other} ({tick.names[i]}) at t={tick.time:.1f} s",
                )
            )
        return events
