"""The reward PPO maximises: the learned reward model's EPDMS of a candidate, never the simulator's.

PPO talks to the reward model through ``RewardModel``, a small Protocol (features and trajectories in, predicted
sub-scores out), so a known analytic reward serves in tests and the reward world model of stage 2
(``irl_vla.models.reward``) in training. ``RewardFunction`` composes the predicted sub-scores into the reward with
the suite's one aggregation function and the configured weights, and subtracts the optional hard penalties for a
predicted collision, leaving the drivable area or running a red light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from irl_vla.scoring.aggregation import aggregate
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES
from irl_vla.training.ppo.config import RewardConfig


@runtime_checkable
class RewardModel(Protocol):
    """Predicts the sub-scores of candidate trajectories in scenes."""

    def predict_sub_scores(self, features: Mapping[str, Tensor], trajectories: Tensor) -> Tensor:
        """Sub-scores ``(B, N, n_sub)`` in ``SubScore`` order (NaN: undefined) of ``trajectories`` ``(B, N, T, 3)``.

        ``features`` are the batched tensors of the B scenes (the model's own feature keys).
        """
        ...


class Rewards(NamedTuple):
    """The reward of each candidate and what it came from.

    Attributes:
        reward: ``(B, N)`` the reward PPO maximises.
        epdms: ``(B, N)`` the aggregated predicted sub-scores (before penalties).
        sub_scores: ``(B, N, n_sub)`` the predicted sub-scores.
    """

    reward: Tensor
    epdms: Tensor
    sub_scores: Tensor


class RewardFunction:
    """The reward of candidates: ``aggregate(predicted sub-scores) - penalties`` (see ``RewardConfig``).

    Args:
        model: the reward model.
        cfg: aggregation weights and penalties.
    """

    def __init__(self, model: RewardModel, cfg: RewardConfig) -> None:
        self.model = model
        self.cfg = cfg

    @torch.no_grad()
    def __call__(self, features: Mapping[str, Tensor], trajectories: Tensor) -> Rewards:
        """Rewards of ``trajectories`` ``(B, N, T, 3)`` in the scenes of ``features``.

        Raises:
            ValueError: when the model's sub-scores have the wrong shape or are non-finite where they count.
        """
        sub = self.model.predict_sub_scores(features, trajectories).float()
        want = (*trajectories.shape[:2], NUM_SUB_SCORES)
        if tuple(sub.shape) != want:
            raise ValueError(f"reward model: predicted sub-scores of shape {tuple(sub.shape)}, expected {want}")
        epdms = aggregate(sub, self.cfg.aggregation)
        if not bool(torch.isfinite(epdms).all()):
            raise ValueError("reward model: the aggregated reward is not finite (a required sub-score is NaN or inf)")
        reward = epdms.clone()
        for column, penalty in self.cfg.penalties().items():
            if penalty > 0:
                reward = reward - penalty * (sub[..., column] < self.cfg.penalty_threshold).to(reward.dtype)
        return Rewards(reward, epdms, sub)
