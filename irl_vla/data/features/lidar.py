"""LiDAR feature: a bird's-eye histogram of the point cloud (low returns, high returns), optionally with intensity.

The ground returns' intensity shows what the counts cannot: lane paint and the road's surface reflect differently
from the verge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

import numpy as np
import torch

from irl_vla.data.enums import LidarIndex
from irl_vla.data.features.bev import BevGrid
from irl_vla.data.features.builder import FeatureBuilder, TensorSpec
from irl_vla.data.scene import AgentInput
from irl_vla.data.sensors import SensorConfig


class LidarBevChannel(IntEnum):
    """Channels of ``lidar_bev``."""

    BELOW = 0  # returns below ``split_height`` (mostly ground)
    ABOVE = 1  # returns at or above it (objects)
    INTENSITY = 2  # largest intensity of the returns below ``split_height`` (only with ``intensity``)


@dataclass
class LidarBevBuilder(FeatureBuilder):
    """Point counts per BEV cell, split by height, clipped at ``max_per_cell`` and scaled to [0, 1].

    Points are taken in the LiDAR frame (the ego frame of the embedded world, ground at z = 0). With
    ``intensity``, a third channel holds the largest return intensity (in [0, 1]) of the cell's low returns, 0
    where it has none: lane markings return brightly and the road's surface a little more than the verge, so the
    road's shape ahead is in the sweep, not only in the cameras.

    Attributes:
        grid: the BEV grid.
        frames: history indices (0 = oldest).
        split_height: height separating the two channels [m].
        max_height: returns above this are dropped [m].
        max_per_cell: count that saturates a cell.
        intensity: add the ``INTENSITY`` channel.
    """

    name: ClassVar[str] = "lidar_bev"
    version: ClassVar[int] = 1
    grid: BevGrid = field(default_factory=BevGrid)
    frames: tuple[int, ...] = (3,)
    split_height: float = 0.2
    max_height: float = 4.0
    max_per_cell: int = 5
    intensity: bool = False

    def __post_init__(self) -> None:
        self.frames = tuple(self.frames)
        if not self.frames or any(i < 0 for i in self.frames):
            raise ValueError(f"LidarBevBuilder.frames: expected history indices >= 0, got {list(self.frames)}")
        if self.max_per_cell < 1:
            raise ValueError(f"LidarBevBuilder.max_per_cell: expected >= 1, got {self.max_per_cell}")
        if not self.max_height > self.split_height:
            raise ValueError(
                f"LidarBevBuilder: max_height {self.max_height} m must exceed split_height {self.split_height} m"
            )

    def params(self) -> dict[str, Any]:
        """The fields; ``intensity`` only when set, so that entries cached before it existed stay current."""
        out = super().params()
        if not self.intensity:
            del out["intensity"]
        return out

    def specs(self) -> dict[str, TensorSpec]:
        """``lidar_bev`` ``(T, C, H, W)``."""
        return {"lidar_bev": TensorSpec(("T", "C", "H", "W"), torch.float32, "saturated counts by LidarBevChannel")}

    def dims(self) -> dict[str, int]:
        """T frames, C = ``len(LidarBevChannel)``, H x W grid cells."""
        return {"T": len(self.frames), "C": self.channels, "H": self.grid.height, "W": self.grid.width}

    @property
    def channels(self) -> int:
        """C of ``lidar_bev``: the two counts, and the intensity when asked."""
        return len(LidarBevChannel) if self.intensity else LidarBevChannel.INTENSITY

    def sensor_config(self) -> SensorConfig:
        """The LiDAR at the chosen history frames."""
        return SensorConfig(lidar_pc=list(self.frames))

    def compute(self, agent_input: AgentInput) -> dict[str, torch.Tensor]:
        """Histogram each chosen sweep."""
        sweeps = []
        for index in self.frames:
            if index >= len(agent_input.lidars):
                raise ValueError(
                    f"{self.name}: history index {index} asked, the agent input has {len(agent_input.lidars)} frames"
                )
            lidar = agent_input.lidars[index]
            if lidar is None:
                raise ValueError(f"{self.name}: the LiDAR is not loaded at history index {index}")
            sweeps.append(self.histogram(lidar.lidar_pc))
        return {"lidar_bev": torch.from_numpy(np.stack(sweeps))}

    def histogram(self, lidar_pc: np.ndarray) -> np.ndarray:
        """The channels ``(C, H, W)`` of one point cloud ``(6, P)`` (rows ``LidarIndex``, LiDAR frame)."""
        grid = self.grid
        z = lidar_pc[LidarIndex.Z]
        keep = z <= self.max_height
        xy = np.stack([lidar_pc[LidarIndex.X][keep], lidar_pc[LidarIndex.Y][keep]], axis=1).astype(np.float64)
        channel = np.where(z[keep] < self.split_height, LidarBevChannel.BELOW, LidarBevChannel.ABOVE)
        i, j, inside = grid.cell_indices(xy)
        flat = (channel[inside] * grid.height + i[inside]) * grid.width + j[inside]
        counts = np.bincount(flat, minlength=LidarBevChannel.INTENSITY * grid.height * grid.width)
        out = counts.reshape(LidarBevChannel.INTENSITY, grid.height, grid.width).astype(np.float32)
        np.minimum(out, self.max_per_cell, out=out)
        out /= self.max_per_cell
        if not self.intensity:
            return out
        bright = np.zeros(grid.height * grid.width, dtype=np.float32)
        low = inside & (channel == LidarBevChannel.BELOW)
        intensity = np.clip(lidar_pc[LidarIndex.INTENSITY][keep][low], 0.0, 1.0).astype(np.float32)
        np.maximum.at(bright, i[low] * grid.width + j[low], intensity)
        return np.concatenate([out, bright.reshape(1, grid.height, grid.width)])
