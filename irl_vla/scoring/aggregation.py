"""The one aggregation function: sub-scores ``(..., n_sub)`` -> EPDMS (v2) or PDMS (v1) ``(...)``.

``score = prod(multiplicative) * sum(w_i * m_i) / sum(w_i)`` over the weighted sub-scores
(``reference/navsim.md`` §1.8). A weighted sub-score listed in ``optional`` (EC) may be undefined (NaN):
its weight is then dropped from numerator and denominator for that row, as NAVSIM's one-stage scoring does.
Works on numpy arrays and torch tensors alike (differentiable in torch), so the scorer, the reward model and
PPO share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore

ArrayT = TypeVar("ArrayT")


@dataclass
class AggregationConfig:
    """Which sub-scores multiply and which are weighted (the ``aggregation`` group of ``irl-vla eval``).

    Attributes:
        name: metric name (``epdms`` or ``pdms``).
        multiplicative: sub-scores multiplied together (short names, e.g. ``NC``).
        weights: weight of each averaged sub-score.
        optional: weighted sub-scores that may be NaN (undefined); their weight is then dropped.
    """

    name: str = "epdms"
    multiplicative: list[str] = field(default_factory=lambda: ["NC", "DAC", "DDC", "TLC"])
    weights: dict[str, float] = field(default_factory=lambda: {"EP": 5.0, "TTC": 5.0, "LK": 2.0, "HC": 2.0, "EC": 2.0})
    optional: list[str] = field(default_factory=lambda: ["EC"])

    def __post_init__(self) -> None:
        for group in ("multiplicative", "optional"):
            for name in getattr(self, group):
                try:
                    SubScore.from_name(name)
                except ValueError as e:
                    raise ValueError(f"AggregationConfig.{group}: {e}") from None
        for name, w in self.weights.items():
            try:
                SubScore.from_name(name)
            except ValueError as e:
                raise ValueError(f"AggregationConfig.weights: {e}") from None
            if not (w >= 0 and np.isfinite(w)):
                raise ValueError(f"AggregationConfig.weights.{name}: expected a finite weight >= 0, got {w}")
        if sum(self.weights.values()) <= 0:
            raise ValueError("AggregationConfig.weights: at least one weight must be > 0")
        not_weighted = sorted(set(self.optional) - set(self.weights))
        if not_weighted:
            raise ValueError(f"AggregationConfig.optional: {not_weighted} are not weighted sub-scores")

    @property
    def multiplicative_indices(self) -> list[int]:
        """Columns of the multiplicative sub-scores."""
        return [int(SubScore.from_name(n)) for n in self.multiplicative]

    @property
    def weight_vector(self) -> np.ndarray:
        """Weights as a ``(n_sub,)`` vector (0 for sub-scores not averaged)."""
        w = np.zeros(NUM_SUB_SCORES)
        for name, value in self.weights.items():
            w[SubScore.from_name(name)] = value
        return w


#: NAVSIM v2 EPDMS (the ``aggregation=epdms`` option of ``irl-vla eval``; the dataclass defaults).
EPDMS = AggregationConfig()
#: NAVSIM v1 PDMS = NC * DAC * (5 TTC + 5 EP + 2 C) / 12, C in the HC column (``aggregation=pdms``). Every EPDMS
#: weight it does not use is listed as 0, so the option replaces each of them when hydra merges it over EPDMS.
PDMS = AggregationConfig(
    name="pdms",
    multiplicative=["NC", "DAC"],
    weights={"EP": 5.0, "TTC": 5.0, "HC": 2.0, "LK": 0.0, "EC": 0.0, "DDC": 0.0},
    optional=[],
)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def aggregate(sub_scores: ArrayT, config: AggregationConfig = EPDMS) -> ArrayT:
    """Aggregate sub-scores into one score per row.

    Args:
        sub_scores: ``(..., n_sub)`` array or tensor, columns by ``SubScore``.
        config: which sub-scores multiply and their weights.

    Returns:
        Scores ``(...)`` of the same array type.

    Raises:
        ValueError: on a wrong last dimension, or NaN in a used sub-score that is not optional.
    """
    shape = tuple(sub_scores.shape)  # type: ignore[attr-defined]
    if not shape or shape[-1] != NUM_SUB_SCORES:
        raise ValueError(f"aggregate: expected sub-scores of shape (..., {NUM_SUB_SCORES}), got {shape}")
    weights = config.weight_vector
    optional = np.zeros(NUM_SUB_SCORES, dtype=bool)
    for name in config.optional:
        optional[SubScore.from_name(name)] = True
    used = weights > 0
    used[config.multiplicative_indices] = True
    if _is_torch(sub_scores):
        import torch

        x: Any = sub_scores
        nan = torch.isnan(x)
        bad = nan[..., torch.as_tensor(used & ~optional, device=x.device)]
        if bool(bad.any()):
            col = int(np.flatnonzero(used & ~optional)[int(torch.nonzero(bad)[0, -1])])
            raise ValueError(f"aggregate: sub-score {SubScore(col).name} is NaN but is not optional")
        w = torch.as_tensor(weights, dtype=x.dtype, device=x.device).expand_as(x)
        w = torch.where(nan, torch.zeros_like(w), w)  # drops undefined optional sub-scores
        filled = torch.where(nan, torch.zeros_like(x), x)
        mult = filled[..., config.multiplicative_indices].prod(dim=-1)
        return mult * (filled * w).sum(dim=-1) / w.sum(dim=-1)  # type: ignore[return-value]

    x = np.asarray(sub_scores, dtype=np.float64)
    nan = np.isnan(x)
    bad = nan & (used & ~optional)
    if bad.any():
        col = int(np.argwhere(bad)[0, -1])
        raise ValueError(f"aggregate: sub-score {SubScore(col).name} is NaN but is not optional")
    w = np.where(nan, 0.0, np.broadcast_to(weights, x.shape))
    filled = np.where(nan, 0.0, x)
    mult = np.prod(filled[..., config.multiplicative_indices], axis=-1)
    return mult * np.sum(filled * w, axis=-1) / np.sum(w, axis=-1)  # type: ignore[return-value]
