"""Normalisation statistics computed from data, held by the model as buffers (saved with its weights).

Nothing data-dependent is a constant in ``forward``: ego status, image and trajectory statistics come from
training samples (``compute_normalization``) and are set on a model with ``VLAModel.set_normalization``; a
model whose statistics were never set refuses to run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from irl_vla.models.vla.config import FeatureKey, TargetKey

#: Fraction of the largest standard deviation of a statistic below which a column's deviation is floored.
RELATIVE_STD_FLOOR = 1e-3
#: A column whose deviation is at most this fraction of its scale (``max(1, |mean|)``) is constant in the data:
#: its deviation is set to 1 (it is centred, not scaled), so that a value it never took in training (e.g. a
#: lateral velocity in a real log where the training world's ego had none) is not magnified by ``1 / floor``.
CONSTANT_STD_FRACTION = 1e-6


@dataclass
class NormalizationStats:
    """Means and standard deviations of the inputs and targets.

    Attributes:
        ego_mean: ``(T, D)`` mean of ``ego_status``.
        ego_std: ``(T, D)``.
        image_mean: ``(C,)`` per-channel mean of ``camera_images`` scaled to [0, 1].
        image_std: ``(C,)``.
        trajectory_mean: ``(T, 3)`` per pose and column mean of the expert trajectory [m, m, rad].
        trajectory_std: ``(T, 3)``.
    """

    ego_mean: Tensor
    ego_std: Tensor
    image_mean: Tensor
    image_std: Tensor
    trajectory_mean: Tensor
    trajectory_std: Tensor

    def to_tensors(self) -> dict[str, Tensor]:
        """Name -> tensor (a checkpoint's ``normalization.safetensors``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor]) -> NormalizationStats:
        """Inverse of ``to_tensors``.

        Raises:
            ValueError: naming a missing statistic.
        """
        missing = [f.name for f in fields(cls) if f.name not in tensors]
        if missing:
            raise ValueError(f"normalisation statistics: missing {missing}")
        return cls(**{f.name: tensors[f.name].float() for f in fields(cls)})


class _Moments:
    """Running float64 sums of values over a leading sample axis."""

    def __init__(self) -> None:
        self.count = 0
        self.total: Tensor | None = None
        self.squares: Tensor | None = None

    def add(self, values: Tensor) -> None:
        """Add samples ``(S, ...)``."""
        v = values.double()
        s, sq = v.sum(0), (v * v).sum(0)
        self.total = s if self.total is None else self.total + s
        self.squares = sq if self.squares is None else self.squares + sq
        self.count += v.shape[0]

    def result(self, what: str) -> tuple[Tensor, Tensor]:
        if self.total is None or self.squares is None or self.count < 2:
            raise ValueError(f"normalisation statistics: fewer than 2 samples of {what}")
        mean = self.total / self.count
        var = (self.squares / self.count - mean * mean).clamp_min(0.0)
        std = var.sqrt()
        constant = std <= CONSTANT_STD_FRACTION * mean.abs().clamp_min(1.0)
        std = std.clamp_min(float(std.max()) * RELATIVE_STD_FLOOR).clamp_min(1e-6)
        std = torch.where(constant, torch.ones_like(std), std)
        return mean.float(), std.float()


def compute_normalization(batches: Iterable[Mapping[str, Tensor]]) -> NormalizationStats:
    """Statistics of batched samples (each mapping holds ``ego_status``, ``camera_images`` and ``trajectory``).

    Raises:
        ValueError: naming a missing key, or when fewer than 2 samples were given.
    """
    ego, image, trajectory = _Moments(), _Moments(), _Moments()
    for i, batch in enumerate(batches):
        for key in (FeatureKey.EGO_STATUS, FeatureKey.CAMERA_IMAGES, TargetKey.TRAJECTORY):
            if key.value not in batch:
                raise ValueError(f"normalisation statistics: batch {i} has no {key.value!r}")
        ego.add(batch[FeatureKey.EGO_STATUS.value])  # (B, T, D)
        images = batch[FeatureKey.CAMERA_IMAGES.value]  # (B, T, N, C, H, W)
        pixels = images.movedim(-3, -1).reshape(-1, images.shape[-3]).double() / 255.0  # (P, C)
        image.add(pixels)
        trajectory.add(batch[TargetKey.TRAJECTORY.value])  # (B, T, 3)
    ego_mean, ego_std = ego.result("ego_status")
    image_mean, image_std = image.result("camera_images")
    traj_mean, traj_std = trajectory.result("trajectory")
    return NormalizationStats(ego_mean, ego_std, image_mean, image_std, traj_mean, traj_std)


class Standardizer(nn.Module):
    """``(x - mean) / std`` with statistics as buffers; refuses to run before they are set.

    Attributes:
        name: what is standardised (for messages).
    """

    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.name = name
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))
        self.register_buffer("is_set", torch.tensor(False))

    def set(self, mean: Tensor, std: Tensor) -> None:
        """Set the statistics (shapes must match the buffers).

        Raises:
            ValueError: naming the statistic on a shape mismatch or a non-positive deviation.
        """
        if tuple(mean.shape) != tuple(self.mean.shape) or tuple(std.shape) != tuple(self.std.shape):
            raise ValueError(
                f"{self.name} statistics: shapes {tuple(mean.shape)}, {tuple(std.shape)}, the model expects "
                f"{tuple(self.mean.shape)}"
            )
        if not bool((std > 0).all()) or not bool(torch.isfinite(mean).all()):
            raise ValueError(f"{self.name} statistics: deviations must be > 0 and means finite")
        self.mean.copy_(mean)
        self.std.copy_(std)
        self.is_set.fill_(True)

    def _check(self) -> None:
        if not bool(self.is_set):
            raise RuntimeError(
                f"{self.name} normalisation statistics are not set: compute them from training data "
                "(compute_normalization) and call VLAModel.set_normalization, or load a checkpoint"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Standardise ``x`` ``(..., *shape)``."""
        self._check()
        return (x - self.mean) / self.std

    def scaled(self, x: Tensor, scale: float) -> Tensor:
        """Standardise ``x * scale`` as float32 (uint8 images: ``scale`` 1 / 255).

        Two in-place passes over one copy of ``x`` instead of four full-size passes (convert, scale, subtract,
        divide): about 4x faster on a batch of 16 x 3 images (1.8 against 7.6 ms on the 2-core CPU), which is
        within the noise of a whole `default_road` training step (docs/benchmarks.md).
        """
        self._check()
        inverse_std = 1.0 / self.std
        return x.to(torch.float32, copy=True).mul_(inverse_std * scale).sub_(self.mean * inverse_std)

    def inverse(self, x: Tensor) -> Tensor:
        """Undo ``forward``."""
        self._check()
        return x * self.std + self.mean
