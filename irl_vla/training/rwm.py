"""Stage 2 (``irl-vla train stage=rwm``): the reward world model learns the simulator's scores of candidates.

The training data are the labelled candidates of ``irl-vla label`` (``labels_dir``) and, per labelled scene, the
tensors the model reads (``reward_builder_params``: ego status, driving command, LiDAR BEV, and the privileged
map raster and boxes), through the feature cache. A fresh run computes the normalisation statistics (ego status of
``stats_scenes`` scenes, every labelled candidate) and saves them with each checkpoint. The shared trainer does
the rest (checkpoints, resume, TensorBoard, NaN guard, DDP); its validation hook scores every labelled candidate
of the first ``val_max_scenes`` scenes of ``val_labels_dir`` and reports the model's agreement with the
simulator (``agreement``: Spearman of EPDMS, pairwise accuracy, top-1 regret, per sub-score accuracy and AUROC).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from irl_vla.common.checkpoint import Checkpoint, config_differences
from irl_vla.common.config import require_at_least_or_none
from irl_vla.common.config_source import DataKind, SceneSelectionConfig
from irl_vla.common.io import file_sha256
from irl_vla.data.features.dataset import FeatureDataset, Sample, collate
from irl_vla.data.source import SourceFactory
from irl_vla.labeling.store import MANIFEST, LabelShard, read_label_shards
from irl_vla.models.reward.agreement import agreement
from irl_vla.models.reward.checkpoint import load_reward_checkpoint
from irl_vla.models.reward.config import RewardModelConfig, reward_config_from_dict
from irl_vla.models.reward.heads import HeadKey
from irl_vla.models.reward.inputs import RewardInputBuilders, reward_builder_params
from irl_vla.models.reward.loss import RewardKey, RewardTarget
from irl_vla.models.reward.model import RewardWorldModel, compute_reward_normalization
from irl_vla.training.il import spread
from irl_vla.training.trainer import Processes, Trainer, TrainerConfig, find_resume, init_processes, resolve_device

#: Validation scalars logged (the rest of ``agreement`` is computed but not logged).
LOGGED = (
    "spearman",
    "pearson",
    "pairwise_accuracy",
    "top1_regret",
    "auroc_NC",
    "auroc_DAC",
    "auroc_TTC",
    "auroc_LK",
    "acc_EP",
)


@dataclass
class RWMConfig(SceneSelectionConfig, TrainerConfig):
    """Stage 2 (reward world model): the trainer's settings (``TrainerConfig``), the scene source's and these.

    The scene source's keys (``data_root``, ``source``, ``navsim_root``, ...) are ``SceneSourceConfig``'s.

    Attributes:
        stage: ``rwm``.
        split: the training split (its scenes' features).
        labels_dir: the training labels (``None``: ``<data_root>/labels/<split>``).
        extra_labels_dirs: more label directories of the same split trained on with them (e.g. ``irl-vla label
            label.exclude_labels=[<labels_dir>]``'s; same candidates per scene; no scene twice).
        max_scenes: train on the first N labelled scenes only (``None``: all).
        cache_dir: the feature cache of the training split (``None``: none).
        stats_scenes: scenes (spread over the labelled ones) whose ego status gives the statistics.
        val_split: the held-out split (``None``: no validation).
        val_labels_dir: its labels (``None``: ``<data_root>/labels/<val_split>``).
        val_cache_dir: its feature cache (``None``: none).
        val_max_scenes: validate on its first N labelled scenes.
        val_batch_size: scenes per validation forward pass.
        sensor_cache: embedded splits: keep the validation split's rendered sensors here.
        init_checkpoint: a ``stage=rwm`` checkpoint (or run directory) whose weights and normalisation a fresh
            run starts from (fine-tuning on new labels, e.g. with a policy's samples); its model (but for the
            loss's weights) and input builders must be this run's. ``None``: initial weights from ``seed``,
            statistics from the labels.
        output_dir: the run directory (``None``: ``<output_root>/train/rwm/<model size>``).
    """

    stage: str = "rwm"
    split: str = "synth_navtrain"
    labels_dir: str | None = None
    extra_labels_dirs: list[str] = field(default_factory=list)
    cache_dir: str | None = "data/features/synth_navtrain"
    stats_scenes: int = 256
    val_split: str | None = "synth_navtest"
    val_labels_dir: str | None = None
    val_cache_dir: str | None = "data/features/synth_navtest"
    val_max_scenes: int | None = 64
    val_batch_size: int = 4
    init_checkpoint: str | None = None
    output_dir: str | None = None  # type: ignore[assignment]  # None: decided by the command (model size)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage != "rwm":
            raise ValueError(f"RWMConfig.stage: expected rwm, got {self.stage!r}")
        require_at_least_or_none(self, ("val_max_scenes",), 1)
        if self.stats_scenes < 2 or self.val_batch_size < 1:
            raise ValueError(f"RWMConfig: expected stats_scenes >= 2, val_batch_size >= 1; got {self.stats_scenes}")

    @property
    def train_labels(self) -> Path:
        """The training labels' directory."""
        return Path(self.labels_dir) if self.labels_dir else self.data_dir(DataKind.LABELS)

    @property
    def val_labels(self) -> Path | None:
        """The held-out labels' directory (``None`` without validation)."""
        if self.val_split is None:
            return None
        return Path(self.val_labels_dir) if self.val_labels_dir else self.data_dir(DataKind.LABELS, self.val_split)

    def record(self) -> dict[str, Any]:
        """Settings that change the trained weights."""
        data: dict[str, Any] = {"split": self.split, "max_scenes": self.max_scenes, "stats_scenes": self.stats_scenes}
        if self.init_checkpoint:  # only when set, so runs made before this key still resume
            data["init_checkpoint"] = self.init_checkpoint
        if self.extra_labels_dirs:  # likewise
            data["extra_labels_dirs"] = list(self.extra_labels_dirs)
        return {**super().record(), **data}


class RewardLabelDataset(Dataset[Sample]):
    """Per labelled scene: the model's inputs (features and privileged tensors) and its candidates' labels.

    Args:
        features: the scenes' input tensors (a ``FeatureDataset`` over ``labels.tokens``, same order).
        labels: the labelled candidates.
    """

    def __init__(self, features: FeatureDataset, labels: LabelShard) -> None:
        if list(features.tokens) != labels.tokens.tolist():
            raise ValueError("RewardLabelDataset: the feature dataset's tokens are not the labels' tokens")
        self.features = features
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Sample:
        sample = self.features[index]
        lab = self.labels
        targets = {
            RewardTarget.CANDIDATES: torch.from_numpy(lab.candidates[index]),
            RewardTarget.SUB_SCORES: torch.from_numpy(lab.sub_scores[index]),
            RewardTarget.EPDMS: torch.from_numpy(lab.epdms[index]),
            RewardTarget.SOURCES: torch.from_numpy(lab.sources[index].astype(np.int64)),
        }
        return Sample(sample.token, {**sample.features, **sample.targets}, targets)


def reward_dataset(
    source: SourceFactory, labels: LabelShard, builders: RewardInputBuilders, cache_dir: str | None
) -> RewardLabelDataset:
    """The labelled scenes with the model's inputs read through the feature cache ``cache_dir``."""
    features = FeatureDataset(
        source, builders.features, builders.privileged, tokens=labels.tokens.tolist(), cache_dir=cache_dir
    )
    return RewardLabelDataset(features, labels)


@torch.no_grad()
def predict_labels(
    model: RewardWorldModel, dataset: RewardLabelDataset, batch_size: int, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The model's reward ``(N, K)`` and sub-scores ``(N, K, S)`` of every labelled candidate of ``dataset``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rewards, subs = [], []
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    try:
        for batch in tqdm(loader, desc="rwm: predict", unit="batch", disable=not progress, leave=False):
            features = {k: v.to(device) for k, v in batch.features.items()}
            out = model.predict_sub_scores(features, batch.targets[RewardTarget.CANDIDATES].to(device))
            rewards.append(out[RewardKey.REWARD].float().cpu().numpy())
            subs.append(out[HeadKey.SUB_SCORES].float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(rewards), np.concatenate(subs)


def evaluate_agreement(model: RewardWorldModel, dataset: RewardLabelDataset, batch_size: int = 4) -> dict[str, float]:
    """``agreement`` of the model's predictions with the simulator's labels of ``dataset``."""
    reward, sub = predict_labels(model, dataset, batch_size)
    return agreement(reward, dataset.labels.epdms, sub, dataset.labels.sub_scores)


def rwm_record(
    cfg: RWMConfig, model_cfg: RewardModelConfig, features: dict, privileged: dict, labels_sha: str, world: int
) -> dict[str, Any]:
    """The config stored in (and compared with) every checkpoint of a stage-2 run."""
    return {
        "stage": "rwm",
        "model": asdict(model_cfg),
        "features": features,
        "privileged": privileged,
        "labels": {"manifest_sha256": labels_sha},
        "train": cfg.record(),
        "world_size": world,
    }


def ego_statistics_input(source: SourceFactory, tokens: list[str], history: int) -> Tensor:
    """Ego-status histories ``(N, T, D)`` of ``tokens`` (no sensors read)."""
    from irl_vla.data.features.ego import EgoStatusBuilder

    builder = EgoStatusBuilder(num_history_frames=history)
    loader = source()
    return torch.stack([builder.compute(loader.get_scene(t).get_agent_input())["ego_status"] for t in tokens])


def load_start(path: str, model_cfg: RewardModelConfig, features: dict, privileged: dict) -> Checkpoint:
    """The ``stage=rwm`` checkpoint a fine-tuning run starts from, checked against the run's model and inputs.

    Raises:
        FileNotFoundError, DataFormatError: naming a missing or damaged checkpoint file.
        ValueError: naming the checkpoint when it holds no reward model, or another model or other inputs (every
            differing key).
    """
    ck = load_reward_checkpoint(path)
    ours = {"model": asdict(model_cfg), "features": features, "privileged": privileged}
    theirs = {
        "model": asdict(reward_config_from_dict(ck.config["model"])),
        "features": ck.config.get("features", {}),
        "privileged": ck.config.get("privileged", {}),
    }
    ignore = ["model.loss."]  # the loss's weights may change
    if model_cfg.agent_clearance and not theirs["model"]["agent_clearance"]:
        # its new inputs start at zero (``load_start_weights``), the boxes' logged futures among them
        ignore += ["model.agent_clearance", "model.inputs.use_agent_futures", "privileged.agent_futures."]
    differences = config_differences(theirs, ours, ignore=ignore)
    if differences:
        raise ValueError(f"{ck.path}: train.init_checkpoint differs from this run ({'; '.join(differences)})")
    return ck


def run_rwm(
    cfg: RWMConfig, model_doc: dict[str, Any], source: SourceFactory, val_source: SourceFactory | None = None
) -> Path:
    """Train the reward world model; returns the directory of its last checkpoint.

    Args:
        cfg: the stage's settings.
        model_doc: the model config (``configs/model/reward_<size>.yaml``, resolved).
        source: opens the training split (with a renderer: the LiDAR BEV is rendered).
        val_source: opens the held-out split (``None``: no validation).

    Raises:
        FileNotFoundError, CorruptLabelError: naming missing or damaged labels.
        ConfigMismatchError: naming every key where a resumed run's settings differ from its checkpoint's.
    """
    device = resolve_device(cfg.device)
    processes: Processes = init_processes(device, cfg.threads)
    model_cfg = reward_config_from_dict(model_doc)
    labels = read_label_shards(cfg.train_labels)
    if cfg.extra_labels_dirs:
        extra = [read_label_shards(d) for d in cfg.extra_labels_dirs]
        for d, more in zip(cfg.extra_labels_dirs, extra, strict=True):
            if more.candidates.shape[1:] != labels.candidates.shape[1:]:
                raise ValueError(
                    f"train.extra_labels_dirs {d}: candidates {more.candidates.shape[1:]} per scene, "
                    f"{cfg.train_labels} has {labels.candidates.shape[1:]}"
                )
        labels = LabelShard.concatenate([labels, *extra])
        labels.check(f"train.labels_dir {cfg.train_labels} with train.extra_labels_dirs {cfg.extra_labels_dirs}")
    if cfg.max_scenes is not None:
        labels = labels.select(np.arange(min(cfg.max_scenes, len(labels))))
    features, privileged = reward_builder_params(model_cfg)
    builders = RewardInputBuilders.from_params(features, privileged)
    labels_sha = file_sha256(cfg.train_labels / MANIFEST)
    if cfg.extra_labels_dirs:  # one digest of every manifest, in order
        shas = [labels_sha] + [file_sha256(Path(d) / MANIFEST) for d in cfg.extra_labels_dirs]
        labels_sha = hashlib.sha256(" ".join(shas).encode()).hexdigest()
    record = rwm_record(cfg, model_cfg, features, privileged, labels_sha, processes.world_size)
    resume = find_resume(cfg, record)
    start = None
    if resume is None and cfg.init_checkpoint:
        start = load_start(cfg.init_checkpoint, model_cfg, features, privileged)
    if resume is not None:
        normalization = dict(resume.normalization)
    elif start is not None:
        normalization = dict(start.normalization)
    else:
        made = None
        if processes.is_main:
            tokens = spread(labels.tokens.tolist(), cfg.stats_scenes)
            ego = ego_statistics_input(source, tokens, model_cfg.inputs.history_frames)
            made = compute_reward_normalization(ego, torch.from_numpy(labels.candidates))
        normalization = processes.broadcast(made)
    torch.manual_seed(cfg.seed)  # the initial weights
    model = RewardWorldModel(model_cfg)
    if start is not None:
        model.load_start_weights(start.weights)
    model.set_normalization(normalization)
    dataset = reward_dataset(source, labels, builders, cfg.cache_dir)
    validate = None
    val_labels = cfg.val_labels
    if val_source is not None and val_labels is not None and processes.is_main:
        held_out = read_label_shards(val_labels)
        if cfg.val_max_scenes is not None:
            held_out = held_out.select(np.arange(min(cfg.val_max_scenes, len(held_out))))
        val_dataset = reward_dataset(val_source, held_out, builders, cfg.val_cache_dir)

        def validate(network: torch.nn.Module) -> dict[str, float]:
            assert isinstance(network, RewardWorldModel)
            metrics = evaluate_agreement(network, val_dataset, cfg.val_batch_size)
            return {k: metrics[k] for k in LOGGED if k in metrics}

    if processes.is_main:
        count = sum(p.numel() for p in model.parameters())
        tqdm.write(
            f"train: reward model {model_cfg.size}, {len(labels)} scenes x {labels.num_candidates} candidates, "
            f"{processes.world_size} process(es) on {device}; parameters: {count:,}"
        )
    trainer = Trainer(
        cfg,
        model,
        dataset,
        record=record,
        normalization=normalization,
        validate=validate,
        resume_from=resume,
        processes=processes,
        device=device,
        find_unused_parameters=True,
    )
    return trainer.fit()
