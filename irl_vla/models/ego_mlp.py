"""NAVSIM's ego-status MLP baseline: the current velocity, acceleration and driving command -> the plan.

A "blind" policy: it sees no sensors, only the current frame's ``[vx, vy, ax, ay]`` and the one-hot driving
command (8 inputs), and maps them through ReLU layers (``hidden``, 512-512 by default) to ``T`` poses
``(x, y, heading)`` (24 outputs for 8 poses), trained with the L1 loss of the poses. It is what NAVSIM
calls the upper bound of kinematic extrapolation: strong where braking is already in the current
acceleration, weak where the road must be seen.

The kinematic inputs and the poses are standardised with statistics computed from training data and kept as
buffers (``set_normalization``), so nothing data-dependent is a constant in ``forward``; the loss is the L1 of
the poses in metres and radians, as NAVSIM's.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor, nn

from irl_vla.common.config import require_at_least
from irl_vla.data.enums import DrivingCommand, SE2Index
from irl_vla.data.features.ego import EgoStatusIndex
from irl_vla.models.vla.loss import pose_l1
from irl_vla.models.vla.normalization import RELATIVE_STD_FLOOR, Standardizer

#: Columns of the current frame's ``ego_status`` the MLP reads, before the driving command.
KINEMATICS: tuple[EgoStatusIndex, ...] = (
    EgoStatusIndex.VELOCITY_X,
    EgoStatusIndex.VELOCITY_Y,
    EgoStatusIndex.ACCELERATION_X,
    EgoStatusIndex.ACCELERATION_Y,
)


@dataclass
class EgoMLPConfig:
    """``configs/model/ego_mlp.yaml``.

    Attributes:
        architecture: ``ego_mlp`` (what ``irl-vla train`` builds).
        size: the name of this setting (run directories use it).
        hidden: widths of the hidden ReLU layers.
        num_poses: poses of a plan (T), 0.5 s apart.
        history_frames: frames of the ``ego_status`` feature (only the current, last one is read).
    """

    architecture: str = "ego_mlp"
    size: str = "ego_mlp"
    hidden: list[int] = field(default_factory=lambda: [512, 512])
    num_poses: int = 8
    history_frames: int = 4

    def __post_init__(self) -> None:
        if self.architecture != "ego_mlp":
            raise ValueError(f"EgoMLPConfig.architecture: expected ego_mlp, got {self.architecture!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"EgoMLPConfig.hidden: expected at least one layer of >= 1 units, got {self.hidden}")
        require_at_least(self, ("num_poses", "history_frames"), 1)

    @property
    def num_inputs(self) -> int:
        """Inputs of the first layer: the kinematics and the one-hot driving command."""
        return len(KINEMATICS) + len(DrivingCommand)


@dataclass
class EgoMLPStats:
    """Normalisation statistics of the ego-status MLP.

    Attributes:
        kinematics_mean: ``(D,)`` mean of the current ``[vx, vy, ax, ay]``.
        kinematics_std: ``(D,)``.
        trajectory_mean: ``(T, 3)`` mean of the expert's poses.
        trajectory_std: ``(T, 3)``.
    """

    kinematics_mean: Tensor
    kinematics_std: Tensor
    trajectory_mean: Tensor
    trajectory_std: Tensor

    def to_tensors(self) -> dict[str, Tensor]:
        """Name -> tensor (a checkpoint's ``normalization.safetensors``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor]) -> EgoMLPStats:
        """Inverse of ``to_tensors``.

        Raises:
            ValueError: naming a missing statistic.
        """
        missing = [f.name for f in fields(cls) if f.name not in tensors]
        if missing:
            raise ValueError(f"ego-MLP normalisation statistics: missing {missing}")
        return cls(**{f.name: tensors[f.name].float() for f in fields(cls)})


def _mean_std(values: Tensor, what: str) -> tuple[Tensor, Tensor]:
    """Mean and floored standard deviation over the leading axis of ``values`` ``(S, ...)``."""
    if values.shape[0] < 2:
        raise ValueError(f"ego-MLP normalisation statistics: fewer than 2 samples of {what}")
    v = values.double()
    std = v.std(dim=0, unbiased=False)
    std = std.clamp_min(float(std.max()) * RELATIVE_STD_FLOOR).clamp_min(1e-6)
    return v.mean(dim=0).float(), std.float()


def current_kinematics(ego_status: Tensor) -> Tensor:
    """The current frame's ``[vx, vy, ax, ay]`` ``(B, D)`` of ``ego_status`` ``(B, T, D_ego)``."""
    return ego_status[:, -1, list(KINEMATICS)]


def compute_ego_mlp_stats(batches: Iterable[Mapping[str, Tensor]]) -> EgoMLPStats:
    """Statistics of batched samples (each mapping holds ``ego_status`` and ``trajectory``).

    Raises:
        ValueError: naming a missing key, or when fewer than 2 samples were given.
    """
    kinematics, trajectories = [], []
    for i, batch in enumerate(batches):
        for key in ("ego_status", "trajectory"):
            if key not in batch:
                raise ValueError(f"ego-MLP normalisation statistics: batch {i} has no {key!r}")
        kinematics.append(current_kinematics(batch["ego_status"]))  # (B, D)
        trajectories.append(batch["trajectory"])  # (B, T, 3)
    if not kinematics:
        raise ValueError("ego-MLP normalisation statistics: no samples")
    k_mean, k_std = _mean_std(torch.cat(kinematics), "ego_status")
    t_mean, t_std = _mean_std(torch.cat(trajectories), "trajectory")
    return EgoMLPStats(k_mean, k_std, t_mean, t_std)


class EgoStatusMLP(nn.Module):
    """The MLP (see the module docstring): ``forward(features) -> {"trajectory": (B, T, 3)}``."""

    def __init__(self, cfg: EgoMLPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.kinematics_norm = Standardizer("ego kinematics", (len(KINEMATICS),))
        self.trajectory_norm = Standardizer("trajectory", (cfg.num_poses, len(SE2Index)))
        widths = [cfg.num_inputs, *cfg.hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], cfg.num_poses * len(SE2Index)))
        self.mlp = nn.Sequential(*layers)

    def set_normalization(self, stats: EgoMLPStats) -> None:
        """Set the statistics computed from training data (``compute_ego_mlp_stats``)."""
        self.kinematics_norm.set(stats.kinematics_mean, stats.kinematics_std)
        self.trajectory_norm.set(stats.trajectory_mean, stats.trajectory_std)

    def forward(
        self,
        features: Mapping[str, Tensor],
        targets: Mapping[str, Tensor] | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """The plan ``trajectory`` ``(B, T, 3)`` [m, m, rad] (``targets`` and ``generator`` are not read).

        Raises:
            ValueError: naming a missing or misshapen feature.
        """
        ego, command = self._inputs(features)
        x = torch.cat([self.kinematics_norm(current_kinematics(ego)), command], dim=-1)  # (B, 8)
        poses = self.mlp(x).view(-1, self.cfg.num_poses, len(SE2Index))  # (B, T, 3)
        return {"trajectory": self.trajectory_norm.inverse(poses)}

    def compute_loss(self, predictions: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """L1 of the poses to the expert's (heading difference wrapped), as ``trajectory_l1`` and ``loss``."""
        if "trajectory" not in targets:
            raise ValueError("ego-MLP loss: the targets have no 'trajectory'")
        l1 = pose_l1(predictions["trajectory"], targets["trajectory"])
        return {"trajectory_l1": l1, "loss": l1}

    def _inputs(self, features: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        for key in ("ego_status", "driving_command"):
            if key not in features:
                raise ValueError(f"features: missing {key!r} (the ego-status MLP reads ego_status, driving_command)")
        ego, command = features["ego_status"].float(), features["driving_command"].float()
        if ego.dim() != 3 or ego.shape[1:] != (self.cfg.history_frames, len(EgoStatusIndex)):
            raise ValueError(
                f"features: 'ego_status' has shape {tuple(ego.shape)}, expected "
                f"(B, {self.cfg.history_frames}, {len(EgoStatusIndex)})"
            )
        if command.shape != (ego.shape[0], len(DrivingCommand)):
            raise ValueError(
                f"features: 'driving_command' has shape {tuple(command.shape)}, expected (B, {len(DrivingCommand)})"
            )
        return ego, command
