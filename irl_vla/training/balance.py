"""Sampling weights that balance a training split by how far sideways its expert plans end.

Most expert plans run straight ahead; the plans that follow a moderate bend, a lane change or a turn are a small
share of a split, and a policy trained on uniform draws meets them rarely (on the embedded ``synth_navtrain``
with its stage-2 scenes, plans ending 1 to 6 m sideways are about one in ten). ``lateral_balance_weights`` buckets
the scenes by the lateral offset of the plan's last pose and weighs each scene by its bucket's frequency to the
power ``-power``: 0 draws uniformly, 1 draws every bucket equally often, values between move part of the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from irl_vla.data.enums import SE2Index


@dataclass(frozen=True)
class LateralBalance:
    """Weights of a split's scenes and what they do.

    Attributes:
        weights: ``(N,)`` sampling weight of each scene (mean 1).
        edges: bucket edges [m] of the plan's lateral end offset (absolute).
        counts: scenes per bucket (``len(edges) + 1`` buckets: below the first edge, ..., above the last).
        shares: each bucket's share of the draws under ``weights``.
    """

    weights: Tensor
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    shares: tuple[float, ...]

    def summary(self) -> str:
        """One line: per bucket, scenes and share of the draws."""
        names = [f"<{self.edges[0]:g}"]
        names += [f"{lo:g}-{hi:g}" for lo, hi in zip(self.edges, self.edges[1:], strict=False)]
        names += [f">={self.edges[-1]:g}"]
        parts = [
            f"{name} m: {count} scenes, {share:.0%} of draws"
            for name, count, share in zip(names, self.counts, self.shares, strict=True)
        ]
        return "lateral balance: " + "; ".join(parts)


def valid_edges(edges: Sequence[float]) -> bool:
    """Whether ``edges`` are bucket edges: at least one, positive, strictly increasing."""
    bounds = [float(e) for e in edges]
    return bool(bounds) and all(e > 0 for e in bounds) and bounds == sorted(set(bounds))


def lateral_balance_weights(trajectories: Tensor, edges: Sequence[float], power: float) -> LateralBalance:
    """Per-scene weights from the expert plans ``trajectories`` ``(N, T, 3)`` [m, m, rad] (ego frame).

    Raises:
        ValueError: on unsorted or non-positive ``edges``, a negative ``power`` or no trajectories.
    """
    bounds = tuple(float(e) for e in edges)
    if not valid_edges(bounds):
        raise ValueError(f"lateral balance: bucket edges must be positive and increasing, got {list(edges)}")
    if power < 0:
        raise ValueError(f"lateral balance: power must be >= 0, got {power}")
    if trajectories.dim() != 3 or trajectories.shape[0] == 0:
        raise ValueError(f"lateral balance: expected (N, T, 3) trajectories, got {tuple(trajectories.shape)}")
    lateral = trajectories[:, -1, SE2Index.Y].abs().to(torch.float64)  # (N,) [m]
    bucket = torch.bucketize(lateral, torch.tensor(bounds, dtype=torch.float64), right=True)  # (N,)
    counts = torch.bincount(bucket, minlength=len(bounds) + 1)  # (Bk,)
    frequency = counts.to(torch.float64) / lateral.numel()
    per_bucket = torch.where(counts > 0, frequency.clamp_min(1e-12).pow(-power), torch.zeros_like(frequency))
    weights = per_bucket[bucket]
    weights = weights / weights.mean()
    shares = (per_bucket * counts) / float((per_bucket * counts).sum())
    return LateralBalance(
        weights=weights.to(torch.float32),
        edges=bounds,
        counts=tuple(int(c) for c in counts),
        shares=tuple(float(s) for s in shares),
    )
