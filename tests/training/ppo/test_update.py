"""The PPO update: the clipped loss and the rollout's advantages against direct computations, a tiny run raising
the learned reward, the regularisers, and the no-simulator guard."""

from __future__ import annotations

import math

import pytest
import torch

from irl_vla.scoring.aggregation import aggregate
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.scorer import Scorer
from irl_vla.training.ppo.advantages import EPS
from irl_vla.training.ppo.config import RewardConfig
from irl_vla.training.ppo.guard import SimulatorInLoopError, no_simulator
from irl_vla.training.ppo.reward import RewardFunction
from irl_vla.training.ppo.update import PPOModule, Rollout, collect_rollout, ppo_update, selection_targets
from tests.training.ppo.helpers import ProgressReward, tiny_module

NO_BC = {"coef": 0.0, "coef_no_improvement": 0.0}


def _rollout(module, features, targets, seed: int = 0) -> Rollout:
    reward = RewardFunction(ProgressReward(), RewardConfig())
    generator = torch.Generator().manual_seed(seed)
    return collect_rollout(module, features, features, targets["trajectory"], reward, generator)


def test_rollout_rewards_and_group_normalised_advantages_match_a_direct_computation() -> None:
    module, features, targets = tiny_module(samples_per_anchor=3, bc=NO_BC)
    rollout = _rollout(module, features, targets)
    b, g, k = rollout.rewards.shape
    final = module.policy.planner.trajectory_norm.inverse(rollout.chains[:, :, :, -1])  # (B, G, K, T, 3)
    sub = ProgressReward().predict_sub_scores({}, final.flatten(1, 2))
    torch.testing.assert_close(rollout.rewards, aggregate(sub, RewardConfig().aggregation).view(b, g, k))
    for i in range(b):
        for a in range(k):
            adv = [float(rollout.rewards[i, j, a] - rollout.values[i, a]) for j in range(g)]  # one step: r - V
            mean = sum(adv) / g
            std = math.sqrt(sum((x - mean) ** 2 for x in adv) / g)
            for j in range(g):
                assert float(rollout.advantages[i, j, a]) == pytest.approx((adv[j] - mean) / (std + EPS), abs=1e-4)
    torch.testing.assert_close(rollout.returns, rollout.rewards)  # A + V


def test_clipped_loss_matches_a_direct_computation() -> None:
    module, features, targets = tiny_module(
        samples_per_anchor=2, clip=0.05, vf_coef=0.0, selection_coef=0.0, denoise_gamma=0.7, bc=NO_BC
    )
    rollout = _rollout(module, features, targets)
    on_policy = module(rollout)  # nothing changed yet: every ratio is 1
    assert float(on_policy["losses/approx_kl"]) == pytest.approx(0.0, abs=1e-6)
    assert float(on_policy["losses/clipfrac"]) == 0.0
    planner = module.policy.planner
    with torch.no_grad():
        gen = torch.Generator().manual_seed(3)
        for p in planner.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))
    terms = module(rollout)

    s = module.settings
    stds = planner.step_stds(s.logprob_std_min)
    ctx, _ = module.policy.encode(features, None, with_aux=False)
    b, g, k = rollout.rewards.shape
    steps = len(planner.timesteps)
    losses, clipped = [], 0
    for i in range(b):
        one = type(ctx)(ctx.ego[i : i + 1], {n: v[i : i + 1] for n, v in ctx.tokens.items()})
        for j in range(g):
            chain = rollout.chains[i, j][None]  # (1, K, S + 1, T, 3)
            means = planner.chain_means(one, chain)[0]  # (K, S, T, 3)
            for a in range(k):
                for step in range(steps):
                    normal = torch.distributions.Normal(means[a, step], stds[step])
                    new = normal.log_prob(chain[0, a, step + 1]).clamp(*s.logprob_clamp).mean()
                    ratio = torch.exp(new - rollout.old_log_probs[i, j, a, step])
                    adv = rollout.advantages[i, j, a] * 0.7 ** (steps - 1 - step)
                    losses.append(torch.max(-adv * ratio, -adv * ratio.clamp(0.95, 1.05)))
                    clipped += int(abs(float(ratio.detach()) - 1) > 0.05)
    assert float(terms["losses/policy_loss"]) == pytest.approx(float(torch.stack(losses).mean()), abs=1e-5)
    assert float(terms["losses/clipfrac"]) == pytest.approx(clipped / len(losses), abs=1e-6)
    assert 0 < clipped < len(losses)  # the perturbation moved some ratios past the clip and left others inside


def test_a_tiny_ppo_run_raises_the_learned_reward_on_a_fixed_batch() -> None:
    module, features, targets = tiny_module(update_epochs=4, selection_coef=0.0, bc=NO_BC)
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    rewards = []
    for _ in range(10):
        rollout = _rollout(module, features, targets, seed=len(rewards))
        rewards.append((rollout.scalars["reward/epdms"], rollout.scalars["reward/policy_epdms"]))
        scalars = ppo_update(module, module, rollout, optimizer, 1.0, generator)
    assert rewards[-1][0] > rewards[0][0] + 0.03  # the sampled plans' mean learned reward
    assert rewards[-1][1] > rewards[0][1] + 0.05  # the policy's own (deterministic) plan
    for name in ("losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl", "losses/clipfrac"):
        assert math.isfinite(scalars[name])


def test_only_the_planner_trains_by_default_and_the_reference_stays_frozen() -> None:
    module, features, targets = tiny_module(finetune_steps=1)
    before = {n: p.clone() for n, p in module.named_parameters()}
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    rollout = _rollout(module, features, targets)
    assert rollout.old_log_probs.shape[-1] == 1  # only the last denoising step is trained
    ppo_update(module, module, rollout, optimizer, 1.0, torch.Generator().manual_seed(0))
    changed = {n for n, p in module.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith("policy.planner.") for n in changed)
    assert any(n.startswith("value.") for n in changed)
    assert not any(n.startswith(("reference.", "policy.vision.", "policy.language.")) for n in changed)


def test_bc_is_raised_where_no_sample_beats_the_expert_and_kl_is_zero_at_the_reference() -> None:
    module, features, targets = tiny_module(bc={"coef": 0.1, "coef_no_improvement": 1.0, "kl_coef": 1.0})
    expert = targets["trajectory"].clone()
    expert[1, :, 0] = 1000.0  # scene 1's expert drives far: no sample beats it under the progress reward
    expert[0, :, 0] = -5.0  # scene 0's expert reverses: every sample beats it
    reward = RewardFunction(ProgressReward(), RewardConfig())
    rollout = collect_rollout(module, features, features, expert, reward, torch.Generator().manual_seed(0))
    assert float(rollout.bc_weights[0]) == pytest.approx(0.1)
    assert float(rollout.bc_weights[1]) == pytest.approx(1.0)
    terms = module(rollout)
    assert float(terms["losses/kl"]) == pytest.approx(0.0, abs=1e-10)  # the policy still is the reference
    bc = terms["losses/bc_loss"]  # the reference chains' NLL (a density over 0.1-wide Gaussians may exceed 1)
    assert bc.requires_grad and math.isfinite(float(bc)) and float(bc) != 0.0
    expert_bc, *_ = tiny_module(bc={"source": "expert"})
    assert float(expert_bc(_rollout(expert_bc, features, targets))["losses/bc_loss"]) > 0  # an L1


def test_any_scorer_call_raises_during_an_update_and_works_again_after() -> None:
    original = Scorer.score
    with no_simulator(), pytest.raises(SimulatorInLoopError, match="PPO update"):
        FastScorer().score(None, None, None)  # type: ignore[arg-type]
    assert Scorer.score is original

    module, features, targets = tiny_module(bc=NO_BC)
    rollout = _rollout(module, features, targets)

    def cheating_network(batch: Rollout, generator: torch.Generator | None = None) -> dict:
        FastScorer().geometric_metrics(None, None)  # type: ignore[arg-type]
        return {}

    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.0)
    with pytest.raises(SimulatorInLoopError, match="geometric_metrics"):
        ppo_update(cheating_network, module, rollout, optimizer, 1.0, torch.Generator())  # type: ignore[arg-type]
    assert "geometric_metrics" in vars(FastScorer) and FastScorer.geometric_metrics.__name__ == "geometric_metrics"
    with pytest.raises(TypeError):  # the real method again: it takes the cache and states
        FastScorer().geometric_metrics()  # type: ignore[call-arg]


def test_a_regression_planner_is_refused_naming_the_head() -> None:
    from irl_vla.models.vla.model import VLAModel
    from irl_vla.training.ppo.config import BCConfig, PPOSettings
    from tests.models.vla.helpers import tiny_config

    with pytest.raises(ValueError, match="planner.head=regression"):
        PPOModule(VLAModel(tiny_config(planner={"head": "regression"})), PPOSettings(), BCConfig())


def test_with_a_margin_the_selection_follows_the_reward_only_where_it_beats_stage_1s_pick_by_it() -> None:
    rewards = torch.tensor([[0.80, 0.85, 0.50], [0.30, 0.90, 0.60]])  # (B, K)
    reference = torch.tensor([[2.0, 0.0, 0.0], [1.0, 0.0, 0.5]])  # stage 1 picks mode 0 in both scenes
    everywhere, decided = selection_targets(rewards, 0.02, 0.0, None)
    torch.testing.assert_close(everywhere, torch.softmax(rewards / 0.02, dim=-1))
    assert decided.all()
    targets, decided = selection_targets(rewards, 0.02, 0.2, reference)
    assert decided.tolist() == [False, True]  # scene 0: +0.05 over the pick; scene 1: +0.6
    torch.testing.assert_close(targets[0], torch.softmax(reference[0], dim=-1))  # stage 1's own confidence
    torch.testing.assert_close(targets[1], torch.softmax(rewards[1] / 0.02, dim=-1))
    with pytest.raises(ValueError, match="confidence logits"):
        selection_targets(rewards, 0.02, 0.2, None)


def test_the_rollout_keeps_stage_1s_confidence_as_the_selection_target_below_the_margin() -> None:
    module, features, targets = tiny_module(selection_margin=10.0, bc=NO_BC)  # no scene can beat stage 1 by 10
    rollout = _rollout(module, features, targets)
    ctx, _ = module.reference.encode(features, None, with_aux=False)
    stage1 = torch.softmax(module.reference.planner.sample(ctx).logits, dim=-1)
    torch.testing.assert_close(rollout.selection_targets, stage1)
    assert rollout.scalars["charts/selection_by_reward"] == 0.0
    assert float(module(rollout)["losses/selection_loss"]) == pytest.approx(
        float(-(stage1 * stage1.log()).sum(-1).mean()), abs=1e-5
    )  # at the start the policy's confidence is stage 1's: the loss is its entropy
    free, *_ = tiny_module(bc=NO_BC)
    rollout = _rollout(free, features, targets)
    torch.testing.assert_close(rollout.selection_targets, torch.softmax(rollout.deterministic_rewards / 0.02, dim=-1))
