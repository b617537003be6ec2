"""Stage 3 (``irl-vla train stage=ppo``): fine-tune the stage-1 policy by PPO against the learned reward.

The run starts from a stage-1 checkpoint (``init_checkpoint``) and a reward-model checkpoint
(``reward_checkpoint``), rolls out on the training split's scenes through the feature cache (the policy's and the
reward model's inputs as two views, so each reads its builders with its own settings), and updates with
``update.ppo_update``, each iteration inside ``no_simulator()``. The shared trainer (``irl_vla.training.trainer``)
gives checkpoints, resume, TensorBoard, the progress bar, determinism and DDP: a trainer step is one PPO
iteration. On top of it:

- scalars are logged under CleanRL's names (``losses/*``, ``charts/*``, ``reward/*``) and the real scorer's
  evaluation on held-out scenes as ``eval/epdms`` and ``eval/<sub-score>``;
- every checkpoint also exports the policy alone to ``<output_dir>/policy`` in stage 1's format, so
  ``irl-vla eval agent=vla agent.checkpoint=<output_dir>/policy`` scores it;
- training stops early on reward hacking (``HackingGuardConfig``): the learned reward of the policy's plan up
  while the simulator's EPDMS on held-out scenes falls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from irl_vla.agents.vla import VLAAgent
from irl_vla.common.checkpoint import save_checkpoint
from irl_vla.common.parallel import ExecutorConfig
from irl_vla.data.features.builder import Builder, FeatureBuilder, TargetBuilder
from irl_vla.data.features.dataset import Batch, FeatureDataset
from irl_vla.data.features.targets import TrajectoryTargetBuilder
from irl_vla.data.features.views import ViewsDataset, strip_view
from irl_vla.data.source import SourceFactory
from irl_vla.data.split import spread
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.models.vla.model import VLAModel
from irl_vla.training.policy import Policy, load_policy
from irl_vla.training.ppo.config import HackingGuardConfig, PPOConfig
from irl_vla.training.ppo.executed import StateAnchoring
from irl_vla.training.ppo.guard import no_simulator
from irl_vla.training.ppo.reward import RewardFunction, RewardModel
from irl_vla.training.ppo.update import PPOModule, collect_rollout, ppo_update
from irl_vla.training.trainer import Processes, Trainer, find_resume, init_processes, resolve_device
from irl_vla.training.validation import Validator

#: Where a run exports its policy (stage 1's checkpoint format) at every checkpoint.
POLICY_DIR = "policy"
REWARD_VIEW = "reward/"  # the reward model's inputs in a rollout batch (the policy's have no prefix)
#: The learned-reward scalar the hacking guard compares with the simulator's EPDMS.
GUARD_REWARD = "reward/policy_epdms"


class RewardHackingStop(RuntimeError):
    """Training stopped early: the learned reward rose while the simulator's EPDMS on held-out scenes fell."""


@dataclass
class HackingMonitor:
    """Decides the early stop on reward hacking from the evaluations (see ``HackingGuardConfig``)."""

    cfg: HackingGuardConfig
    best_epdms: float = float("-inf")
    reward_at_best: float = float("nan")
    strikes: int = 0

    def update(self, reward: float, epdms: float) -> bool:
        """Record an evaluation (learned reward of the policy's plans, simulator EPDMS); whether to stop."""
        if epdms > self.best_epdms:
            self.best_epdms, self.reward_at_best, self.strikes = epdms, reward, 0
            return False
        hacked = reward - self.reward_at_best >= self.cfg.reward_rise and self.best_epdms - epdms >= self.cfg.epdms_drop
        self.strikes = self.strikes + 1 if hacked else 0
        return self.cfg.enabled and self.strikes >= self.cfg.patience


def output_keys(builders: Sequence[Builder]) -> list[str]:
    """The tensor keys the builders write."""
    return [key for b in builders for key in b.specs()]


class PPOTrainer(Trainer):
    """The shared trainer with a PPO iteration as its step (see the module docstring).

    Args:
        cfg: the stage's settings.
        module: the PPO module (policy, value head, frozen reference).
        dataset: the rollout scenes: the policy's inputs and the expert's trajectory, the reward model's inputs under
            ``REWARD_VIEW``.
        reward_fn: the learned reward.
        policy_keys: the batch keys the policy reads.
        reward_keys: the batch keys the reward model reads (features or targets).
        export: writes the policy alone (``POLICY_DIR``) after each checkpoint.
        **kwargs: the shared trainer's keyword arguments.
    """

    def __init__(
        self,
        cfg: PPOConfig,
        module: PPOModule,
        dataset: ViewsDataset,
        *,
        reward_fn: RewardFunction,
        policy_keys: Sequence[str],
        reward_keys: Sequence[str],
        export: Callable[[VLAModel], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(cfg, module, dataset, **kwargs)
        self.ppo_cfg = cfg
        self.reward_fn = reward_fn
        self.policy_keys, self.reward_keys = list(policy_keys), list(reward_keys)
        self.export = export
        self.anchoring: StateAnchoring | None = None
        if cfg.reward.anchor_to_state:  # score the plans as agent=vla executes them
            planner = module.policy.planner
            times = DEFAULT_SAMPLING.interval_length * np.arange(1, planner.num_poses + 1)
            self.anchoring = StateAnchoring(times, cfg.reward.anchor_jerk_weight).to(self.device)
        self.monitor = HackingMonitor(cfg.hacking)
        self.recent_rewards: list[float] = []
        self.start_epdms: float | None = None

    def evaluate_start(self) -> None:
        """Evaluate the starting (stage-1) policy at step 0, so the hacking guard compares against it."""
        if self.step == 0 and self.validates:
            if self.processes.is_main:
                self.output.mkdir(parents=True, exist_ok=True)
                self._truncate_metrics()
            self._validate(tqdm(disable=True))

    def _train_step(self, batch: Batch) -> dict[str, float]:
        """One PPO iteration on the batch's scenes: rollout, then the update (no scorer call can happen)."""
        self._seed_step()
        tensors = {**batch.features, **batch.targets}
        move = lambda keys: {k: tensors[k].to(self.device, non_blocking=True) for k in keys}  # noqa: E731
        module = self.model
        assert isinstance(module, PPOModule)
        lr = self.optimizer.param_groups[0]["lr"]
        with no_simulator():
            rollout = collect_rollout(
                module,
                move(self.policy_keys),
                strip_view(move(self.reward_keys), REWARD_VIEW),
                tensors["trajectory"].to(self.device),
                self.reward_fn,
                self.generator,
                self.anchoring,
            )
            scalars = ppo_update(
                self.network,
                module,
                rollout,
                self.optimizer,
                self.cfg.optimizer.grad_clip,
                self.generator,
                self._require_finite,
            )
        self.scheduler.step()
        self.recent_rewards.append(rollout.scalars[GUARD_REWARD])
        return {**rollout.scalars, **scalars, "charts/learning_rate": lr}

    def _log(self, group: str, scalars: Mapping[str, float]) -> None:
        """CleanRL's names: training scalars as they are (``losses/policy_loss``), evaluations as ``eval/*``."""
        super()._log({"train": "", "val": "eval"}.get(group, group), scalars)

    def _save(self) -> None:
        super()._save()
        if self.export is not None and self.processes.is_main:
            module = self.model
            assert isinstance(module, PPOModule)
            self.export(module.policy)

    def _validate(self, bar: tqdm) -> None:
        """Evaluate with the real scorer (rank 0), then stop every process if the reward is being hacked."""
        self.last_eval: dict[str, float] | None = None
        super()._validate(bar)
        stop = False
        if self.processes.is_main and self.last_eval is not None and self.step == 0:
            self.start_epdms = self.last_eval["epdms"]  # the stage-1 policy; its reward comes with the first rollout
        elif self.processes.is_main and self.last_eval is not None and self.recent_rewards:
            if self.start_epdms is not None:  # the starting point first: the first rollout measured its reward
                self.monitor.update(self.recent_rewards[0], self.start_epdms)
                self.start_epdms = None
            reward = sum(self.recent_rewards) / len(self.recent_rewards)
            stop = self.monitor.update(reward, self.last_eval["epdms"])
            self.recent_rewards = []
        if self.processes.broadcast(stop):
            raise RewardHackingStop(
                f"step {self.step}: the learned reward of the policy's plans rose while eval/epdms fell "
                f"{self.monitor.strikes} evaluations in a row (best {self.monitor.best_epdms:.4f}); stopped early, "
                f"the last checkpoint is {self.last_checkpoint}"
            )


class WorldModelReward(nn.Module):
    """``RewardModel`` over the reward world model of stage 2 (its sub-score head's expected values).

    A module, so that ``run_ppo`` moves the wrapped model to the training device with the policy.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def predict_sub_scores(self, features: Mapping[str, Tensor], trajectories: Tensor) -> Tensor:
        """Expected sub-scores ``(B, N, n_sub)`` (EC NaN when the model does not predict it)."""
        from irl_vla.models.reward.heads import HeadKey

        return self.model.predict_sub_scores(features, trajectories)[HeadKey.SUB_SCORES]


def load_reward(path: str) -> tuple[WorldModelReward, list[Builder], dict[str, Any]]:
    """The reward model of a ``stage=rwm`` checkpoint or run directory, its input builders and its identity.

    The identity (path and model config) is stored in PPO's checkpoints.

    Raises:
        FileNotFoundError, DataFormatError, ValueError: naming a missing, damaged or non-reward checkpoint.
    """
    from irl_vla.models.reward.checkpoint import load_reward_model

    loaded = load_reward_model(path)
    builders: list[Builder] = [*loaded.builders.features, *loaded.builders.privileged]
    identity = {"path": str(loaded.checkpoint.path), "model": loaded.checkpoint.config.get("model")}
    return WorldModelReward(loaded.model), builders, identity


def ppo_record(cfg: PPOConfig, policy_config: Mapping[str, Any], reward_config: Mapping[str, Any], world: int) -> dict:
    """The config stored in (and compared with) every checkpoint of a stage-3 run."""
    return {
        "stage": "ppo",
        "model": policy_config["model"],
        "features": policy_config["features"],
        "init": {"checkpoint": cfg.init_checkpoint, "stage1_train": policy_config.get("train")},
        "reward_model": {"checkpoint": cfg.reward_checkpoint, "config": dict(reward_config)},
        "train": cfg.record(),
        "world_size": world,
    }


def run_ppo(
    cfg: PPOConfig,
    source: SourceFactory,
    val_source: SourceFactory | None,
    reward_model: RewardModel,
    reward_builders: Sequence[Builder],
    reward_config: Mapping[str, Any] | None = None,
) -> Path:
    """Fine-tune the stage-1 policy of ``cfg.init_checkpoint`` by PPO; returns the exported policy's directory.

    Args:
        cfg: the stage's settings.
        source: opens the rollout split.
        val_source: opens the held-out split of the real-scorer evaluation (``None``: none).
        reward_model: the learned reward (``predict_sub_scores``); an ``nn.Module`` is moved to the training device.
        reward_builders: the builders of the reward model's inputs.
        reward_config: what identifies the reward model (stored in checkpoints).

    Raises:
        ValueError: naming a bad setting, or the step whose loss was not finite.
        ConfigMismatchError: naming every key where a resumed run's settings differ from its checkpoint's.
    """
    device = resolve_device(cfg.device)
    processes: Processes = init_processes(device, cfg.threads)
    policy, ck = load_policy(cfg.init_checkpoint, architecture="vla")
    if list(ck.config["train"]["cameras"]) != list(cfg.cameras):
        raise ValueError(
            f"train.cameras {list(cfg.cameras)} differ from the stage-1 policy's {ck.config['train']['cameras']}"
        )
    network = policy.model
    assert isinstance(network, VLAModel)
    record = ppo_record(cfg, ck.config, reward_config or {}, processes.world_size)
    resume = find_resume(cfg, record)
    tokens = list(source().tokens)
    if cfg.max_scenes is not None:  # spread over the split: its first scenes are its first families' logs
        tokens = spread(tokens, cfg.max_scenes)
    if not tokens:
        raise ValueError(f"train.split {cfg.split}: no scenes")
    torch.manual_seed(cfg.seed)  # the value head's initial weights
    module = PPOModule(network, cfg.ppo, cfg.bc)
    expert = TrajectoryTargetBuilder(num_poses=network.cfg.inputs.num_poses)
    # the policy's and the reward model's inputs as two views: each may read a builder with its own settings
    # (the policy's LiDAR on its grid, the reward model's on another), their cache entries side by side
    dataset = ViewsDataset(
        {
            "": FeatureDataset(source, policy.feature_builders, [expert], tokens=tokens, cache_dir=cfg.cache_dir),
            REWARD_VIEW: FeatureDataset(
                source,
                [b for b in reward_builders if isinstance(b, FeatureBuilder)],
                [b for b in reward_builders if isinstance(b, TargetBuilder)],
                tokens=tokens,
                cache_dir=cfg.cache_dir,
            ),
        }
    )
    if isinstance(reward_model, nn.Module):
        reward_model.to(device).eval()
    out = Path(str(cfg.output_dir))
    artefacts = {name: path.read_bytes() for name, path in ck.artefacts.items()}
    normalization: dict[str, Tensor] = dict(ck.normalization)
    policy_config = {k: ck.config[k] for k in ck.config if k != "world_size"}

    def export(model: VLAModel) -> None:
        save_checkpoint(
            out / POLICY_DIR,
            step=trainer.step,
            weights=model.state_dict(),
            config={**policy_config, "stage": "ppo", "ppo": record["train"]},
            normalization=normalization,
            artefacts=artefacts,
        )

    validate = None
    if val_source is not None and processes.is_main:
        cache_root = cfg.metric_caches(cfg.val_split)
        executor = ExecutorConfig(workers=cfg.workers)
        validator = Validator(val_source, cache_root, cfg.val_max_scenes, executor, cfg.progress)

        def validate(net: nn.Module) -> dict[str, float]:
            assert isinstance(net, PPOModule)
            metrics = validator(VLAAgent(Policy(net.policy, policy.feature_builders), name="vla_ppo"))
            trainer.last_eval = metrics
            return metrics

    if processes.is_main:
        trained = sum(p.numel() for p in module.parameters() if p.requires_grad)
        tqdm.write(
            f"train: ppo from {cfg.init_checkpoint} against {cfg.reward_checkpoint}; {len(tokens)} scenes, "
            f"{processes.world_size} process(es) on {device}; {trained:,} trained parameters ({cfg.ppo.finetune})"
        )
    trainer = PPOTrainer(
        cfg,
        module,
        dataset,
        reward_fn=RewardFunction(reward_model, cfg.reward),
        policy_keys=output_keys(policy.feature_builders),
        reward_keys=[REWARD_VIEW + key for key in output_keys(reward_builders)],
        export=export,
        record=record,
        normalization=normalization,
        artefacts=artefacts,
        validate=validate,
        resume_from=resume,
        processes=processes,
        device=device,
        find_unused_parameters=True,
    )
    try:
        trainer.evaluate_start()
        trainer.fit()
    except RewardHackingStop as stop:
        if processes.is_main:
            tqdm.write(f"train: {stop}")
    if processes.is_main and not (out / POLICY_DIR).is_dir():
        export(network)
    return out / POLICY_DIR
