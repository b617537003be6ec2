"""One PPO iteration against the learned reward, top to bottom: rollout, advantages, the loss, the update.

**The MDP.** A scene is a one-step episode: the policy plans, the reward model scores the plan (no simulator).
Inside the plan, the planner's denoising chain is the sequence of actions (DPPO): each denoising step samples
``x_{s+1} ~ N(mu_theta(x_s, s, scene), std_s^2)``, with ``std_s = max(eta * sigma_DDIM(s), sampling_std_min)``
while sampling. The log-probability of a step is the Gaussian log-density of the sampled state with the std
floored at ``logprob_std_min``, clamped per coordinate to ``logprob_clamp`` and averaged over the poses'
coordinates. Only the last ``finetune_steps`` steps are trained (0: all).

1. **Rollout** (``collect_rollout``, no gradients): encode each scene once; sample ``samples_per_anchor`` (G) chains
   for each of the K anchors; run the deterministic chain too (what the policy outputs at inference); score the
   G * K samples, the K deterministic modes and the expert's trajectory with the reward model
   (``RewardFunction``); the value head's estimate of each anchor.
2. **Advantages**: GAE over the one-step episode (``r - V``), normalised within groups of the G samples of one
   scene and anchor, copied to each trained denoising step with the discount ``denoise_gamma ** (S'-1-s)``.
3. **The loss** (``PPOModule.forward``, on a minibatch of scenes):
   ``policy_loss + vf_coef * value_loss - ent_coef * entropy + bc_coef(scene) * bc_loss + kl_coef * kl
   + selection_coef * selection_loss``:
   - ``policy_loss``: PPO's clipped surrogate ``max(-A r, -A clip(r, 1 - eps, 1 + eps))`` per trained step, with
     ``r = exp(log pi_new - log pi_old)``;
   - ``value_loss``: ``0.5 (V - R)^2`` (optionally clipped around the rollout's values), ``R`` the GAE return;
   - ``entropy``: of the Gaussian steps (fixed stds: logged, no gradient);
   - ``bc_loss``: behaviour cloning, per scene: the negative log-likelihood of a chain of the frozen stage-1
     policy (``bc.source=reference``), or the L1 of the mode of the anchor nearest the expert
     (``bc.source=expert``); weighted ``bc.coef``, or ``bc.coef_no_improvement`` in a scene where no sample
     beats the expert under the learned reward;
   - ``kl``: KL(current || stage 1) of each trained step at the sampled states (``bc.kl_coef``; 0: off);
   - ``selection_loss``: the confidence logits of the deterministic modes learn
     ``softmax(learned reward / selection_temperature)``, so the mode the policy picks follows the reward; with
     ``selection_margin`` only in scenes where the reward's best mode beats stage 1's pick by that margin, the
     others keeping stage 1's own confidence (``selection_targets``).
4. **Update** (``ppo_update``): ``update_epochs`` passes of ``num_minibatches`` optimiser steps (gradient
   clipping; stop early past ``target_kl``); the scalars are logged under CleanRL's names (``losses/*``,
   ``charts/learning_rate``, ``reward/<sub-score>``). The whole iteration runs inside ``no_simulator()``: any call
   into the scorer raises.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from irl_vla.models.vla.loss import winning_anchor, wrap_angle
from irl_vla.models.vla.model import VLAModel
from irl_vla.models.vla.planner import DiffusionPlanner, PlannerContext
from irl_vla.scoring.sub_scores import SubScore
from irl_vla.training.ppo.advantages import denoising_discount, gae, normalize_advantages
from irl_vla.training.ppo.config import BCConfig, PPOSettings
from irl_vla.training.ppo.executed import EGO_STATUS_KEY, StateAnchoring
from irl_vla.training.ppo.guard import no_simulator
from irl_vla.training.ppo.networks import (
    ValueHead,
    detach_context,
    repeat_context,
    select_context,
)
from irl_vla.training.ppo.reward import RewardFunction


# ---------------------------------------------------------------------------------------------- log-probabilities
def step_log_probs(states: Tensor, means: Tensor, stds: Tensor, clamp: tuple[float, float] | None) -> Tensor:
    """Per-step log-probabilities ``(..., S')`` of sampled ``states`` ``(..., S', T, 3)`` under ``N(means, stds^2)``.

    Per coordinate log-densities, clamped to ``clamp`` (``None``: not clamped), averaged over the ``(T, 3)``
    coordinates; ``stds`` ``(S',)`` per step.
    """
    scale = stds.view(-1, 1, 1)  # (S', 1, 1)
    log_density = -((states - means) ** 2) / (2 * scale**2) - torch.log(scale) - 0.5 * math.log(2 * math.pi)
    if clamp is not None:
        log_density = log_density.clamp(clamp[0], clamp[1])
    return log_density.mean(dim=(-2, -1))


def gaussian_entropy(stds: Tensor) -> Tensor:
    """Entropy per coordinate ``()`` of Gaussians of standard deviations ``stds`` ``(S',)``, averaged over steps."""
    return (0.5 * math.log(2 * math.pi * math.e) + torch.log(stds)).mean()


def trained_steps(planner: DiffusionPlanner, settings: PPOSettings) -> int:
    """The index of the first trained denoising step (the last ``finetune_steps`` are trained; 0: all)."""
    total = len(planner.timesteps)
    if settings.finetune_steps > total:
        raise ValueError(f"ppo.finetune_steps {settings.finetune_steps} exceeds the planner's {total} denoising steps")
    return 0 if settings.finetune_steps == 0 else total - settings.finetune_steps


# ---------------------------------------------------------------------------------------------- 1. rollout
@dataclass
class Rollout:
    """What a rollout on B scenes collected (G samples per anchor, K anchors, S' trained steps).

    Attributes:
        features: the scenes' policy features (re-encoded in the update when the encoder is trained).
        context: the scene tokens of the rollout (reused by the update when only the planner is trained).
        chains: ``(B, G, K, S + 1, T, 3)`` sampled chains (normalised units).
        old_log_probs: ``(B, G, K, S')`` log-probabilities of the trained steps at sampling.
        reference_means: ``(B, G, K, S', T, 3)`` the frozen stage-1 policy's means at the sampled states (KL).
        reference_chains: ``(B, K, S + 1, T, 3)`` chains of the frozen stage-1 policy (BC on reference chains).
        expert: ``(B, T, 3)`` the expert's trajectories.
        rewards: ``(B, G, K)`` learned rewards of the samples.
        values: ``(B, K)`` the value head's estimates at the rollout.
        returns: ``(B, G, K)`` GAE returns.
        advantages: ``(B, G, K)`` normalised advantages.
        deterministic_rewards: ``(B, K)`` learned rewards of the deterministic modes.
        selection_targets: ``(B, K)`` what the confidence logits learn (``selection_targets``).
        bc_weights: ``(B,)`` the BC weight of each scene.
        scalars: what the rollout logs (``reward/*``).
    """

    features: dict[str, Tensor]
    context: PlannerContext
    chains: Tensor
    old_log_probs: Tensor
    reference_means: Tensor | None
    reference_chains: Tensor | None
    expert: Tensor
    rewards: Tensor
    values: Tensor
    returns: Tensor
    advantages: Tensor
    deterministic_rewards: Tensor
    selection_targets: Tensor
    bc_weights: Tensor
    scalars: dict[str, float]

    def select(self, index: Tensor) -> Rollout:
        """The rollout of the scenes ``index`` ``(b,)`` (a minibatch)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "features":
                value = {k: v[index] for k, v in value.items()}
            elif f.name == "context":
                value = select_context(value, index)
            elif isinstance(value, Tensor):
                value = value[index]
            out[f.name] = value
        return Rollout(**out)


def selection_targets(
    rewards: Tensor, temperature: float, margin: float, reference_logits: Tensor | None
) -> tuple[Tensor, Tensor]:
    """What the confidence logits of the K deterministic modes learn, and where the learned reward decides.

    Args:
        rewards: ``(B, K)`` learned rewards of the deterministic modes.
        temperature: of the reward's target ``softmax(rewards / temperature)``.
        margin: the reward decides only in a scene where its best mode beats the mode at the stage-1 policy's
            pick by at least this; elsewhere the target is the stage-1 policy's confidence ``softmax(
            reference_logits)`` (0: the reward decides everywhere).
        reference_logits: ``(B, K)`` the frozen stage-1 policy's confidence logits (needed when ``margin > 0``).

    Returns:
        The targets ``(B, K)`` (each row sums to 1) and ``(B,)`` whether the reward decided in each scene.

    Raises:
        ValueError: when ``margin > 0`` and no reference logits are given.
    """
    target = torch.softmax(rewards / temperature, dim=-1)
    decided = torch.ones(rewards.shape[0], dtype=torch.bool, device=rewards.device)
    if margin <= 0:
        return target, decided
    if reference_logits is None:
        raise ValueError("ppo.selection_margin > 0 needs the stage-1 policy's confidence logits")
    picked = reference_logits.argmax(-1, keepdim=True)  # (B, 1)
    decided = rewards.max(-1).values - rewards.gather(-1, picked)[:, 0] >= margin  # (B,)
    return torch.where(decided[:, None], target, torch.softmax(reference_logits, dim=-1)), decided


def _reward_scalars(sub_scores: Tensor, rewards: Tensor, det: Tensor, picked: Tensor, expert: Tensor) -> dict:
    """``reward/*`` scalars: mean predicted sub-scores and rewards of the samples, the policy's pick, the expert."""
    out = {f"reward/{s.name}": float(torch.nanmean(sub_scores[..., s])) for s in SubScore}
    out["reward/epdms"] = float(rewards.mean())
    out["reward/policy_epdms"] = float(det.gather(1, picked[:, None]).mean())
    out["reward/expert_epdms"] = float(expert.mean())
    return out


@torch.no_grad()
def collect_rollout(
    module: PPOModule,
    features: Mapping[str, Tensor],
    reward_features: Mapping[str, Tensor],
    expert: Tensor,
    reward_fn: RewardFunction,
    generator: torch.Generator | None,
    anchoring: StateAnchoring | None = None,
) -> Rollout:
    """Sample, score (learned reward only) and compute advantages on a batch of B scenes (see the module docstring).

    Args:
        module: the policy, its value head and the frozen stage-1 reference.
        features: the policy's batched features.
        reward_features: the reward model's batched features of the same scenes.
        expert: ``(B, T, 3)`` the expert's trajectories.
        reward_fn: the learned reward.
        generator: the random source of the samples.
        anchoring: the agent's refit to the ego state: the reward scores the policy's plans (samples and
            deterministic modes, not the expert's log) as the agent would execute them; ``None``: as they are.

    Raises:
        ValueError: when ``anchoring`` is given and the features hold no ``ego_status``.
    """
    s, policy = module.settings, module.policy
    planner = policy.planner
    g = s.samples_per_anchor
    ctx, _ = policy.encode(features, None, with_aux=False)
    b, k = ctx.ego.shape[0], planner.cfg.num_modes
    first = trained_steps(planner, s)
    sampled = planner.sample(repeat_context(ctx, g), stochastic=True, generator=generator, std_min=s.sampling_std_min)
    chains = sampled.chain.reshape(b, g, k, *sampled.chain.shape[2:])  # (B, G, K, S + 1, T, 3)
    means = sampled.means[:, :, first:].reshape(b, g, k, -1, *sampled.means.shape[-2:])  # (B, G, K, S', T, 3)
    lp_stds = planner.step_stds(s.logprob_std_min)[first:]  # (S',)
    old_log_probs = step_log_probs(chains[:, :, :, first + 1 :], means, lp_stds, tuple(s.logprob_clamp))
    deterministic = planner.sample(ctx)  # what the policy plans at inference
    samples = sampled.modes.reshape(b, g * k, *sampled.modes.shape[-2:])  # (B, G * K, T, 3)
    plans = torch.cat([samples, deterministic.modes], dim=1)  # (B, G * K + K, T, 3)
    if anchoring is not None:
        if EGO_STATUS_KEY not in features:
            raise ValueError(f"reward.anchor_to_state: the policy's features hold no {EGO_STATUS_KEY!r}")
        plans = anchoring(plans, features[EGO_STATUS_KEY])
    candidates = torch.cat([plans, expert[:, None]], dim=1)  # (B, G * K + K + 1, T, 3)
    scored = reward_fn(reward_features, candidates)
    rewards = scored.reward[:, : g * k].reshape(b, g, k)
    det_rewards = scored.reward[:, g * k : g * k + k]  # (B, K)
    expert_rewards = scored.reward[:, -1]  # (B,)

    values = module.value(ctx)  # (B, K)
    episode_values = values[:, None, :, None].expand(b, g, k, 1)  # one-step episodes: (B, G, K, L = 1)
    done = rewards.new_ones(b, g, k, 1)  # every episode ends after its one step
    advantages = gae(rewards[..., None], episode_values, rewards.new_zeros(b, g, k), done, s.gamma, s.gae_lambda)
    advantages = advantages[..., 0]  # = r - V
    returns = advantages + values[:, None]  # (B, G, K)
    normalised = normalize_advantages(advantages, s.advantage_norm, group_dim=1)

    beats = (rewards > expert_rewards[:, None, None]).flatten(1).any(dim=1)  # (B,)
    bc = module.bc
    bc_weights = bc.coef_no_improvement + (bc.coef - bc.coef_no_improvement) * beats.float()  # (B,)
    reference_chains = reference_means = reference_logits = None
    ref_planner = module.reference.planner
    if bc.coef > 0 or bc.coef_no_improvement > 0 or bc.kl_coef > 0 or s.selection_margin > 0:
        ref_ctx = ctx if s.finetune == "planner" else module.reference.encode(features, None, with_aux=False)[0]
        if s.selection_margin > 0:
            reference_logits = ref_planner.sample(ref_ctx).logits  # (B, K) stage 1's confidence
        if bc.source == "reference" and (bc.coef > 0 or bc.coef_no_improvement > 0):
            reference_chains = ref_planner.sample(
                ref_ctx, stochastic=True, generator=generator, std_min=s.sampling_std_min
            ).chain
        if bc.kl_coef > 0:
            ref = ref_planner.chain_means(repeat_context(ref_ctx, g), sampled.chain, first)
            reference_means = ref.reshape(b, g, k, *ref.shape[2:])
    scalars = _reward_scalars(
        scored.sub_scores[:, : g * k], rewards, det_rewards, deterministic.logits.argmax(-1), expert_rewards
    )
    targets, decided = selection_targets(det_rewards, s.selection_temperature, s.selection_margin, reference_logits)
    scalars["reward/beats_expert"] = float(beats.float().mean())
    scalars["charts/selection_by_reward"] = float(decided.float().mean())
    scalars["charts/bc_coef"] = float(bc_weights.mean())
    return Rollout(
        features=dict(features),
        context=detach_context(ctx),
        chains=chains,
        old_log_probs=old_log_probs,
        reference_means=reference_means,
        reference_chains=reference_chains,
        expert=expert,
        rewards=rewards,
        values=values,
        returns=returns,
        advantages=normalised,
        deterministic_rewards=det_rewards,
        selection_targets=targets,
        bc_weights=bc_weights,
        scalars=scalars,
    )


# ---------------------------------------------------------------------------------------------- 3. the loss
class PPOModule(nn.Module):
    """The policy being fine-tuned, its value head and the frozen stage-1 reference; ``forward`` is the PPO loss.

    Args:
        policy: the stage-1 VLA (its statistics and anchors set).
        settings: PPO's settings.
        bc: the regulariser's settings.
    """

    def __init__(self, policy: VLAModel, settings: PPOSettings, bc: BCConfig) -> None:
        super().__init__()
        if policy.cfg.planner.head != "diffusion":
            raise ValueError(
                f"ppo: the policy's planner is a {type(policy.planner).__name__} (planner.head="
                f"{policy.cfg.planner.head}); PPO fine-tunes the denoising chain of the diffusion planner"
            )
        self.settings, self.bc = settings, bc
        self.policy = policy
        self.value = ValueHead(policy.cfg.d_model, policy.cfg.planner.num_modes)
        self.reference = copy.deepcopy(policy)
        self.reference.requires_grad_(False)
        if settings.finetune == "planner":
            policy.requires_grad_(False)
            policy.planner.requires_grad_(True)
        trained_steps(policy.planner, settings)  # checks finetune_steps

    def train(self, mode: bool = True) -> PPOModule:
        """Every part stays in eval mode (no dropout: the ratio compares the same function before and after)."""
        return super().train(False)

    def forward(self, batch: Rollout, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The loss terms of a minibatch of the rollout (``loss`` is minimised)."""
        s, planner = self.settings, self.policy.planner
        b, g, k = batch.rewards.shape
        first = trained_steps(planner, s)
        encode = s.finetune == "all"  # else the frozen encoder's tokens of the rollout
        ctx = self.policy.encode(batch.features, None, with_aux=False)[0] if encode else batch.context
        lp_stds = planner.step_stds(s.logprob_std_min)[first:]  # (S',)

        # policy loss: clipped surrogate per trained denoising step
        chains = batch.chains.flatten(0, 1)  # (B * G, K, S + 1, T, 3)
        means = planner.chain_means(repeat_context(ctx, g), chains, first)  # (B * G, K, S', T, 3)
        means = means.reshape(b, g, k, *means.shape[2:])
        new_log_probs = step_log_probs(batch.chains[:, :, :, first + 1 :], means, lp_stds, tuple(s.logprob_clamp))
        log_ratio = new_log_probs - batch.old_log_probs  # (B, G, K, S')
        ratio = log_ratio.exp()
        adv = denoising_discount(batch.advantages, len(lp_stds), s.denoise_gamma)  # (B, G, K, S')
        policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - s.clip, 1 + s.clip)).mean()

        # value loss: 0.5 (V - R)^2, optionally clipped around the rollout's values
        values = self.value(ctx)[:, None]  # (B, 1, K)
        value_loss = 0.5 * (values - batch.returns) ** 2
        if s.clip_value > 0:
            clipped = batch.values[:, None] + (values - batch.values[:, None]).clamp(-s.clip_value, s.clip_value)
            value_loss = torch.max(value_loss, 0.5 * (clipped - batch.returns) ** 2)
        value_loss = value_loss.mean()

        entropy = gaussian_entropy(lp_stds)

        # behaviour cloning towards stage 1, per scene, raised where no sample beat the expert
        bc_per_scene = torch.zeros(b, device=ratio.device)
        if batch.reference_chains is not None:
            ref_means = planner.chain_means(ctx, batch.reference_chains, first)  # (B, K, S', T, 3)
            ref_log_probs = step_log_probs(batch.reference_chains[:, :, first + 1 :], ref_means, lp_stds, None)
            bc_per_scene = -ref_log_probs.mean(dim=(1, 2))
        elif self.bc.source == "expert" and (self.bc.coef > 0 or self.bc.coef_no_improvement > 0):
            modes, _ = planner.forward_train(ctx, generator)  # (B, K, T, 3) one pass from noised anchors
            best = winning_anchor(planner.scene_anchors(ctx), batch.expert)  # (B,)
            diff = modes[torch.arange(b, device=modes.device), best] - batch.expert  # (B, T, 3)
            diff = torch.cat([diff[..., :2], wrap_angle(diff[..., 2:])], dim=-1)
            bc_per_scene = diff.abs().mean(dim=(-2, -1))
        bc_loss = (batch.bc_weights * bc_per_scene).mean()

        kl = torch.zeros((), device=ratio.device)
        if batch.reference_means is not None:
            kl = ((means - batch.reference_means) ** 2 / (2 * lp_stds.view(-1, 1, 1) ** 2)).mean()

        selection_loss = torch.zeros((), device=ratio.device)
        if s.selection_coef > 0:
            logits = planner.sample(ctx).logits  # (B, K) of the deterministic modes
            selection_loss = -(batch.selection_targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()

        loss = (
            policy_loss
            + s.vf_coef * value_loss
            - s.ent_coef * entropy
            + bc_loss
            + self.bc.kl_coef * kl
            + s.selection_coef * selection_loss
        )
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()  # CleanRL's estimator of KL(old || new)
            clipfrac = ((ratio - 1).abs() > s.clip).float().mean()
        return {
            "loss": loss,
            "losses/policy_loss": policy_loss,
            "losses/value_loss": value_loss,
            "losses/entropy": entropy,
            "losses/bc_loss": bc_loss,
            "losses/kl": kl,
            "losses/selection_loss": selection_loss,
            "losses/approx_kl": approx_kl,
            "losses/clipfrac": clipfrac,
        }


# ---------------------------------------------------------------------------------------------- 4. the update
def _mean_over_processes(value: Tensor) -> float:
    """``value``'s mean over the training processes (itself in a single process)."""
    value = value.detach().clone().float()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return float(value)


def ppo_update(
    network: nn.Module,
    module: PPOModule,
    rollout: Rollout,
    optimizer: torch.optim.Optimizer,
    grad_clip: float,
    generator: torch.Generator,
    check_finite: Callable[[Tensor, str, Mapping[str, Tensor]], None] | None = None,
) -> dict[str, float]:
    """``update_epochs`` passes of ``num_minibatches`` optimiser steps over ``rollout``; the mean scalars.

    Args:
        network: what computes the loss (``module``, or its DDP wrapper so that gradients are averaged).
        module: the PPO module (its parameters are clipped and stepped).
        rollout: the batch collected by ``collect_rollout``.
        optimizer: the optimiser of the module's trainable parameters.
        grad_clip: largest gradient norm (0: none).
        generator: orders the minibatches (and the BC term's training noise).
        check_finite: raises on a non-finite loss or gradient norm before the weights change.
    """
    s = module.settings
    scenes = rollout.rewards.shape[0]
    size = scenes // s.num_minibatches
    sums: dict[str, float] = {}
    updates = 0
    with no_simulator():
        for _ in range(s.update_epochs):
            order = torch.randperm(scenes, generator=generator, device=generator.device)
            stop = False
            for start in range(0, size * s.num_minibatches, size):
                terms = network(rollout.select(order[start : start + size]), generator)
                if check_finite is not None:
                    check_finite(terms["loss"], "loss", terms)
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip or math.inf)
                if check_finite is not None:
                    check_finite(grad_norm, "gradient norm", terms)
                optimizer.step()
                updates += 1
                for name, value in {**terms, "charts/grad_norm": grad_norm}.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach())
                if s.target_kl > 0 and _mean_over_processes(terms["losses/approx_kl"]) > s.target_kl:
                    stop = True  # every process decides alike (DDP needs the same number of steps in each)
                    break
            if stop:
                break
    out = {name: total / updates for name, total in sums.items()}
    out["charts/updates"] = float(updates)
    return out
