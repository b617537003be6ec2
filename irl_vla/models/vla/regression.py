"""The regression head (``planner.head: regression``): the planner's ablation without diffusion.

One mode, regressed in a single pass of the same denoiser (same blocks, same cross-attention to meta, BEV, map
and object tokens) from one fixed input: the mean expert trajectory of the training split (its "anchor",
``compute_anchors`` with K = 1), never noised. Comparing it with the diffusion head isolates what the K anchored,
denoised and scored modes bring; it has no stochastic chains, so it cannot be fine-tuned by PPO.
"""

from __future__ import annotations

import torch
from torch import Tensor

from irl_vla.models.vla.planner import DiffusionPlanner, PlannerContext, PlannerOutput


class RegressionPlanner(DiffusionPlanner):
    """One trajectory ``(B, 1, T, 3)`` regressed from the mean expert trajectory (see the module docstring)."""

    def _regress(self, ctx: PlannerContext) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised input ``(B, 1, T, 3)``, normalised output ``(B, 1, T, 3)`` and logits ``(B, 1)``."""
        x = self._normalised_anchors(ctx)  # (B, 1, T, 3)
        x0, logits = self.denoise(x, torch.zeros(x.shape[0], dtype=torch.long, device=x.device), ctx)
        return x, x0, logits

    def forward_train(self, ctx: PlannerContext, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """The regressed mode ``(B, 1, T, 3)`` [m, m, rad] and its logit ``(B, 1)`` (no noise: ``generator`` unused)."""
        _, x0, logits = self._regress(ctx)
        return self.trajectory_norm.inverse(x0), logits

    def sample(
        self, ctx: PlannerContext, *, stochastic: bool = False, generator: torch.Generator | None = None
    ) -> PlannerOutput:
        """The regressed mode as a one-step "chain" (input, output).

        Raises:
            ValueError: when ``stochastic`` (a regression head has no sampled chains).
        """
        if stochastic:
            raise ValueError("planner.head regression has no stochastic chains (use planner.head diffusion for RL)")
        x, x0, logits = self._regress(ctx)
        return PlannerOutput(
            modes=self.trajectory_norm.inverse(x0),
            logits=logits,
            chain=torch.stack([x, x0], dim=2),  # (B, 1, 2, T, 3)
            means=x0.unsqueeze(2),  # (B, 1, 1, T, 3)
            stds=x0.new_zeros(1),
            log_probs=x0.new_zeros((*x0.shape[:2], 1)),  # (B, 1, 1)
        )

    def chain_log_prob(self, ctx: PlannerContext, chain: Tensor) -> Tensor:
        """Refused: a regression head has no sampled chains.

        Raises:
            ValueError: always.
        """
        raise ValueError("planner.head regression has no chain log-probabilities (use planner.head diffusion for RL)")
