"""The route-centreline target: where the route's lane goes ahead of the ego (a target only, never an input).

From the current frame's route (roadblock ids) and the map, the route's lane sequence from the lane under the
ego (``Map.route_centerline``) is projected onto at the ego's rear axle; the target holds that centreline's
poses at fixed arc lengths ahead of the projection (``spacing``, ``2 * spacing``, ... [m]), in the current ego
frame. Points beyond the end of the route's lanes (or every point, without a route) are masked out. It
supervises the VLA's route head, which must read the bend of the road ahead from the cameras and LiDAR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from irl_vla.data.driving_command import prepare_centerline, project_arc_length
from irl_vla.data.enums import SE2Index
from irl_vla.data.features.builder import TargetBuilder, TensorSpec
from irl_vla.data.geometry import absolute_to_relative, interpolate_poses
from irl_vla.data.scene import Scene


@dataclass
class RouteCenterlineTargetBuilder(TargetBuilder):
    """Poses of the route's centreline at fixed arc lengths ahead of the ego, with a validity mask.

    Attributes:
        num_points: points ahead (T).
        spacing: arc length between them, and of the first ahead of the ego's projection [m].
    """

    name: ClassVar[str] = "route_centerline"
    version: ClassVar[int] = 1
    num_points: int = 10
    spacing: float = 5.0

    def __post_init__(self) -> None:
        if self.num_points < 1 or not self.spacing > 0:
            raise ValueError(
                f"RouteCenterlineTargetBuilder: expected num_points >= 1 and spacing > 0, got {self.num_points}, "
                f"{self.spacing}"
            )

    def distances(self) -> np.ndarray:
        """Arc lengths ahead of the ego's projection ``(T,)`` [m]."""
        return self.spacing * np.arange(1, self.num_points + 1, dtype=np.float64)

    def specs(self) -> dict[str, TensorSpec]:
        """``route_centerline`` ``(T, D)`` and ``route_centerline_mask`` ``(T,)``."""
        return {
            "route_centerline": TensorSpec(
                ("T", "D"), torch.float32, "(x [m], y [m], heading [rad]) by SE2Index, ego frame; zero where masked"
            ),
            "route_centerline_mask": TensorSpec(("T",), torch.bool, "true where the route's lanes reach the point"),
        }

    def dims(self) -> dict[str, int]:
        """T points, D = ``len(SE2Index)``."""
        return {"T": self.num_points, "D": len(SE2Index)}

    def compute(self, scene: Scene) -> dict[str, torch.Tensor]:
        """The centreline ahead of the current frame's ego.

        Raises:
            ValueError: naming the scene when it has no map.
        """
        if scene.map_api is None:
            raise ValueError(f"{self.name}: scene {scene.token} has no map")
        frame = scene.current_frame
        ego = frame.ego_status.ego_pose
        poses = np.zeros((self.num_points, len(SE2Index)), dtype=np.float32)  # (T, 3)
        mask = np.zeros(self.num_points, dtype=bool)
        route = None
        if frame.roadblock_ids:
            route = prepare_centerline(scene.map_api.route_centerline(frame.roadblock_ids, ego))
        if route is not None:
            wanted = project_arc_length(route, ego[: SE2Index.HEADING]) + self.distances()  # (T,)
            mask = wanted <= route.s[-1]
            if mask.any():
                ahead = interpolate_poses(route.s, route.line, wanted[mask])  # (T', 3) map frame
                poses[mask] = absolute_to_relative(ahead, ego)
        return {"route_centerline": torch.from_numpy(poses), "route_centerline_mask": torch.from_numpy(mask)}
