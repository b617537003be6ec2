"""The logged future of the annotated objects (privileged): where each box of ``agents`` is at each future frame.

A reward model stands in for the simulator, which scores a plan against the objects' *logged* futures (log
replay); this target gives it those futures for the boxes ``AgentTargetBuilder`` keeps (same selection, same
order), each matched over the frames by its track token and expressed in the current ego frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

import numpy as np
import torch

from irl_vla.data.enums import BoundingBoxIndex
from irl_vla.data.features.bev import BevGrid
from irl_vla.data.features.builder import TargetBuilder, TensorSpec
from irl_vla.data.features.targets import nearest_on_grid
from irl_vla.data.geometry import absolute_to_relative, relative_to_absolute
from irl_vla.data.scene import Scene


class AgentFutureIndex(IntEnum):
    """Columns of ``agent_future_states`` (current ego frame)."""

    X = 0  # [m] box centre
    Y = 1  # [m]
    HEADING = 2  # [rad]


@dataclass
class AgentFutureTargetBuilder(TargetBuilder):
    """Boxes of the current frame's kept objects at each of the next ``num_poses`` frames (0.5 s apart).

    Attributes:
        max_agents: boxes kept (A), as ``agents``.
        grid: only boxes whose centre lies on this grid now are kept, as ``agents``.
        num_poses: future frames (T).
    """

    name: ClassVar[str] = "agent_futures"
    version: ClassVar[int] = 1
    max_agents: int = 30
    grid: BevGrid = field(default_factory=BevGrid)
    num_poses: int = 8

    def __post_init__(self) -> None:
        if self.max_agents < 1 or self.num_poses < 1:
            got = f"{self.max_agents}, {self.num_poses}"
            raise ValueError(f"AgentFutureTargetBuilder: expected max_agents, num_poses >= 1, got {got}")

    def specs(self) -> dict[str, TensorSpec]:
        """``agent_future_states`` ``(A, T, D)``, ``agent_future_mask`` ``(A, T)``."""
        return {
            "agent_future_states": TensorSpec(("A", "T", "D"), torch.float32, "poses by AgentFutureIndex, 0 if absent"),
            "agent_future_mask": TensorSpec(("A", "T"), torch.bool, "true where the box is in that frame's log"),
        }

    def dims(self) -> dict[str, int]:
        """A boxes, T frames, D = ``len(AgentFutureIndex)``."""
        return {"A": self.max_agents, "T": self.num_poses, "D": len(AgentFutureIndex)}

    def compute(self, scene: Scene) -> dict[str, torch.Tensor]:
        """The kept boxes' logged futures (frames past the scene's end, or where a track is gone, masked)."""
        current = scene.current_frame
        keep = nearest_on_grid(current.annotations, self.grid, self.max_agents)
        tracks = [current.annotations.track_tokens[k] for k in keep]
        states = np.zeros((self.max_agents, self.num_poses, len(AgentFutureIndex)), dtype=np.float32)  # (A, T, D)
        mask = np.zeros((self.max_agents, self.num_poses), dtype=bool)
        origin = current.ego_status.ego_pose
        pose_cols = [BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]
        for t in range(self.num_poses):
            index = scene.current_index + 1 + t
            if index >= len(scene.frames):
                break
            frame = scene.frames[index]
            where = {tok: i for i, tok in enumerate(frame.annotations.track_tokens)}
            rows = [(a, where[tok]) for a, tok in enumerate(tracks) if tok in where]
            if not rows:
                continue
            agents, boxes = (np.array(c) for c in zip(*rows, strict=True))
            local = frame.annotations.boxes[boxes][:, pose_cols]  # (n, 3) in that frame's ego frame
            states[agents, t] = absolute_to_relative(relative_to_absolute(local, frame.ego_status.ego_pose), origin)
            mask[agents, t] = True
        return {"agent_future_states": torch.from_numpy(states), "agent_future_mask": torch.from_numpy(mask)}
