"""Where the route's traffic lights are red, now and at each future frame of the log (privileged).

The simulator's traffic-light compliance (TLC) fails a plan whose ego box touches a lane connector of the route
while that connector's light is red, with the light states of the log's frames (current and future, held between
frames). This target paints those red connectors on the BEV grid, one channel per frame: channel 0 the current
frame, channel t the frame t steps (0.5 s each) later. Frames past the scene's end repeat its last frame's states,
as the scorer's zero-order hold does. The map gives which connectors are on the route and their polygons; the log
gives their states, the future ones included, so a model reading it reads the log's future.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from shapely.geometry import Polygon

from irl_vla.data.features.bev import BevGrid
from irl_vla.data.features.builder import TargetBuilder, TensorSpec
from irl_vla.data.geometry import points_to_local
from irl_vla.data.map import MapLayer
from irl_vla.data.scene import Scene


@dataclass
class RedLightTargetBuilder(TargetBuilder):
    """``red_light_map``: the route's red lane connectors on the BEV grid, now and at the next ``num_poses`` frames.

    Attributes:
        grid: the BEV grid.
        num_poses: future frames (channels 1 .. T; channel 0 is the current frame).
    """

    name: ClassVar[str] = "red_lights"
    version: ClassVar[int] = 1
    grid: BevGrid = field(default_factory=BevGrid)
    num_poses: int = 8

    def __post_init__(self) -> None:
        if self.num_poses < 1:
            raise ValueError(f"RedLightTargetBuilder.num_poses: expected >= 1, got {self.num_poses}")

    def specs(self) -> dict[str, TensorSpec]:
        """``red_light_map`` ``(T, H, W)``."""
        return {"red_light_map": TensorSpec(("T", "H", "W"), torch.bool, "red route connector, now then per frame")}

    def dims(self) -> dict[str, int]:
        """T = 1 + ``num_poses`` frames, H x W grid cells."""
        return {"T": 1 + self.num_poses, "H": self.grid.height, "W": self.grid.width}

    def compute(self, scene: Scene) -> dict[str, torch.Tensor]:
        """Paint each frame's red route connectors (the connectors' polygons in the current ego frame)."""
        if scene.map_api is None:
            raise ValueError(f"{self.name}: scene {scene.token} has no map")
        out = np.zeros((1 + self.num_poses, self.grid.height, self.grid.width), dtype=bool)  # (T, H, W)
        current = scene.current_frame
        route = scene.map_api.route_lanes(list(current.roadblock_ids))
        connectors = {lane.id for lane in route if lane.layer == MapLayer.LANE_CONNECTOR}
        last = len(scene.frames) - 1
        frames = [scene.frames[min(scene.current_index + t, last)] for t in range(1 + self.num_poses)]
        red = [{cid for cid, is_red in f.traffic_lights if is_red and cid in connectors} for f in frames]
        ego = current.ego_status.ego_pose
        masks: dict[str, np.ndarray] = {}
        for t, ids in enumerate(red):
            for cid in sorted(ids):
                if cid not in masks:
                    ring = np.asarray(scene.map_api.get_lane(cid).polygon.exterior.coords)[:, :2]
                    masks[cid] = self.grid.mask([Polygon(points_to_local(ring, ego))])
                out[t] |= masks[cid]
        return {"red_light_map": torch.from_numpy(out)}
