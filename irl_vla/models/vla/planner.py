"""The planner: anchored truncated diffusion over K anchor trajectories (DiffusionDrive-style idea, our code).

Trajectories are standardised per pose and column with statistics from data (``trajectory_norm``). Training
noises the K anchors to a timestep drawn from ``[0, train_max_timestep)`` and the denoiser predicts the clean
trajectory of every mode (``prediction_type="sample"``) and a confidence logit. Inference noises the anchors to
``start_timestep`` and runs ``num_denoising_steps`` DDIM steps of a ``diffusers.DDIMScheduler`` (timesteps
``stride * (S - 1), ..., stride, 0``; the last step lands on the clean sample).

**Chains for RL.** With ``stochastic=True`` each step samples ``x_next ~ N(mean, std^2)`` per coordinate, where
``mean`` is the scheduler's DDIM step at ``eta`` (its variance noise set to zero) and
``std = max(eta * sigma_DDIM(t), std_min)``; the log-probability of the chain is the sum of these Gaussian
log-densities (the initial noise of the anchors does not depend on the parameters and is not part of it).
``chain_log_prob`` re-evaluates it for a given chain under the current parameters (PPO's ratio).

The denoiser is a stack of blocks; each block lets the K mode queries attend to each other, then cross-attend in
turn to the meta tokens (language), BEV tokens, map tokens, object tokens and (when the model has one) the route
head's tokens, then applies a feed-forward layer modulated by the timestep and ego embedding (which carries the
route head's predicted centreline when the planner reads it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from torch import Tensor, nn

from irl_vla.data.enums import SE2Index
from irl_vla.models.vla.config import PlannerConfig
from irl_vla.models.vla.layers import Attention, mlp, sinusoidal_embedding
from irl_vla.models.vla.normalization import Standardizer

#: Token sets the denoiser blocks cross-attend to, in this order.
#: ``route`` (the route head's tokens) only when the model config gives the planner the route head's prediction.
CONTEXT_SOURCES: tuple[str, ...] = ("meta", "bev", "map", "objects", "route")


@dataclass
class PlannerContext:
    """What the planner conditions on.

    Attributes:
        ego: ego embedding ``(B, D)``.
        tokens: source name (``CONTEXT_SOURCES``) -> tokens ``(B, L, D)``; a missing source is skipped.
        anchors: per-scene anchors ``(B, K, T, 3)`` [m, m, rad] (the planner's anchors bent along the road ahead,
            ``bend.bend_anchors``); ``None``: the planner's own ``(K, T, 3)`` for every scene.
    """

    ego: Tensor
    tokens: dict[str, Tensor]
    anchors: Tensor | None = None


@dataclass
class PlannerOutput:
    """Denoised modes and, for sampled chains, what RL needs.

    Attributes:
        modes: ``(B, K, T, 3)`` metric trajectories [m, m, rad].
        logits: ``(B, K)`` mode confidence logits.
        chain: ``(B, K, S + 1, T, 3)`` normalised states, the noised anchors first.
        means: ``(B, K, S, T, 3)`` normalised Gaussian means of each step.
        stds: ``(S,)`` per-step standard deviations (normalised units).
        log_probs: ``(B, K, S)`` per-step log-densities of the chain (zeros when not stochastic).
    """

    modes: Tensor
    logits: Tensor
    chain: Tensor
    means: Tensor
    stds: Tensor
    log_probs: Tensor


def build_scheduler(cfg: PlannerConfig) -> DDIMScheduler:
    """The DDIM scheduler of the planner, its timesteps spaced ``denoising_stride`` apart (tables on the CPU)."""
    with torch.device("cpu"):  # also when the model is built under another default device (e.g. meta)
        return _ddim(cfg)


def _ddim(cfg: PlannerConfig) -> DDIMScheduler:
    scheduler = DDIMScheduler(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_start=cfg.beta_start,
        beta_end=cfg.beta_end,
        beta_schedule=cfg.beta_schedule,
        prediction_type="sample",
        clip_sample=False,
        set_alpha_to_one=True,
        steps_offset=0,
        timestep_spacing="leading",
    )
    scheduler.set_timesteps(cfg.num_train_timesteps // cfg.denoising_stride)
    return scheduler


class DenoiserBlock(nn.Module):
    """Self-attention over modes, cross-attention to each context source in turn, modulated feed-forward."""

    def __init__(self, d_model: int, num_heads: int, ffn_mult: int, sources: tuple[str, ...]) -> None:
        super().__init__()
        self.self_attn = Attention(d_model, num_heads, cross=False)
        self.cross = nn.ModuleDict({s: Attention(d_model, num_heads, cross=True) for s in sources})
        self.film = nn.Linear(d_model, 2 * d_model)
        self.norm = nn.LayerNorm(d_model, elementwise_affine=False)
        self.mlp = mlp(d_model, d_model * ffn_mult, d_model)

    def project_context(self, tokens: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Keys and values of each context source this block reads (computed once per scene)."""
        return {s: attn.project_memory(tokens[s]) for s, attn in self.cross.items() if s in tokens}

    def forward(self, q: Tensor, cond: Tensor, context: dict[str, tuple[Tensor, Tensor]]) -> Tensor:
        """Queries ``(B, K, D)``, condition ``(B, D)``, projected context -> ``(B, K, D)``."""
        q = self.self_attn(q)
        for source, attn in self.cross.items():
            if source in context:
                q = attn(q, memory_kv=context[source])
        scale, shift = self.film(cond).unsqueeze(1).chunk(2, dim=-1)  # (B, 1, D) each
        return q + self.mlp(self.norm(q) * (1 + scale) + shift)


class DiffusionPlanner(nn.Module):
    """Anchored truncated diffusion planner (see the module docstring)."""

    def __init__(
        self, cfg: PlannerConfig, num_poses: int, d_model: int, num_heads: int, ffn_mult: int, sources: tuple[str, ...]
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_poses = num_poses
        pose_dim = num_poses * len(SE2Index)
        self.scheduler = build_scheduler(cfg)
        self.timesteps = [int(t) for t in self.scheduler.timesteps[-cfg.num_denoising_steps :]]
        self.register_buffer("anchors", torch.zeros(cfg.num_modes, num_poses, len(SE2Index)))
        self.register_buffer("anchors_set", torch.tensor(False))
        self.trajectory_norm = Standardizer("trajectory", (num_poses, len(SE2Index)))
        self.encode = mlp(pose_dim, d_model, d_model)
        self.mode_embedding = nn.Parameter(torch.randn(cfg.num_modes, d_model) * 0.02)
        self.time_mlp = mlp(d_model, d_model, d_model)
        self.blocks = nn.ModuleList(DenoiserBlock(d_model, num_heads, ffn_mult, sources) for _ in range(cfg.num_blocks))
        self.out_norm = nn.LayerNorm(d_model)
        self.offset_head = mlp(d_model, d_model, pose_dim)
        self.score_head = mlp(d_model, d_model, 1)
        with torch.no_grad():  # start every mode at the prior 1 / K (focal-loss practice)
            self.score_head[-1].bias.fill_(-math.log(cfg.num_modes - 1) if cfg.num_modes > 1 else 0.0)
        alphas = self.scheduler.alphas_cumprod.double()
        final = float(self.scheduler.final_alpha_cumprod)
        stds = []
        for t in self.timesteps:  # DDIM's sigma(t -> t - stride) at eta = 1 (Song et al. eq. 16)
            prev = t - cfg.denoising_stride
            a_t, a_prev = float(alphas[t]), (float(alphas[prev]) if prev >= 0 else final)
            stds.append(((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5)
        self.register_buffer("ddim_stds", torch.tensor(stds, dtype=torch.float32), persistent=False)

    def set_anchors(self, anchors: Tensor) -> None:
        """Set the K anchors ``(K, T, 3)`` [m, m, rad] (from ``compute_anchors``).

        Raises:
            ValueError: on a shape mismatch or non-finite values.
        """
        if tuple(anchors.shape) != tuple(self.anchors.shape) or not bool(torch.isfinite(anchors).all()):
            raise ValueError(
                f"anchors: expected finite (K, T, 3) = {tuple(self.anchors.shape)}, got {tuple(anchors.shape)}"
            )
        self.anchors.copy_(anchors)
        self.anchors_set.fill_(True)

    def scene_anchors(self, ctx: PlannerContext) -> Tensor:
        """The anchors each scene starts from ``(B, K, T, 3)`` [m, m, rad]: ``ctx.anchors``, else the planner's own.

        Raises:
            RuntimeError: when the planner's anchors were never set.
        """
        if not bool(self.anchors_set):
            raise RuntimeError(
                "planner anchors are not set: compute them from expert trajectories (compute_anchors) and call "
                "VLAModel.set_anchors, or load a checkpoint"
            )
        if ctx.anchors is not None:
            return ctx.anchors
        return self.anchors.unsqueeze(0).expand(ctx.ego.shape[0], -1, -1, -1)

    def _normalised_anchors(self, ctx: PlannerContext) -> Tensor:
        """``scene_anchors``, standardised ``(B, K, T, 3)``."""
        return self.trajectory_norm(self.scene_anchors(ctx))

    def project_context(self, ctx: PlannerContext) -> list[dict[str, tuple[Tensor, Tensor]]]:
        """Per block, the keys and values of the context sources (shared by all denoising steps)."""
        return [block.project_context(ctx.tokens) for block in self.blocks]

    def denoise(
        self,
        x_t: Tensor,
        timesteps: Tensor,
        ctx: PlannerContext,
        projected: list[dict[str, tuple[Tensor, Tensor]]] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Predict the clean trajectories and confidence of every mode.

        Args:
            x_t: noisy normalised trajectories ``(B, K, T, 3)``.
            timesteps: ``(B,)`` diffusion timesteps.
            ctx: the conditioning.
            projected: ``project_context(ctx)``, when already computed.

        Returns:
            Clean normalised trajectories ``(B, K, T, 3)`` and logits ``(B, K)``.
        """
        b, k = x_t.shape[:2]
        projected = self.project_context(ctx) if projected is None else projected
        cond = self.time_mlp(sinusoidal_embedding(timesteps, ctx.ego.shape[-1])) + ctx.ego  # (B, D)
        q = self.encode(x_t.flatten(2)) + self.mode_embedding + cond.unsqueeze(1)  # (B, K, D)
        for block, context in zip(self.blocks, projected, strict=True):
            q = block(q, cond, context)
        q = self.out_norm(q)
        x0 = x_t + self.offset_head(q).view(b, k, self.num_poses, len(SE2Index))  # (B, K, T, 3)
        return x0, self.score_head(q).squeeze(-1)

    def forward_train(self, ctx: PlannerContext, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """One denoising pass from anchors noised to random timesteps in ``[0, train_max_timestep)``.

        Returns:
            Metric modes ``(B, K, T, 3)`` and logits ``(B, K)``.
        """
        b = ctx.ego.shape[0]
        anchors = self._normalised_anchors(ctx)
        device = anchors.device
        t = torch.randint(0, self.cfg.train_max_timestep, (b,), generator=generator, device=device)  # (B,)
        noise = torch.randn(anchors.shape, generator=generator, device=device)
        x_t = self.scheduler.add_noise(anchors, noise, t)  # (B, K, T, 3)
        x0, logits = self.denoise(x_t, t, ctx)
        return self.trajectory_norm.inverse(x0), logits

    def _step(
        self, x: Tensor, step: int, ctx: PlannerContext, projected: list[dict[str, tuple[Tensor, Tensor]]], eta: float
    ) -> tuple[Tensor, Tensor]:
        """Denoise at step ``step`` of ``timesteps``: the DDIM mean ``(B, K, T, 3)`` and logits ``(B, K)``."""
        t = self.timesteps[step]
        x0, logits = self.denoise(x, torch.full((x.shape[0],), t, device=x.device), ctx, projected)
        mean = self.scheduler.step(x0, t, x, eta=eta, variance_noise=torch.zeros_like(x)).prev_sample
        return mean, logits

    def step_stds(self, std_min: float | None = None) -> Tensor:
        """Per-step standard deviations ``(S,)`` of sampled chains: ``max(eta * sigma_DDIM, std_min)``.

        ``std_min`` overrides the config's floor (PPO samples and evaluates log-probabilities with floors of its own).
        """
        return (self.cfg.eta * self.ddim_stds).clamp_min(self.cfg.std_min if std_min is None else std_min)

    def sample(
        self,
        ctx: PlannerContext,
        *,
        stochastic: bool = False,
        generator: torch.Generator | None = None,
        std_min: float | None = None,
    ) -> PlannerOutput:
        """Denoise the anchors.

        Deterministic (default): anchors scaled to the start timestep without noise, then DDIM at ``eta = 0``.
        Stochastic: anchors noised with random noise, then each step sampled around the DDIM mean at ``eta``, with
        the standard deviations ``step_stds(std_min)``.
        """
        b = ctx.ego.shape[0]
        anchors = self._normalised_anchors(ctx)
        start = torch.full((b,), self.timesteps[0], device=anchors.device)
        noise = torch.randn(anchors.shape, generator=generator, device=anchors.device) if stochastic else None
        x = self.scheduler.add_noise(anchors, torch.zeros_like(anchors) if noise is None else noise, start)
        stds = self.step_stds(std_min) if stochastic else torch.zeros_like(self.ddim_stds)
        chain, means, log_probs = [x], [], []
        logits = anchors.new_zeros(anchors.shape[:2])
        projected = self.project_context(ctx)
        for step in range(len(self.timesteps)):
            mean, logits = self._step(x, step, ctx, projected, self.cfg.eta if stochastic else 0.0)
            if stochastic:
                x = mean + stds[step] * torch.randn(mean.shape, generator=generator, device=mean.device)
                log_probs.append(gaussian_log_prob(x, mean, stds[step]))
            else:
                x = mean
                log_probs.append(mean.new_zeros(mean.shape[:2]))
            chain.append(x)
            means.append(mean)
        return PlannerOutput(
            modes=self.trajectory_norm.inverse(x),
            logits=logits,
            chain=torch.stack(chain, dim=2),  # (B, K, S + 1, T, 3)
            means=torch.stack(means, dim=2),  # (B, K, S, T, 3)
            stds=stds,
            log_probs=torch.stack(log_probs, dim=2),  # (B, K, S)
        )

    def chain_log_prob(self, ctx: PlannerContext, chain: Tensor) -> Tensor:
        """Per-step log-probabilities ``(B, K, S)`` of a sampled ``chain`` ``(B, K, S + 1, T, 3)``.

        Evaluated under the current parameters, differentiably.

        Raises:
            ValueError: when the chain has another number of steps or shape.
        """
        means = self.chain_means(ctx, chain)  # (B, K, S, T, 3)
        stds = self.step_stds()
        out = [gaussian_log_prob(chain[:, :, step + 1], means[:, :, step], stds[step]) for step in range(len(stds))]
        return torch.stack(out, dim=2)

    def chain_means(self, ctx: PlannerContext, chain: Tensor, first_step: int = 0) -> Tensor:
        """Gaussian means ``(B, K, S - first_step, T, 3)`` of the steps ``first_step, ..., S - 1`` of ``chain``.

        Each step's mean depends only on the chain's state before it, so only the requested steps are run
        (PPO fine-tuning the last steps alone); differentiable under the current parameters.

        Raises:
            ValueError: when the chain has another number of steps or shape, or ``first_step`` is out of range.
        """
        b, k = ctx.ego.shape[0], self.cfg.num_modes
        want = (b, k, len(self.timesteps) + 1, self.num_poses, len(SE2Index))
        if tuple(chain.shape) != want:
            raise ValueError(f"chain: expected shape {want}, got {tuple(chain.shape)}")
        if not 0 <= first_step < len(self.timesteps):
            raise ValueError(f"chain_means: first_step {first_step} is not in [0, {len(self.timesteps)})")
        projected = self.project_context(ctx)
        means = [
            self._step(chain[:, :, step], step, ctx, projected, self.cfg.eta)[0]
            for step in range(first_step, len(self.timesteps))
        ]
        return torch.stack(means, dim=2)


def gaussian_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Log-density ``(B, K)`` of ``x`` under independent ``N(mean, std^2)`` over the pose axes ``(T, 3)``."""
    return torch.distributions.Normal(mean, std).log_prob(x).sum(dim=(-2, -1))
