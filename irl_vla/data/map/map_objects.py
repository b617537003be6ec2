"""Map objects, one dataclass per nuPlan semantic layer, with ids as strings.

Graph semantics follow nuPlan: a lane's successors are lane connectors and a connector's successors are lanes;
a roadblock's successors are roadblock connectors and vice versa. Traffic-light ids are lane-connector ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from shapely.geometry import Polygon

from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import path_arc_length
from irl_vla.data.validation import check_array


class MapLayer(str, Enum):
    """Semantic layers of the map (nuPlan's vector layers)."""

    LANE = "lane"
    LANE_CONNECTOR = "lane_connector"
    ROADBLOCK = "roadblock"
    ROADBLOCK_CONNECTOR = "roadblock_connector"
    INTERSECTION = "intersection"
    CROSSWALK = "crosswalk"
    CARPARK_AREA = "carpark_area"
    STOP_LINE = "stop_line"


class IntersectionType(IntEnum):
    """Intersection kinds (nuPlan ``intersection_type_fid`` values)."""

    DEFAULT = 0
    TRAFFIC_LIGHT = 1
    STOP_SIGN = 2
    BRANCH = 3
    MERGE = 4
    PASS_THROUGH = 5


class StopLineType(IntEnum):
    """Stop-line kinds (nuPlan ``StopLineType``)."""

    PED_CROSSING = 0
    STOP_SIGN = 1
    TRAFFIC_LIGHT = 2
    TURN_STOP = 3
    YIELD = 4
    UNKNOWN = 5


def _check_polygon(polygon: Polygon, where: str) -> None:
    if not isinstance(polygon, Polygon):
        raise ValueError(f"{where}.polygon: expected a shapely Polygon, got {type(polygon).__name__}")
    if polygon.is_empty or not polygon.is_valid:
        raise ValueError(f"{where}.polygon: empty or invalid polygon")


@dataclass
class MapObject:
    """Base of every map object: a string id and a polygon."""

    layer: ClassVar[MapLayer]
    id: str
    polygon: Polygon

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"{type(self).__name__}.id: expected a non-empty string, got {self.id!r}")
        _check_polygon(self.polygon, f"{type(self).__name__} {self.id}")

    def references(self) -> dict[str, tuple[tuple[MapLayer, ...], list[str]]]:
        """Ids this object points at, by field name, with the layers they may live in."""
        return {}


@dataclass
class _LaneBase(MapObject):
    """Shared fields of lanes and lane connectors.

    Attributes:
        centerline: baseline path in driving direction, (x [m], y [m], heading [rad]) ``(N, 3)``.
        left_boundary: left edge polyline [m] ``(M, 2)``.
        right_boundary: right edge polyline [m] ``(M, 2)``.
        speed_limit: [m/s], ``None`` when unknown.
        roadblock_id: roadblock (or roadblock connector) this lane belongs to.
        incoming_ids: predecessor ids.
        outgoing_ids: successor ids.
    """

    centerline: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3)))
    left_boundary: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    right_boundary: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    speed_limit: float | None = None
    roadblock_id: str = ""
    incoming_ids: list[str] = field(default_factory=list)
    outgoing_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = f"{type(self).__name__} {self.id}"
        check_array(self.centerline, f"{name}.centerline", (None, len(SE2Index)))
        if len(self.centerline) < 2:
            raise ValueError(f"{name}.centerline: expected at least 2 poses, got {len(self.centerline)}")
        check_array(self.left_boundary, f"{name}.left_boundary", (None, 2))
        check_array(self.right_boundary, f"{name}.right_boundary", (None, 2))
        if self.speed_limit is not None and not (self.speed_limit > 0 and np.isfinite(self.speed_limit)):
            raise ValueError(f"{name}.speed_limit: expected > 0 [m/s] or None, got {self.speed_limit}")

    @property
    def length(self) -> float:
        """Centerline length [m]."""
        return float(path_arc_length(self.centerline[:, : SE2Index.HEADING])[-1])


@dataclass
class Lane(_LaneBase):
    """A lane inside a roadblock. ``lane_index`` counts from the leftmost lane (0) to the right."""

    layer: ClassVar[MapLayer] = MapLayer.LANE
    lane_index: int = 0

    def references(self) -> dict[str, tuple[tuple[MapLayer, ...], list[str]]]:
        """Inherited, see superclass."""
        return {
            "roadblock_id": ((MapLayer.ROADBLOCK,), [self.roadblock_id]),
            "incoming_ids": ((MapLayer.LANE_CONNECTOR,), self.incoming_ids),
            "outgoing_ids": ((MapLayer.LANE_CONNECTOR,), self.outgoing_ids),
        }


@dataclass
class LaneConnector(_LaneBase):
    """A lane through an intersection or a junction, from one lane to another.

    Attributes:
        stop_line_ids: stop lines that govern entering this connector.
        intersection_id: intersection it crosses, if any.
        turn: ``"straight"``, ``"left"``, ``"right"`` or ``"u_turn"``.
    """

    layer: ClassVar[MapLayer] = MapLayer.LANE_CONNECTOR
    stop_line_ids: list[str] = field(default_factory=list)
    intersection_id: str | None = None
    turn: str = "straight"

    def references(self) -> dict[str, tuple[tuple[MapLayer, ...], list[str]]]:
        """Inherited, see superclass."""
        return {
            "roadblock_id": ((MapLayer.ROADBLOCK_CONNECTOR,), [self.roadblock_id]),
            "incoming_ids": ((MapLayer.LANE,), self.incoming_ids),
            "outgoing_ids": ((MapLayer.LANE,), self.outgoing_ids),
            "stop_line_ids": ((MapLayer.STOP_LINE,), self.stop_line_ids),
            "intersection_id": (
                (MapLayer.INTERSECTION,),
                [] if self.intersection_id is None else [self.intersection_id],
            ),
        }


@dataclass
class Roadblock(MapObject):
    """A road section: parallel lanes with the same direction, ordered left to right."""

    layer: ClassVar[MapLayer] = MapLayer.ROADBLOCK
    lane_ids: list[str] = field(default_factory=list)
    incoming_ids: list[str] = field(default_factory=list)
    outgoing_ids: list[str] = field(default_factory=list)

    def references(self) -> dict[str, tuple[tuple[MapLayer, ...], list[str]]]:
        """Inherited, see superclass."""
        return {
            "lane_ids": ((MapLayer.LANE,), self.lane_ids),
            "incoming_ids": ((MapLayer.ROADBLOCK_CONNECTOR,), self.incoming_ids),
            "outgoing_ids": ((MapLayer.ROADBLOCK_CONNECTOR,), self.outgoing_ids),
        }


@dataclass
class RoadblockConnector(MapObject):
    """The lane connectors joining one roadblock to the next."""

    layer: ClassVar[MapLayer] = MapLayer.ROADBLOCK_CONNECTOR
    lane_ids: list[str] = field(default_factory=list)
    incoming_ids: list[str] = field(default_factory=list)
    outgoing_ids: list[str] = field(default_factory=list)
    intersection_id: str | None = None

    def references(self) -> dict[str, tuple[tuple[MapLayer, ...], list[str]]]:
        """Inherited, see superclass."""
        return {
            "lane_ids": ((MapLayer.LANE_CONNECTOR,), self.lane_ids),
            "incoming_ids": ((MapLayer.ROADBLOCK,), self.incoming_ids),
            "outgoing_ids": ((MapLayer.ROADBLOCK,), self.outgoing_ids),
            "intersection_id": (
                (MapLayer.INTERSECTION,),
                [] if self.intersection_id is None else [self.intersection_id],
            ),
        }


@dataclass
class Intersection(MapObject):
    """A junction area."""

    layer: ClassVar[MapLayer] = MapLayer.INTERSECTION
    intersection_type: IntersectionType = IntersectionType.DEFAULT


@dataclass
class Crosswalk(MapObject):
    """A pedestrian crossing."""

    layer: ClassVar[MapLayer] = MapLayer.CROSSWALK


@dataclass
class CarparkArea(MapObject):
    """A drivable parking area."""

    layer: ClassVar[MapLayer] = MapLayer.CARPARK_AREA


@dataclass
class StopLine(MapObject):
    """A stop line; for traffic-light lines ``lane_connector_ids`` are also the traffic-light ids."""

    layer: ClassVar[MapLayer] = MapLayer.STOP_LINE
    stop_line_type: StopLineType = StopLineType.UNKNOWN
    lane_connector_ids: list[str] = field(default_factory=list)

    def references(self) -> dict[str, tuple[tuple[MapLayer, ...], list[str]]]:
        """Inherited, see superclass."""
        return {"lane_connector_ids": ((MapLayer.LANE_CONNECTOR,), self.lane_connector_ids)}


#: Dataclass of each layer.
LAYER_CLASSES: dict[MapLayer, type[MapObject]] = {
    cls.layer: cls
    for cls in (Lane, LaneConnector, Roadblock, RoadblockConnector, Intersection, Crosswalk, CarparkArea, StopLine)
}

#: Layers whose polygons form the drivable area in NAVSIM scoring (lanes are inside roadblocks).
DRIVABLE_LAYERS: tuple[MapLayer, ...] = (MapLayer.ROADBLOCK, MapLayer.INTERSECTION, MapLayer.CARPARK_AREA)
#: Layers holding drivable lanes.
LANE_LAYERS: tuple[MapLayer, ...] = (MapLayer.LANE, MapLayer.LANE_CONNECTOR)
