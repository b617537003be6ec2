"""``irl-vla bench ppo``: PPO's throughput against the learned reward (samples/s), per policy size.

For each policy size, on a synthetic batch of ``scenes`` scenes (``irl_vla.models.vla.synthetic``; the cost does
not depend on pixel values): a **rollout** (encode the scenes, sample ``samples_per_anchor`` chains per anchor, the
deterministic chain, the reward model on every candidate and the expert, advantages), one **update** pass (one
minibatch: chain log-probabilities, clipped loss, value loss, BC, selection, backward, AdamW) and a whole
**iteration** as ``irl-vla train stage=ppo`` runs it (rollout plus ``update_epochs`` passes). Throughput is in
sampled trajectories per second (scenes x samples per anchor x anchors). The reward is the stage-2 reward world
model of ``reward_size`` (randomly initialised: its cost does not depend on its weights), or ``analytic`` (a
closed-form progress reward, to see PPO's own cost).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from irl_vla.benchmarks.model_bench import DEVICES, bench_device, ready_policy, timed_record
from irl_vla.common.config import require_at_least
from irl_vla.data.enums import SE2Index
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore
from irl_vla.training.ppo.config import BCConfig, PPOSettings, RewardConfig
from irl_vla.training.ppo.reward import RewardFunction, RewardModel
from irl_vla.training.ppo.update import PPOModule, collect_rollout, ppo_update

SUITE = "ppo"
#: Final forward position [m] at which the analytic reward's progress saturates.
ANALYTIC_FULL_PROGRESS = 40.0


@dataclass
class PPOBenchConfig:
    """Sizes of the PPO benchmark (``configs/bench/ppo.yaml``).

    Attributes:
        sizes: policy sizes (``configs/model/<size>.yaml``).
        scenes: scenes per rollout (``train.batch_size`` of a run).
        reward_size: reward world model size (``configs/model/reward_<size>.yaml``) or ``analytic``.
        ppo: PPO's settings (``samples_per_anchor``, ``update_epochs``, ...), as in ``train.ppo``.
        device: ``cpu``, ``cuda`` or ``auto``.
        seed: seed of the synthetic batch and weights.
    """

    sizes: list[str] = field(default_factory=lambda: ["tiny", "default"])
    scenes: int = 8
    reward_size: str = "default"
    ppo: PPOSettings = field(default_factory=PPOSettings)
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        require_at_least(self, ("scenes",), 1)
        if not self.sizes:
            raise ValueError("PPOBenchConfig.sizes: at least one size")
        if self.device not in DEVICES:
            raise ValueError(f"PPOBenchConfig.device: expected cpu, cuda or auto, got {self.device!r}")


class AnalyticProgressReward:
    """Every sub-score passes except ego progress: ``final x / ANALYTIC_FULL_PROGRESS`` in [0, 1]; EC undefined."""

    def predict_sub_scores(self, features: Mapping[str, Tensor], trajectories: Tensor) -> Tensor:
        """Sub-scores ``(B, N, n_sub)`` of ``trajectories`` ``(B, N, T, 3)``."""
        sub = trajectories.new_ones(*trajectories.shape[:2], NUM_SUB_SCORES)
        sub[..., SubScore.EP] = (trajectories[..., -1, SE2Index.X] / ANALYTIC_FULL_PROGRESS).clamp(0, 1)
        sub[..., SubScore.EC] = float("nan")
        return sub


def _reward_model(size: str, batch: Mapping[str, Tensor], device: torch.device) -> RewardModel:
    """The reward model of the bench: analytic, or a randomly initialised reward world model of ``size``."""
    if size == "analytic":
        return AnalyticProgressReward()
    from irl_vla.models.reward.config import load_reward_config
    from irl_vla.models.reward.model import RewardWorldModel, compute_reward_normalization
    from irl_vla.training.ppo.stage import WorldModelReward

    model = RewardWorldModel(load_reward_config(size))
    candidates = batch["trajectory"][:, None]  # (B, 1, T, 3): statistics only set the scale
    model.set_normalization(compute_reward_normalization(batch["ego_status"], candidates))
    return WorldModelReward(model.to(device).eval())


def run(cfg: PPOBenchConfig, repeats: int) -> Iterator[dict[str, Any]]:
    """Yield the records of every size."""
    device = bench_device(cfg.device)
    for size in cfg.sizes:
        yield from _run_size(size, cfg, repeats, device)


def _run_size(size: str, cfg: PPOBenchConfig, repeats: int, device: torch.device) -> Iterator[dict[str, Any]]:
    model, mcfg, features, targets = ready_policy(size, cfg.scenes, cfg.seed)
    batch = {k: v[: cfg.scenes].to(device) for k, v in {**features, **targets}.items()}
    module = PPOModule(model, cfg.ppo, BCConfig()).to(device)
    reward = RewardFunction(_reward_model(cfg.reward_size, batch, device), RewardConfig())
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-5)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    policy_batch = {k: batch[k.value] for k in model.required_features()}
    samples = cfg.scenes * cfg.ppo.samples_per_anchor * mcfg.planner.num_modes
    one_pass = PPOSettings(**{**vars(cfg.ppo), "update_epochs": 1, "num_minibatches": 1})

    def rollout() -> Any:
        return collect_rollout(module, policy_batch, batch, batch["trajectory"], reward, generator)

    collected = rollout()

    def update_once() -> None:
        module.settings = one_pass
        try:
            ppo_update(module, module, collected, optimizer, 1.0, generator)
        finally:
            module.settings = cfg.ppo

    def iteration() -> None:
        ppo_update(module, module, rollout(), optimizer, 1.0, generator)

    extra = {
        "size": size,
        "device": str(device),
        "reward": cfg.reward_size,
        "scenes": cfg.scenes,
        "samples_per_anchor": cfg.ppo.samples_per_anchor,
        "anchors": mcfg.planner.num_modes,
        "update_epochs": cfg.ppo.update_epochs,
        "finetune": cfg.ppo.finetune,
    }
    for name, fn in (("rollout", rollout), ("update_pass", update_once), ("iteration", iteration)):
        yield timed_record(SUITE, f"{name}_{size}", fn, device, items=samples, unit="samples", repeats=repeats, **extra)
