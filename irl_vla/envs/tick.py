"""``Tick``: the world at one simulation step as the infraction detectors read it (global frame)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import XY, AgentClass, BoundingBoxIndex, SE2Index
from irl_vla.data.geometry import relative_to_absolute
from irl_vla.data.scene import Frame
from irl_vla.data.validation import check_array, check_length
from irl_vla.data.vehicle import PACIFICA, VehicleParameters

#: Shapes ``Tick`` checks (an enum's ``len`` is a Python call: made once).
_POSE_SHAPE, _BOXES_SHAPE = (len(SE2Index),), (None, len(BoundingBoxIndex))


@dataclass
class Tick:
    """The world at one simulation step.

    Attributes:
        time: simulated time since the reset [s].
        ego_pose: global rear-axle pose (x [m], y [m], heading [rad]) ``(3,)``.
        ego_speed: ego speed [m/s] (signed: negative when reversing).
        boxes: other objects' boxes in the global frame, columns by ``BoundingBoxIndex`` ``(N, 7)`` (a backend may
            leave out boxes too far from the ego to touch its box: only the collision test reads them).
        names: class name per box (``AgentClass`` values).
        ids: track token per box.
        speeds: speed per box [m/s] ``(N,)``.
        red_connectors: ids of the lane connectors whose light is red now.
        lit_connectors: ids of every lane connector with a light (red or not).
        speed_limit: speed limit at the ego [m/s], None when unknown.
        traffic_speed: mean speed of the surrounding vehicles [m/s], None when there are none.
        vehicle: the ego's box and axle geometry.
    """

    time: float
    ego_pose: npt.NDArray[np.float64]
    ego_speed: float
    boxes: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, len(BoundingBoxIndex))))
    names: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    speeds: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    red_connectors: frozenset[str] = frozenset()
    lit_connectors: frozenset[str] = frozenset()
    speed_limit: float | None = None
    traffic_speed: float | None = None
    vehicle: VehicleParameters = PACIFICA

    def __post_init__(self) -> None:
        self.ego_pose = np.asarray(self.ego_pose, dtype=np.float64)
        check_array(self.ego_pose, "Tick.ego_pose", _POSE_SHAPE)
        check_array(self.boxes, "Tick.boxes", _BOXES_SHAPE)
        check_length(self.names, "Tick.names", len(self.boxes))
        check_length(self.ids, "Tick.ids", len(self.boxes))
        check_array(self.speeds, "Tick.speeds", (len(self.boxes),))
        if not math.isfinite(self.time) or not math.isfinite(self.ego_speed):
            raise ValueError(f"Tick: non-finite time {self.time} or ego speed {self.ego_speed}")

    @property
    def ego_xy(self) -> npt.NDArray[np.float64]:
        """Global rear-axle position ``(2,)`` [m]."""
        return self.ego_pose[XY]

    @cached_property
    def ego_center(self) -> npt.NDArray[np.float64]:
        """Global pose of the ego's box centre ``(3,)``."""
        x, y, h = self.ego_pose
        d = self.vehicle.rear_axle_to_center
        return np.array([x + d * math.cos(h), y + d * math.sin(h), h])


def tick_from_frame(
    frame: Frame, time: float, *, speed_limit: float | None = None, traffic_speed: float | None = None
) -> Tick:
    """The ``Tick`` of a frame: boxes moved from the frame's ego frame to the global frame.

    ``traffic_speed`` defaults to the mean speed of the frame's vehicles (None without vehicles).
    """
    ego = frame.ego_status
    ann = frame.annotations
    boxes = np.array(ann.boxes, dtype=np.float64)  # (N, 7)
    if len(boxes):
        pose_cols = [BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]
        boxes[:, pose_cols] = relative_to_absolute(boxes[:, pose_cols], ego.ego_pose)
    speeds = np.hypot(ann.velocity_3d[:, 0], ann.velocity_3d[:, 1]) if len(boxes) else np.zeros(0)
    if traffic_speed is None:
        vehicles = np.array([n == AgentClass.VEHICLE.value for n in ann.names], dtype=bool)
        traffic_speed = float(speeds[vehicles].mean()) if vehicles.any() else None
    speed = float(np.hypot(*ego.ego_velocity)) * (1.0 if ego.ego_velocity[0] >= 0 else -1.0)
    return Tick(
        time=time,
        ego_pose=np.asarray(ego.ego_pose, dtype=np.float64),
        ego_speed=speed,
        boxes=boxes,
        names=list(ann.names),
        ids=list(ann.track_tokens),
        speeds=speeds,
        red_connectors=frozenset(cid for cid, red in frame.traffic_lights if red),
        lit_connectors=frozenset(cid for cid, _ in frame.traffic_lights),
        speed_limit=speed_limit,
        traffic_speed=traffic_speed,
    )
