"""The BEV semantic map target: drivable area, crosswalks, lane centrelines and the annotated objects by class."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

import numpy as np
import torch
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry

from irl_vla.data.enums import AgentClass
from irl_vla.data.features.bev import BevGrid
from irl_vla.data.features.builder import TargetBuilder, TensorSpec
from irl_vla.data.features.targets import box_corners
from irl_vla.data.geometry import points_to_local
from irl_vla.data.map import MapLayer
from irl_vla.data.scene import Scene


class BevSemanticClass(IntEnum):
    """Classes of ``bev_semantic_map``; where several cover a cell, the highest wins."""

    BACKGROUND = 0
    DRIVABLE_AREA = 1  # roadblocks, roadblock connectors, car parks
    CROSSWALK = 2
    LANE_CENTERLINE = 3  # centrelines of lanes and lane connectors
    STATIC_OBJECT = 4  # cones, barriers, construction signs, generic objects
    VEHICLE = 5
    BICYCLE = 6
    PEDESTRIAN = 7


#: Class painted for each annotation class.
OBJECT_CLASSES: dict[AgentClass, BevSemanticClass] = {
    AgentClass.VEHICLE: BevSemanticClass.VEHICLE,
    AgentClass.BICYCLE: BevSemanticClass.BICYCLE,
    AgentClass.PEDESTRIAN: BevSemanticClass.PEDESTRIAN,
    AgentClass.TRAFFIC_CONE: BevSemanticClass.STATIC_OBJECT,
    AgentClass.BARRIER: BevSemanticClass.STATIC_OBJECT,
    AgentClass.CZONE_SIGN: BevSemanticClass.STATIC_OBJECT,
    AgentClass.GENERIC_OBJECT: BevSemanticClass.STATIC_OBJECT,
}

_DRIVABLE_LAYERS = (MapLayer.ROADBLOCK, MapLayer.ROADBLOCK_CONNECTOR, MapLayer.CARPARK_AREA)


@dataclass
class BevSemanticTargetBuilder(TargetBuilder):
    """A class id per BEV cell, from the map around the current pose and the current boxes.

    A cell takes a class when its centre lies in (or on the edge of) one of the class's ego-frame shapes.

    Attributes:
        grid: the BEV grid.
        centerline_width: width of the band around lane centrelines [cells].
    """

    name: ClassVar[str] = "bev_semantic_map"
    version: ClassVar[int] = 1
    grid: BevGrid = field(default_factory=BevGrid)
    centerline_width: int = 1

    def __post_init__(self) -> None:
        if self.centerline_width < 1:
            raise ValueError(f"BevSemanticTargetBuilder.centerline_width: expected >= 1, got {self.centerline_width}")

    def specs(self) -> dict[str, TensorSpec]:
        """``bev_semantic_map`` ``(H, W)``."""
        return {"bev_semantic_map": TensorSpec(("H", "W"), torch.int64, "BevSemanticClass per cell")}

    def dims(self) -> dict[str, int]:
        """H x W grid cells."""
        return {"H": self.grid.height, "W": self.grid.width}

    def compute(self, scene: Scene) -> dict[str, torch.Tensor]:
        """Paint the classes in ``BevSemanticClass`` order (a later class covers an earlier one)."""
        if scene.map_api is None:
            raise ValueError(f"{self.name}: scene {scene.token} has no map")
        ego = scene.current_frame.ego_status.ego_pose
        near = scene.map_api.query_radius(
            ego[:2], self.grid.radius, (*_DRIVABLE_LAYERS, MapLayer.CROSSWALK, MapLayer.LANE, MapLayer.LANE_CONNECTOR)
        )

        def local(polygon: Polygon) -> Polygon:
            return Polygon(
                points_to_local(np.asarray(polygon.exterior.coords)[:, :2], ego),
                [points_to_local(np.asarray(r.coords)[:, :2], ego) for r in polygon.interiors],
            )

        lanes = [*near[MapLayer.LANE], *near[MapLayer.LANE_CONNECTOR]]
        half_width = self.centerline_width * self.grid.resolution / 2
        layers: list[tuple[BevSemanticClass, list[BaseGeometry]]] = [
            (BevSemanticClass.DRIVABLE_AREA, [local(o.polygon) for ly in _DRIVABLE_LAYERS for o in near[ly]]),
            (BevSemanticClass.CROSSWALK, [local(o.polygon) for o in near[MapLayer.CROSSWALK]]),
            (
                BevSemanticClass.LANE_CENTERLINE,
                [LineString(points_to_local(ln.centerline[:, :2], ego)).buffer(half_width) for ln in lanes],
            ),
        ]
        ann = scene.current_frame.annotations
        painted = [OBJECT_CLASSES[AgentClass(n)] for n in ann.names]
        for cls in sorted(set(OBJECT_CLASSES.values())):
            layers.append((cls, [Polygon(box_corners(ann.boxes[k])) for k, c in enumerate(painted) if c is cls]))
        out = np.full((self.grid.height, self.grid.width), BevSemanticClass.BACKGROUND, dtype=np.int64)  # (H, W)
        for cls, geometries in layers:
            out[self.grid.mask(geometries)] = cls
        return {"bev_semantic_map": torch.from_numpy(out)}
