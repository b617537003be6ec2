"""Map model: lanes, connectors, roadblocks, intersections, crosswalks, car parks, stop lines."""

from irl_vla.data.map.map_api import Map
from irl_vla.data.map.map_io import load_map, save_map
from irl_vla.data.map.map_objects import (
    CarparkArea,
    Crosswalk,
    Intersection,
    IntersectionType,
    Lane,
    LaneConnector,
    MapLayer,
    MapObject,
    Roadblock,
    RoadblockConnector,
    StopLine,
    StopLineType,
)

__all__ = [
    "CarparkArea",
    "Crosswalk",
    "Intersection",
    "IntersectionType",
    "Lane",
    "LaneConnector",
    "Map",
    "MapLayer",
    "MapObject",
    "Roadblock",
    "RoadblockConnector",
    "StopLine",
    "StopLineType",
    "load_map",
    "save_map",
]
