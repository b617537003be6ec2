"""GAE, group normalisation and the denoising discount against hand computations."""

from __future__ import annotations

import pytest
import torch

from irl_vla.training.ppo.advantages import EPS, denoising_discount, gae, normalize_advantages


def test_gae_matches_a_hand_computed_three_step_episode() -> None:
    rewards = torch.tensor([[1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 1.0, 1.5]])
    dones = torch.tensor([[0.0, 0.0, 1.0]])
    gamma, lam = 0.9, 0.8
    # deltas: r_t + gamma V(t+1) (1 - done) - V(t)
    d2 = 2.0 - 1.5  # the episode ends: no bootstrap
    d1 = 0.0 + 0.9 * 1.5 - 1.0
    d0 = 1.0 + 0.9 * 1.0 - 0.5
    a2 = d2
    a1 = d1 + 0.9 * 0.8 * a2
    a0 = d0 + 0.9 * 0.8 * a1
    got = gae(rewards, values, torch.tensor([99.0]), dones, gamma, lam)
    torch.testing.assert_close(got, torch.tensor([[a0, a1, a2]]))


def test_gae_bootstraps_from_next_value_when_not_done() -> None:
    got = gae(torch.tensor([[1.0]]), torch.tensor([[0.25]]), torch.tensor([2.0]), torch.tensor([[0.0]]), 0.5, 0.9)
    torch.testing.assert_close(got, torch.tensor([[1.0 + 0.5 * 2.0 - 0.25]]))


def test_one_step_episode_reduces_to_reward_minus_value() -> None:
    g = torch.Generator().manual_seed(0)
    r, v = torch.rand(3, 4, 5, 1, generator=g), torch.rand(3, 4, 5, 1, generator=g)
    got = gae(r, v, torch.zeros(3, 4, 5), torch.ones(3, 4, 5, 1), 0.99, 0.95)
    torch.testing.assert_close(got, r - v)


def test_gae_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="must"):
        gae(torch.zeros(2, 3), torch.zeros(2, 2), torch.zeros(2), torch.zeros(2, 3), 0.9, 0.9)


def test_group_normalisation_equals_a_loop_over_scene_and_anchor() -> None:
    g = torch.Generator().manual_seed(1)
    adv = torch.randn(2, 4, 3, generator=g)  # (B, G, K)
    got = normalize_advantages(adv, "group", group_dim=1)
    for b in range(2):
        for k in range(3):
            group = [float(adv[b, i, k]) for i in range(4)]
            mean = sum(group) / 4
            std = (sum((x - mean) ** 2 for x in group) / 4) ** 0.5
            for i in range(4):
                assert float(got[b, i, k]) == pytest.approx((group[i] - mean) / (std + EPS), rel=1e-5)


def test_group_normalisation_never_mixes_anchors() -> None:
    adv = torch.zeros(1, 2, 2)
    adv[0, :, 0] = torch.tensor([10.0, 12.0])  # a turn: high rewards
    adv[0, :, 1] = torch.tensor([0.0, 1.0])  # straight: low rewards
    got = normalize_advantages(adv, "group")
    torch.testing.assert_close(got[0, :, 0], got[0, :, 1])  # each is (-1, 1) within its own group


def test_batch_and_none_normalisation() -> None:
    adv = torch.tensor([1.0, 2.0, 3.0, 6.0])
    got = normalize_advantages(adv, "batch")
    assert float(got.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(got.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    assert normalize_advantages(adv, "none") is adv
    with pytest.raises(ValueError, match="one sample|groups of 1"):
        normalize_advantages(torch.zeros(2, 1, 3), "group")
    with pytest.raises(ValueError, match="mode"):
        normalize_advantages(adv, "median")


def test_denoising_discount_scales_earlier_steps_down() -> None:
    got = denoising_discount(torch.tensor([2.0, -1.0]), 3, 0.5)
    torch.testing.assert_close(got, torch.tensor([[0.5, 1.0, 2.0], [-0.25, -0.5, -1.0]]))
