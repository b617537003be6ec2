"""Named column indices and categorical enums shared by the scene model.

Every array column with a meaning gets a name here, so code reads ``poses[..., SE2Index.HEADING]``
instead of ``poses[..., 2]``. Widths come from ``len(Enum)``.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class SE2Index(IntEnum):
    """Columns of an SE(2) pose ``(x [m], y [m], heading [rad])``."""

    X = 0
    Y = 1
    HEADING = 2


#: The position columns ``(x, y)`` of an SE(2) pose (and of any array whose first columns are x, y), usable
#: as ``poses[..., XY]``.
XY = slice(SE2Index.X, SE2Index.Y + 1)


class BoundingBoxIndex(IntEnum):
    """Columns of an annotation box ``(x, y, z, length, width, height [m], heading [rad])`` (NAVSIM order)."""

    X = 0
    Y = 1
    Z = 2
    LENGTH = 3
    WIDTH = 4
    HEIGHT = 5
    HEADING = 6


class LidarIndex(IntEnum):
    """Rows of a LiDAR point cloud array of shape ``(6, N)`` (NAVSIM order)."""

    X = 0
    Y = 1
    Z = 2
    INTENSITY = 3
    RING = 4
    ID = 5


class DrivingCommand(IntEnum):
    """Positions in the one-hot driving command (OpenScene order)."""

    LEFT = 0
    STRAIGHT = 1
    RIGHT = 2
    UNKNOWN = 3


class AgentClass(str, Enum):
    """Annotation class names, spelled as NAVSIM's ``Annotations.names``."""

    VEHICLE = "vehicle"
    PEDESTRIAN = "pedestrian"
    BICYCLE = "bicycle"
    TRAFFIC_CONE = "traffic_cone"
    BARRIER = "barrier"
    CZONE_SIGN = "czone_sign"
    GENERIC_OBJECT = "generic_object"

    @property
    def is_agent(self) -> bool:
        """Whether this class is a road user (nuPlan's agent types: vehicles, pedestrians, bicycles)."""
        return self in (AgentClass.VEHICLE, AgentClass.PEDESTRIAN, AgentClass.BICYCLE)


AGENT_CLASS_NAMES: frozenset[str] = frozenset(c.value for c in AgentClass)


class MetaAction(str, Enum):
    """High-level driving decision used as a language-side supervision label."""

    KEEP_LANE = "keep_lane"
    ACCELERATE = "accelerate"
    SLOW_DOWN = "slow_down"
    STOP = "stop"
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    CHANGE_LANE_LEFT = "change_lane_left"
    CHANGE_LANE_RIGHT = "change_lane_right"
    NUDGE_LEFT = "nudge_left"
    NUDGE_RIGHT = "nudge_right"
