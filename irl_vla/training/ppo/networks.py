"""The networks PPO adds to the policy: a value head on the scene tokens, and helpers over planner contexts."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from irl_vla.models.vla.layers import mlp
from irl_vla.models.vla.planner import PlannerContext


def pooled_scene(ctx: PlannerContext) -> Tensor:
    """One vector ``(B, D)`` per scene: the mean of the ego embedding and every scene token the planner reads."""
    tokens = [ctx.ego.unsqueeze(1), *ctx.tokens.values()]  # each (B, L, D)
    return torch.cat(tokens, dim=1).mean(dim=1)


def repeat_context(ctx: PlannerContext, times: int) -> PlannerContext:
    """Each scene's context ``times`` times in a row (scene b becomes rows ``b * times ... b * times + times - 1``)."""
    return PlannerContext(
        ctx.ego.repeat_interleave(times, dim=0), {k: v.repeat_interleave(times, dim=0) for k, v in ctx.tokens.items()}
    )


def select_context(ctx: PlannerContext, index: Tensor) -> PlannerContext:
    """The contexts of the scenes ``index`` ``(b,)``."""
    return PlannerContext(ctx.ego[index], {k: v[index] for k, v in ctx.tokens.items()})


def detach_context(ctx: PlannerContext) -> PlannerContext:
    """The context without its graph (tokens of a frozen encoder reused across PPO epochs)."""
    return PlannerContext(ctx.ego.detach(), {k: v.detach() for k, v in ctx.tokens.items()})


class ValueHead(nn.Module):
    """The critic: the expected reward ``(B, K)`` of each anchor's plan in a scene, from the pooled scene tokens.

    Args:
        d_model: width of the scene tokens.
        num_modes: anchors K (one value per anchor: a turn and going straight have different expected rewards).
    """

    def __init__(self, d_model: int, num_modes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.net = mlp(d_model, d_model, num_modes)

    def forward(self, ctx: PlannerContext) -> Tensor:
        """Values ``(B, K)``."""
        return self.net(self.norm(pooled_scene(ctx)))
