"""The chain's log-probabilities: the ratio is that of the policy that sampled, and the clamp keeps its gradient."""

from __future__ import annotations

import pytest
import torch

from irl_vla.training.ppo.config import PPOSettings
from irl_vla.training.ppo.update import step_log_probs


def test_by_default_log_probabilities_use_the_sampling_std() -> None:
    settings = PPOSettings()
    assert settings.logprob_std_min == settings.sampling_std_min


def test_a_clamp_below_the_density_at_the_mean_is_refused() -> None:
    with pytest.raises(ValueError, match="logprob_clamp.*no gradient"):
        PPOSettings(logprob_std_min=0.04, logprob_clamp=[-5.0, 2.0])  # peak 2.30: near-mean samples clamped


def test_samples_near_the_mean_carry_gradient_with_the_defaults() -> None:
    s = PPOSettings()
    stds = torch.full((1,), s.sampling_std_min)  # (S' = 1,)
    means = torch.zeros(1, 8, 3, requires_grad=True)  # (S', T, 3)
    noise = torch.randn(1, 8, 3, generator=torch.Generator().manual_seed(0))
    states = means.detach() + 0.3 * s.sampling_std_min * noise
    step_log_probs(states, means, stds, tuple(s.logprob_clamp)).sum().backward()
    assert means.grad is not None and bool((means.grad != 0).all())
