"""Settings of stage 3 (``irl-vla train stage=ppo``): the trainer's, the data's, and PPO's own.

Every default lives here (``configs/train/ppo.yaml`` holds only what differs); ``irl-vla train stage=ppo --help``
lists them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from irl_vla.agents.state_anchoring import DEFAULT_JERK_WEIGHT
from irl_vla.common.config import require_at_least, require_at_least_or_none
from irl_vla.common.config_source import SceneSelectionConfig
from irl_vla.data.features.cameras import DEFAULT_CAMERAS
from irl_vla.scoring.aggregation import AggregationConfig
from irl_vla.scoring.sub_scores import SubScore
from irl_vla.training.trainer import OptimizerConfig, TrainerConfig

#: What PPO fine-tunes: the planner alone (the scene encoder frozen, its tokens computed once per rollout) or all.
FINETUNE_CHOICES = ("planner", "all")
#: How advantages are normalised: within groups of samples of one scene and anchor, over the batch, or not.
ADVANTAGE_NORMS = ("group", "batch", "none")
#: What the behaviour-cloning term imitates: chains of the frozen stage-1 policy, or the expert's trajectory.
BC_SOURCES = ("reference", "expert")


@dataclass
class RewardConfig:
    """The reward of a candidate: the reward model's EPDMS, with optional hard penalties.

    ``reward = aggregate(predicted sub-scores, aggregation) - collision_penalty * [NC < threshold]
    - offroad_penalty * [DAC < threshold] - red_light_penalty * [TLC < threshold]``.

    Attributes:
        aggregation: which predicted sub-scores multiply and the weight of each averaged one (EPDMS by default).
        collision_penalty: subtracted when the predicted NC is below ``penalty_threshold`` (0: off).
        offroad_penalty: subtracted when the predicted DAC (drivable area) is below ``penalty_threshold`` (0: off).
        red_light_penalty: subtracted when the predicted TLC (traffic lights) is below ``penalty_threshold`` (0: off).
        penalty_threshold: a predicted sub-score below this counts as a violation.
        anchor_to_state: score the policy's plans as ``agent=vla`` executes them, refitted to the ego's current
            velocity and acceleration (``agent.anchor_to_state``, its default); ``false``: the raw modes.
        anchor_jerk_weight: the refit's jerk weight [s^5] (``agent.anchor_jerk_weight``).
    """

    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    collision_penalty: float = 0.0
    offroad_penalty: float = 0.0
    red_light_penalty: float = 0.0
    penalty_threshold: float = 0.5
    anchor_to_state: bool = True
    anchor_jerk_weight: float = DEFAULT_JERK_WEIGHT

    def __post_init__(self) -> None:
        penalties = {score.name: penalty for score, penalty in self.penalties().items()}
        if min(penalties.values()) < 0 or not 0 < self.penalty_threshold <= 1:
            raise ValueError(
                "RewardConfig: expected penalties >= 0 and penalty_threshold in (0, 1]; got "
                f"{penalties}, penalty_threshold {self.penalty_threshold}"
            )
        if self.anchor_jerk_weight < 0:
            raise ValueError(f"RewardConfig.anchor_jerk_weight: expected >= 0, got {self.anchor_jerk_weight}")

    def penalties(self) -> dict[SubScore, float]:
        """The hard penalty of each sub-score that has one (a predicted violation: below ``penalty_threshold``)."""
        return {
            SubScore.NC: self.collision_penalty,
            SubScore.DAC: self.offroad_penalty,
            SubScore.TLC: self.red_light_penalty,
        }


@dataclass
class BCConfig:
    """The regulariser that keeps the policy near stage 1.

    Attributes:
        source: ``reference``: negative log-likelihood, under the current policy, of chains sampled from the frozen
            stage-1 policy; ``expert``: L1 of the mode of the anchor nearest the expert to the expert's trajectory.
        coef: weight of the term in a scene where some sample beats the expert under the learned reward.
        coef_no_improvement: weight in a scene where no sample beats the expert (the policy is pulled back harder
            where the reward offers nothing better than the log).
        kl_coef: weight of KL(current || stage 1) of each fine-tuned denoising step at the sampled states (0: off).
    """

    source: str = "reference"
    coef: float = 0.1
    coef_no_improvement: float = 1.0
    kl_coef: float = 0.0

    def __post_init__(self) -> None:
        if self.source not in BC_SOURCES:
            raise ValueError(f"BCConfig.source: {self.source!r} is not one of {list(BC_SOURCES)}")
        if self.coef < 0 or self.coef_no_improvement < 0 or self.kl_coef < 0:
            raise ValueError(
                f"BCConfig: expected weights >= 0, got coef {self.coef}, coef_no_improvement "
                f"{self.coef_no_improvement}, kl_coef {self.kl_coef}"
            )


@dataclass
class PPOSettings:
    """PPO on the denoising chain (DPPO-style MDP: each fine-tuned denoising step is a Gaussian sub-action).

    Attributes:
        samples_per_anchor: stochastic chains sampled per scene and anchor (G); a group is the G samples of one
            scene and anchor, so a turn is never compared with going straight.
        finetune: ``planner`` (encoder frozen) or ``all``.
        finetune_steps: the last N denoising steps are trained (0: all of them).
        sampling_std_min: std floor of sampled steps (normalised trajectory units).
        logprob_std_min: std floor of the Gaussian whose log-density is the step's log-probability (equal to
            ``sampling_std_min`` by default, so that the ratio is that of the policy that sampled).
        logprob_clamp: per-coordinate log-densities are clamped to this range before averaging over the poses;
            its upper bound may not lie below the log-density at the mean (which would zero the gradient there).
        gamma: discount of the environment episode (one plan per scene: one step).
        gae_lambda: GAE's lambda.
        denoise_gamma: the advantage of denoising step s of S' trained ones is scaled by ``denoise_gamma ** (S'-1-s)``.
        advantage_norm: ``group`` | ``batch`` | ``none``.
        clip: PPO's ratio clip epsilon.
        clip_value: clip of the value prediction's change (0: unclipped value loss).
        vf_coef: weight of the value loss ``0.5 (V - R)^2``.
        ent_coef: weight of the entropy bonus (the step stds are a fixed schedule, so the entropy is logged but
            carries no gradient).
        selection_coef: weight of the mode-selection term: cross-entropy of the confidence logits of the
            deterministic modes towards ``softmax(learned reward / selection_temperature)``.
        selection_temperature: temperature of that target [EPDMS units].
        selection_margin: the selection term follows the learned reward only in a scene where its best
            deterministic mode beats the mode the frozen stage-1 policy picks by at least this margin [EPDMS
            units]; in the other scenes its target is the stage-1 policy's own confidence (``softmax`` of its
            logits), which keeps the choice of mode where stage 1 left it (0: every scene follows the reward).
        update_epochs: passes over a rollout.
        num_minibatches: minibatches (of scenes) per pass.
        target_kl: stop a rollout's update once the approximate KL exceeds this (0: never).
    """

    samples_per_anchor: int = 4
    finetune: str = "planner"
    finetune_steps: int = 0
    sampling_std_min: float = 0.04
    logprob_std_min: float = 0.04
    logprob_clamp: list[float] = field(default_factory=lambda: [-5.0, 3.0])
    gamma: float = 0.99
    gae_lambda: float = 0.95
    denoise_gamma: float = 0.8
    advantage_norm: str = "group"
    clip: float = 0.2
    clip_value: float = 0.0
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    selection_coef: float = 1.0
    selection_temperature: float = 0.02
    selection_margin: float = 0.0
    update_epochs: int = 2
    num_minibatches: int = 1
    target_kl: float = 0.0

    def __post_init__(self) -> None:
        require_at_least(self, ("samples_per_anchor", "update_epochs", "num_minibatches"), 1)
        require_at_least(self, ("finetune_steps",), 0)
        if self.finetune not in FINETUNE_CHOICES:
            raise ValueError(f"PPOSettings.finetune: {self.finetune!r} is not one of {list(FINETUNE_CHOICES)}")
        if self.advantage_norm not in ADVANTAGE_NORMS:
            raise ValueError(
                f"PPOSettings.advantage_norm: {self.advantage_norm!r} is not one of {list(ADVANTAGE_NORMS)}"
            )
        if self.advantage_norm == "group" and self.samples_per_anchor < 2:
            raise ValueError("PPOSettings.advantage_norm group needs samples_per_anchor >= 2 (a group's spread)")
        if not self.sampling_std_min > 0 or not self.logprob_std_min > 0:
            raise ValueError(
                f"PPOSettings: std floors must be > 0, got {self.sampling_std_min}, {self.logprob_std_min}"
            )
        if len(self.logprob_clamp) != 2 or not self.logprob_clamp[0] < self.logprob_clamp[1]:
            raise ValueError(
                f"PPOSettings.logprob_clamp: expected [low, high] with low < high, got {self.logprob_clamp}"
            )
        peak = -math.log(self.logprob_std_min) - 0.5 * math.log(2 * math.pi)  # a coordinate's log-density at its mean
        if self.logprob_clamp[1] < peak:
            raise ValueError(
                f"PPOSettings.logprob_clamp: its upper bound {self.logprob_clamp[1]} is below the log-density "
                f"{peak:.3f} of a coordinate at the mean of a Gaussian of std logprob_std_min "
                f"{self.logprob_std_min}: every coordinate sampled near its mean would be clamped and carry no "
                "gradient; raise the bound or the floor"
            )
        for name in ("gamma", "gae_lambda", "denoise_gamma"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"PPOSettings.{name}: expected in [0, 1], got {getattr(self, name)}")
        if not self.clip > 0 or self.clip_value < 0 or self.target_kl < 0 or not self.selection_temperature > 0:
            raise ValueError(
                "PPOSettings: expected clip > 0, clip_value >= 0, target_kl >= 0, selection_temperature > 0; got "
                f"{self.clip}, {self.clip_value}, {self.target_kl}, {self.selection_temperature}"
            )
        if min(self.vf_coef, self.ent_coef, self.selection_coef, self.selection_margin) < 0:
            raise ValueError("PPOSettings: vf_coef, ent_coef, selection_coef and selection_margin must be >= 0")


@dataclass
class HackingGuardConfig:
    """Early stop on reward hacking: the learned reward rises while the simulator's EPDMS falls.

    At each evaluation, against the evaluation with the best ``eval/epdms`` so far: when the policy's learned
    reward is up by at least ``reward_rise`` and ``eval/epdms`` is down by at least ``epdms_drop`` (both in
    EPDMS units, 0-1) for ``patience`` evaluations in a row, training stops.

    Attributes:
        enabled: stop early on it.
        reward_rise: rise of the learned reward that counts.
        epdms_drop: fall of the simulator's EPDMS that counts.
        patience: consecutive evaluations.
    """

    enabled: bool = True
    reward_rise: float = 0.0
    epdms_drop: float = 0.02
    patience: int = 2

    def __post_init__(self) -> None:
        require_at_least(self, ("patience",), 1)
        if self.reward_rise < 0 or self.epdms_drop < 0:
            raise ValueError(f"HackingGuardConfig: expected thresholds >= 0, got {self.reward_rise}, {self.epdms_drop}")


@dataclass
class PPOConfig(SceneSelectionConfig, TrainerConfig):
    """Stage 3 (PPO against the learned reward): the trainer's settings, the scene source's and these.

    The scene source's keys (``data_root``, ``source``, ``navsim_root``, ...) are ``SceneSourceConfig``'s.

    A trainer step is one PPO iteration: a rollout on ``batch_size`` scenes (``samples_per_anchor`` chains per
    anchor), then ``update_epochs`` passes of ``num_minibatches`` optimiser steps over it.

    Attributes:
        stage: the stage these settings are for (``ppo``).
        init_checkpoint: the stage-1 policy to start from (a checkpoint or run directory of ``stage=il``).
        reward_checkpoint: the reward world model (a checkpoint or run directory of ``stage=rwm``).
        split: the scenes of the rollouts.
        max_scenes: roll out on N scenes spread evenly over the split (``None``: all); the split's first scenes
            are its first families' logs (the first 512 of ``synth_navtrain`` are all construction zones).
        cache_dir: the feature cache (shared with ``irl-vla cache`` and stage 1); ``None``: none.
        cameras: must be the stage-1 policy's cameras (checked).
        ppo: PPO's settings.
        reward: how the reward is composed from the predicted sub-scores.
        bc: the regulariser towards stage 1.
        hacking: early stop on reward hacking.
        val_split: held-out split scored by the real scorer (``eval/*``; ``None``: no evaluation).
        val_max_scenes: its first N scenes.
        val_every: iterations between evaluations (0: only at the end).
        workers: processes building the evaluation split's metric caches.
        sensor_cache: embedded splits: keep the sensors rendered for evaluation here.
        output_dir: the run's directory; ``None``: ``<paths.output_root>/train/ppo/<model size>``.
    """

    stage: str = "ppo"
    init_checkpoint: str = "data/checkpoints/vla_default_seed0"
    reward_checkpoint: str = "data/checkpoints/rwm_default"
    split: str = "synth_navtrain"
    max_scenes: int | None = 512
    cache_dir: str | None = "data/features/synth_navtrain"
    cameras: list[str] = field(default_factory=lambda: list(DEFAULT_CAMERAS))
    ppo: PPOSettings = field(default_factory=PPOSettings)
    reward: RewardConfig = field(default_factory=RewardConfig)
    bc: BCConfig = field(default_factory=BCConfig)
    hacking: HackingGuardConfig = field(default_factory=HackingGuardConfig)
    val_split: str | None = "synth_navtest"
    val_max_scenes: int | None = 64
    val_every: int = 25
    workers: int = 2
    output_dir: str | None = None  # type: ignore[assignment]  # None: decided by the command (model size)
    batch_size: int = 8
    max_steps: int = 100
    log_every: int = 5
    checkpoint_every: int = 25
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(lr=1e-4, warmup_steps=5, min_lr_ratio=0.1, grad_clip=1.0)
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage != "ppo":
            raise ValueError(f"PPOConfig.stage: expected ppo, got {self.stage!r}")
        require_at_least_or_none(self, ("val_max_scenes",), 1)
        require_at_least(self, ("workers",), 1)
        if self.batch_size % self.ppo.num_minibatches:
            raise ValueError(
                f"PPOConfig: batch_size {self.batch_size} is not divisible by ppo.num_minibatches "
                f"{self.ppo.num_minibatches}"
            )

    def record(self) -> dict[str, Any]:
        """Settings that change the trained weights (compared when a run resumes)."""
        data = {k: getattr(self, k) for k in ("split", "max_scenes")}
        return {
            **super().record(),
            **data,
            "ppo": asdict(self.ppo),
            "reward": asdict(self.reward),
            "bc": asdict(self.bc),
        }


#: Sub-scores whose predicted means are logged as ``reward/<name>``.
LOGGED_SUB_SCORES: tuple[SubScore, ...] = tuple(SubScore)
