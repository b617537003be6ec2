"""Advantages of PPO: generalised advantage estimation, group normalisation and the denoising discount.

Pure functions of tensors (no module state), each tested against a hand computation.

- ``gae``: GAE(gamma, lambda) over episodes of L environment steps. PPO here plans once per scene, so an episode is
  one step and the advantage reduces to ``r - V(s)``; the function is the general one so that multi-step episodes
  (closed loop) use the same code.
- ``normalize_advantages``: within groups (the G samples of one scene and anchor: a turn is never compared with
  going straight), over the whole batch, or not at all.
- ``denoising_discount``: the advantage of each trained denoising step, scaled by ``gamma_d ** (S' - 1 - s)`` so
  that the last steps, nearest the plan, carry the most (DPPO's rule).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Added to standard deviations before dividing (groups whose samples all got the same reward).
EPS = 1e-6


def gae(rewards: Tensor, values: Tensor, next_values: Tensor, dones: Tensor, gamma: float, lam: float) -> Tensor:
    """Generalised advantage estimates ``(..., L)`` of episodes of L steps.

    ``delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)`` and
    ``A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}``, computed backwards from the last step.

    Args:
        rewards: ``(..., L)`` rewards of each step.
        values: ``(..., L)`` value estimates of each step's state.
        next_values: ``(...,)`` value of the state after the last step (ignored where the last step is done).
        dones: ``(..., L)`` 1 where the episode ends after the step.
        gamma: discount.
        lam: GAE's lambda.

    Returns:
        Advantages ``(..., L)``; the returns are ``advantages + values``.

    Raises:
        ValueError: on mismatched shapes.
    """
    if rewards.shape != values.shape or rewards.shape != dones.shape or next_values.shape != rewards.shape[:-1]:
        raise ValueError(
            f"gae: rewards {tuple(rewards.shape)}, values {tuple(values.shape)} and dones {tuple(dones.shape)} must "
            f"match and next_values {tuple(next_values.shape)} must drop their last axis"
        )
    steps = rewards.shape[-1]
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(next_values)
    for t in reversed(range(steps)):
        following = next_values if t == steps - 1 else values[..., t + 1]
        live = 1.0 - dones[..., t].to(rewards.dtype)
        delta = rewards[..., t] + gamma * following * live - values[..., t]
        running = delta + gamma * lam * live * running
        advantages[..., t] = running
    return advantages


def normalize_advantages(advantages: Tensor, mode: str, group_dim: int = 1) -> Tensor:
    """Advantages with zero mean and unit spread.

    Args:
        advantages: e.g. ``(B, G, K)``: scenes, samples per anchor, anchors.
        mode: ``group``: over ``group_dim`` (the G samples of one scene and anchor); ``batch``: over everything;
            ``none``: unchanged.
        group_dim: the axis of the samples of a group.

    Returns:
        Normalised advantages of the same shape.

    Raises:
        ValueError: for an unknown mode, or a group of one sample.
    """
    if mode == "none":
        return advantages
    if mode == "batch":
        return (advantages - advantages.mean()) / (advantages.std(unbiased=False) + EPS)
    if mode != "group":
        raise ValueError(f"normalize_advantages: mode {mode!r} is not one of group, batch, none")
    if advantages.shape[group_dim] < 2:
        raise ValueError(f"normalize_advantages: groups of {advantages.shape[group_dim]} sample cannot be normalised")
    mean = advantages.mean(dim=group_dim, keepdim=True)
    std = advantages.std(dim=group_dim, keepdim=True, unbiased=False)
    return (advantages - mean) / (std + EPS)


def denoising_discount(advantages: Tensor, steps: int, gamma: float) -> Tensor:
    """Per-step advantages ``(..., S')``: ``advantages[..., None] * gamma ** (S' - 1 - s)`` for s in 0..S'-1."""
    powers = torch.arange(steps - 1, -1, -1, dtype=advantages.dtype, device=advantages.device)
    return advantages.unsqueeze(-1) * gamma**powers
