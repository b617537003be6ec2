"""Ego-side features: the ego status history and the driving command."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

import numpy as np
import torch

from irl_vla.data.enums import DrivingCommand, SE2Index
from irl_vla.data.features.builder import FeatureBuilder, TensorSpec
from irl_vla.data.scene import AgentInput


class EgoStatusIndex(IntEnum):
    """Columns of one history frame of ``ego_status``."""

    X = 0  # [m] relative to the current rear axle
    Y = 1  # [m]
    HEADING = 2  # [rad]
    VELOCITY_X = 3  # [m/s] in that frame's ego frame
    VELOCITY_Y = 4  # [m/s]
    ACCELERATION_X = 5  # [m/s^2]
    ACCELERATION_Y = 6  # [m/s^2]


@dataclass
class EgoStatusBuilder(FeatureBuilder):
    """The ego's pose, velocity and acceleration at every history frame, oldest first.

    Attributes:
        num_history_frames: history frames expected (current included).
    """

    name: ClassVar[str] = "ego_status"
    version: ClassVar[int] = 1
    num_history_frames: int = 4

    def __post_init__(self) -> None:
        if self.num_history_frames < 1:
            raise ValueError(f"EgoStatusBuilder.num_history_frames: expected >= 1, got {self.num_history_frames}")

    def specs(self) -> dict[str, TensorSpec]:
        """``ego_status`` ``(T, D)``."""
        return {
            "ego_status": TensorSpec(
                ("T", "D"), torch.float32, "pose (current frame), velocity, acceleration per history frame"
            )
        }

    def dims(self) -> dict[str, int]:
        """T history frames, D = ``len(EgoStatusIndex)``."""
        return {"T": self.num_history_frames, "D": len(EgoStatusIndex)}

    def compute(self, agent_input: AgentInput) -> dict[str, torch.Tensor]:
        """Stack the history's statuses."""
        statuses = agent_input.ego_statuses
        if len(statuses) != self.num_history_frames:
            raise ValueError(
                f"{self.name}: the agent input has {len(statuses)} history frames, expected {self.num_history_frames}"
            )
        out = np.empty((len(statuses), len(EgoStatusIndex)), dtype=np.float32)  # (T, D)
        for t, status in enumerate(statuses):
            out[t, EgoStatusIndex.X] = status.ego_pose[SE2Index.X]
            out[t, EgoStatusIndex.Y] = status.ego_pose[SE2Index.Y]
            out[t, EgoStatusIndex.HEADING] = status.ego_pose[SE2Index.HEADING]
            out[t, [EgoStatusIndex.VELOCITY_X, EgoStatusIndex.VELOCITY_Y]] = status.ego_velocity
            out[t, [EgoStatusIndex.ACCELERATION_X, EgoStatusIndex.ACCELERATION_Y]] = status.ego_acceleration
        return {"ego_status": torch.from_numpy(out)}


@dataclass
class DrivingCommandBuilder(FeatureBuilder):
    """The current driving command, one-hot in ``DrivingCommand`` order."""

    name: ClassVar[str] = "driving_command"
    version: ClassVar[int] = 1

    def specs(self) -> dict[str, TensorSpec]:
        """``driving_command`` ``(D,)``."""
        return {"driving_command": TensorSpec(("D",), torch.float32, "one-hot (left, straight, right, unknown)")}

    def dims(self) -> dict[str, int]:
        """D = ``len(DrivingCommand)``."""
        return {"D": len(DrivingCommand)}

    def compute(self, agent_input: AgentInput) -> dict[str, torch.Tensor]:
        """The current frame's command."""
        return {"driving_command": torch.from_numpy(agent_input.current.driving_command.astype(np.float32))}
