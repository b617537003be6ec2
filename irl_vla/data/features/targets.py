"""Targets from the privileged scene: the expert's trajectory, the annotated objects and the meta-action."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch

from irl_vla.data.enums import AgentClass, BoundingBoxIndex, MetaAction, SE2Index
from irl_vla.data.features.bev import BevGrid
from irl_vla.data.features.builder import TargetBuilder, TensorSpec
from irl_vla.data.geometry import transform_points
from irl_vla.data.scene import Annotations, Scene

#: Class index of padding and unknown labels (PyTorch's cross-entropy ``ignore_index`` default).
IGNORE_INDEX = -100

#: Class ids of ``agent_classes`` and of the annotation names: positions in ``AgentClass``.
AGENT_CLASSES: tuple[AgentClass, ...] = tuple(AgentClass)

#: Class ids of ``meta_action``: positions in ``MetaAction``.
META_ACTIONS: tuple[MetaAction, ...] = tuple(MetaAction)


class AgentStateIndex(IntEnum):
    """Columns of ``agent_states`` (current ego frame)."""

    X = 0  # [m] box centre
    Y = 1  # [m]
    HEADING = 2  # [rad]
    LENGTH = 3  # [m]
    WIDTH = 4  # [m]
    VELOCITY_X = 5  # [m/s]
    VELOCITY_Y = 6  # [m/s]


def box_corners(box: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Corners ``(4, 2)`` [m] (front left, rear left, rear right, front right) of an annotation box ``(7,)``."""
    half = box[[BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH]] / 2
    local = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]) * half
    return transform_points(local, box[[BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]])


@dataclass
class TrajectoryTargetBuilder(TargetBuilder):
    """The expert's logged future poses relative to the current frame, at the log interval (0.5 s).

    Attributes:
        num_poses: poses (T) of the target.
    """

    name: ClassVar[str] = "trajectory"
    version: ClassVar[int] = 1
    num_poses: int = 8

    def __post_init__(self) -> None:
        if self.num_poses < 1:
            raise ValueError(f"TrajectoryTargetBuilder.num_poses: expected >= 1, got {self.num_poses}")

    def specs(self) -> dict[str, TensorSpec]:
        """``trajectory`` ``(T, D)``."""
        return {"trajectory": TensorSpec(("T", "D"), torch.float32, "(x [m], y [m], heading [rad]) by SE2Index")}

    def dims(self) -> dict[str, int]:
        """T poses, D = ``len(SE2Index)``."""
        return {"T": self.num_poses, "D": len(SE2Index)}

    def compute(self, scene: Scene) -> dict[str, torch.Tensor]:
        """The logged future."""
        poses = scene.get_future_trajectory(self.num_poses).poses
        return {"trajectory": torch.from_numpy(np.ascontiguousarray(poses, dtype=np.float32))}


def nearest_on_grid(annotations: Annotations, grid: BevGrid, limit: int) -> npt.NDArray[np.int64]:
    """Indices of at most ``limit`` boxes whose centres lie on ``grid``, nearest to the ego first."""
    if not len(annotations):
        return np.zeros(0, dtype=np.int64)
    xy = annotations.boxes[:, [BoundingBoxIndex.X, BoundingBoxIndex.Y]]
    _, _, inside = grid.cell_indices(xy)
    candidates = np.flatnonzero(inside)
    order = np.argsort(np.hypot(xy[candidates, 0], xy[candidates, 1]), kind="stable")
    return candidates[order[:limit]]


@dataclass
class AgentTargetBuilder(TargetBuilder):
    """Boxes, velocities and classes of the annotated objects on the BEV grid, nearest first, padded to A.

    Attributes:
        max_agents: boxes kept (A).
        grid: only boxes whose centre lies on this grid are kept.
    """

    name: ClassVar[str] = "agents"
    version: ClassVar[int] = 1
    max_agents: int = 30
    grid: BevGrid = field(default_factory=BevGrid)

    def __post_init__(self) -> None:
        if self.max_agents < 1:
            raise ValueError(f"AgentTargetBuilder.max_agents: expected >= 1, got {self.max_agents}")

    def specs(self) -> dict[str, TensorSpec]:
        """``agent_states`` ``(A, D)``, ``agent_classes`` ``(A,)``, ``agent_mask`` ``(A,)``."""
        return {
            "agent_states": TensorSpec(("A", "D"), torch.float32, "boxes by AgentStateIndex, zero on padding"),
            "agent_classes": TensorSpec(("A",), torch.int64, "AgentClass positions, IGNORE_INDEX on padding"),
            "agent_mask": TensorSpec(("A",), torch.bool, "true on real boxes"),
        }

    def dims(self) -> dict[str, int]:
        """A boxes, D = ``len(AgentStateIndex)``."""
        return {"A": self.max_agents, "D": len(AgentStateIndex)}

    def compute(self, scene: Scene) -> dict[str, torch.Tensor]:
        """The current frame's annotations."""
        ann = scene.current_frame.annotations
        keep = nearest_on_grid(ann, self.grid, self.max_agents)
        states = np.zeros((self.max_agents, len(AgentStateIndex)), dtype=np.float32)  # (A, D)
        classes = np.full(self.max_agents, IGNORE_INDEX, dtype=np.int64)
        boxes = ann.boxes[keep]
        n = len(keep)
        states[:n, AgentStateIndex.X] = boxes[:, BoundingBoxIndex.X]
        states[:n, AgentStateIndex.Y] = boxes[:, BoundingBoxIndex.Y]
        states[:n, AgentStateIndex.HEADING] = boxes[:, BoundingBoxIndex.HEADING]
        states[:n, AgentStateIndex.LENGTH] = boxes[:, BoundingBoxIndex.LENGTH]
        states[:n, AgentStateIndex.WIDTH] = boxes[:, BoundingBoxIndex.WIDTH]
        states[:n, AgentStateIndex.VELOCITY_X] = ann.velocity_3d[keep, 0]
        states[:n, AgentStateIndex.VELOCITY_Y] = ann.velocity_3d[keep, 1]
        classes[:n] = [AGENT_CLASSES.index(AgentClass(ann.names[k])) for k in keep]
        mask = np.zeros(self.max_agents, dtype=bool)
        mask[:n] = True
        return {
            "agent_states": torch.from_numpy(states),
            "agent_classes": torch.from_numpy(classes),
            "agent_mask": torch.from_numpy(mask),
        }


@dataclass
class MetaActionTargetBuilder(TargetBuilder):
    """The current frame's meta-action label (a language-branch target, never a policy input)."""

    name: ClassVar[str] = "meta_action"
    version: ClassVar[int] = 1

    def specs(self) -> dict[str, TensorSpec]:
        """``meta_action`` ``()``."""
        return {"meta_action": TensorSpec((), torch.int64, "MetaAction position, IGNORE_INDEX when unlabelled")}

    def compute(self, scene: Scene) -> dict[str, torch.Tensor]:
        """The label, or ``IGNORE_INDEX`` where the frame has none (NAVSIM logs)."""
        label = scene.current_frame.meta_action
        return {"meta_action": torch.tensor(IGNORE_INDEX if label is None else META_ACTIONS.index(label))}
