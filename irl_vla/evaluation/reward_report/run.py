"""``irl-vla report``: label held-out candidates with the simulator, predict them with the reward model, report.

1. **Held-out candidates**: the expert, a trajectory vocabulary and perturbations of the expert for each of
   ``max_scenes`` scenes of the held-out split, scored by the fast scorer (``irl_vla.labeling``, the same code
   that labels the training split; resumable, reused by a rerun with the same settings).
2. **Predictions** of the reward checkpoint (and of each ``ensemble`` member with it; of each ``ablation``
   checkpoint alone) for every candidate; an ensemble's sub-scores are its members' mean, and each scene's
   favourite (top-1 regret) is chosen by ``selection`` (``irl_vla.models.reward.selection``).
3. **Distribution shift**: for each ``policies`` checkpoint, its candidates (its deterministic modes and
   ``policy_draws`` stochastic draws of all its modes per scene, EC against the plan it output in the previous
   frame) labelled the same way and predicted by the reward checkpoint.
4. ``report.html``, ``report.json`` and ``summary.md`` in the run directory (``writer``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from irl_vla.common.config_source import DataKind, SceneSelectionConfig
from irl_vla.common.parallel import ExecutorConfig
from irl_vla.data.source import SourceFactory
from irl_vla.evaluation.reward_report.agreement import RewardAgreement, evaluate
from irl_vla.evaluation.reward_report.candidates import ScoredCandidates, predicted_epdms
from irl_vla.evaluation.reward_report.writer import LabelledAgreement, RewardReport, write_report
from irl_vla.labeling.candidates import PerturbationConfig
from irl_vla.labeling.pipeline import LabelConfig, run_label
from irl_vla.labeling.store import CandidateSource, LabelShard, LabelStore, read_label_shards
from irl_vla.models.reward.checkpoint import load_reward_model
from irl_vla.models.reward.selection import SelectionConfig, selection_scores
from irl_vla.scoring.metric_cache import MetricCacheStore
from irl_vla.training.policy import resolve_checkpoint
from irl_vla.training.rwm import predict_labels, reward_dataset


@dataclass
class ReportConfig(SceneSelectionConfig):
    """Settings of ``irl-vla report`` (the scene source's keys are ``SceneSourceConfig``'s).

    Attributes:
        reward_checkpoint: the reward model to validate (a checkpoint or a ``train stage=rwm`` run directory).
        ensemble: more reward checkpoints validated together with it as one ensemble (e.g. the same recipe with
            other ``train.seed``): sub-scores averaged over the members, favourites by ``selection``.
        selection: how each scene's favourite is chosen (top-1 regret): the (mean) reward, a lower confidence
            bound over the ensemble, a gate on the multipliers.
        ablation: more reward checkpoints to compare with it on the same candidates (e.g. one trained without
            the IRL term).
        policies: policy checkpoints whose samples measure distribution shift.
        policy_draws: stochastic denoising draws per scene and policy (each gives all of its modes).
        policy_std_min: their standard-deviation floor (normalised units; ``None``: the model's ``std_min``; PPO
            samples with ``ppo.sampling_std_min``).
        split: the held-out split.
        cache_dir: the feature cache the reward model's inputs are read through (``None``:
            ``<data_root>/features/<split>``, the one ``irl-vla cache`` and the reward model's training fill;
            ``""``: compute every scene's inputs afresh).
        max_scenes: held-out scenes, spread evenly over the split (``None``: all).
        labels_dir: where the held-out labels go (``None``: ``<data_root>/labels/<split>``, where
            ``irl-vla label label.split=<split>`` puts them and the reward model's validation reads them, so one
            labelling serves both when the settings agree); the policies' go beside it
            (``<labels_dir>_policy_<hash>``).
        vocabulary: a ``vocabulary.npy`` to draw candidates from (e.g. the training labels'); ``None``: K-means
            of the held-out split's expert plans (``vocabulary_size`` entries).
        vocabulary_size: entries of that K-means vocabulary.
        perturbations: perturbations of the expert per scene.
        batch_scenes: scenes the reward model encodes per forward pass.
        n_worst: worst disagreements shown (each with a picture).
        n_bins: bins of the reliability diagrams.
        device: where the reward model runs.
        seed: seeds the vocabulary, the perturbations and the policies' noise (follows ``run.seed``).
        executor: where candidates are labelled (``process`` by default; ``ray`` when configured).
        progress: show progress bars (follows ``run.progress``).
        output_dir: where the report goes (``None``: the run directory).
        title: the report's title.
    """

    reward_checkpoint: str | None = None
    ensemble: list[str] = field(default_factory=list)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    ablation: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    policy_draws: int = 2
    policy_std_min: float | None = None
    cache_dir: str | None = None
    max_scenes: int | None = 128
    labels_dir: str | None = None
    vocabulary: str | None = None
    vocabulary_size: int = 256
    perturbations: PerturbationConfig = field(default_factory=PerturbationConfig)
    batch_scenes: int = 4
    n_worst: int = 8
    n_bins: int = 10
    device: str = "cpu"
    seed: int = 0
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    progress: bool = True
    output_dir: str | None = None
    title: str = "Reward model validation"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("policy_draws", "batch_scenes", "n_bins"):
            if getattr(self, name) < 1:
                raise ValueError(f"report.{name}: expected >= 1, got {getattr(self, name)}")
        if self.n_worst < 0:
            raise ValueError(f"report.n_worst: expected >= 0, got {self.n_worst}")

    @property
    def feature_cache_dir(self) -> str | None:
        """Where the reward model's inputs are cached (``None``: not cached)."""
        if self.cache_dir is None:
            return str(self.data_dir(DataKind.FEATURES))
        return self.cache_dir or None

    @property
    def label_dir(self) -> Path:
        """Where the held-out labels go."""
        return Path(self.labels_dir) if self.labels_dir else self.data_dir(DataKind.LABELS)

    def policy_label_dir(self, policy: str) -> Path:
        """Where the samples of ``policy`` are labelled (named by a hash of its checkpoint's resolved path)."""
        digest = hashlib.sha256(str(resolve_checkpoint(policy).resolve()).encode()).hexdigest()[:12]
        return self.label_dir.with_name(f"{self.label_dir.name}_policy_{digest}")


def _label_config(config: ReportConfig, out: Path, policy: str | None) -> LabelConfig:
    """Labelling settings: held-out candidates (``policy=None``), or the expert and a policy's samples only."""
    no_perturbations = PerturbationConfig(speed_scales=[], lateral_offsets=[], heading_offsets=[], random=0)
    return LabelConfig(
        **config.scene_settings(),
        output_dir=str(out),
        vocabulary_size=config.vocabulary_size if policy is None else 0,
        perturbations=config.perturbations if policy is None else no_perturbations,
        policy_checkpoint=policy,
        policy_draws=config.policy_draws,
        policy_std_min=config.policy_std_min,
        seed=config.seed,
        executor=config.executor,
        progress=config.progress,
    )


def label(config: ReportConfig, factory: SourceFactory, policy: str | None, log: Callable[[str], None]) -> LabelShard:
    """Label (or reuse the labels of) the held-out candidates, or of ``policy``'s samples; all scenes in one shard."""
    out = config.label_dir if policy is None else config.policy_label_dir(policy)
    if policy is None and config.vocabulary is not None:
        store = LabelStore(out)
        vocabulary = np.load(config.vocabulary, allow_pickle=False)
        held = store.read_vocabulary()
        if held is None:
            out.mkdir(parents=True, exist_ok=True)
            store.write_vocabulary(vocabulary)
        elif held.shape != vocabulary.shape or not np.array_equal(held, vocabulary.astype(held.dtype)):
            raise ValueError(
                f"report.vocabulary {config.vocabulary}: differs from the vocabulary {out} was labelled with; "
                "choose another report.labels_dir"
            )
    log(run_label(_label_config(config, out, policy), factory).summary())
    return read_label_shards(out)


def scored(
    shard: LabelShard, predicted: np.ndarray, rows: np.ndarray | None = None, selection: np.ndarray | None = None
) -> ScoredCandidates:
    """Labelled candidates with predictions, flat; only the candidate columns ``rows`` ``(K',)`` when given.

    ``selection`` ``(N, K)``: what each scene's favourite maximises (``None``: the predicted EPDMS).
    """
    sel = slice(None) if rows is None else rows
    names = np.vectorize(lambda v: CandidateSource(int(v)).name, otypes=[str])(shard.sources)
    return ScoredCandidates.from_scenes(
        shard.tokens,
        shard.candidates[:, sel],
        names[:, sel],
        shard.sub_scores[:, sel],
        shard.epdms[:, sel],
        predicted[:, sel],
        selection=None if selection is None else selection[:, sel],
    )


def _predict(path: str, config: ReportConfig, factory: SourceFactory, shard: LabelShard) -> tuple[np.ndarray, str]:
    """Predicted sub-scores ``(N, K, S)`` of the labelled candidates, and the model's row label (IRL weight, step).

    The inputs are read through the feature cache ``config.cache_dir`` (shared with the reward model's training).
    """
    reward = load_reward_model(path, device=config.device)
    label = f"{Path(path).name} (IRL weight {reward.model.cfg.loss.irl:g}, step {reward.checkpoint.step})"
    dataset = reward_dataset(factory, shard, reward.builders, config.feature_cache_dir)
    _, sub_scores = predict_labels(reward.model, dataset, config.batch_scenes, progress=config.progress)
    return sub_scores, label


@dataclass
class EnsemblePrediction:
    """The reward checkpoint's (and its ensemble's) predictions of a candidate set.

    Attributes:
        sub_scores: ``(N, K, S)`` the members' mean sub-scores.
        selection: ``(N, K)`` what each scene's favourite maximises (``None``: the predicted EPDMS).
        label: the model's row label.
    """

    sub_scores: np.ndarray
    selection: np.ndarray | None
    label: str


def predict_ensemble(config: ReportConfig, factory: SourceFactory, shard: LabelShard) -> EnsemblePrediction:
    """Predictions of ``reward_checkpoint`` and its ``ensemble``, each scene's favourite by ``selection``.

    Each member's reward is the EPDMS of its own sub-scores as the report computes it (``predicted_epdms``: EC
    dropped where the simulator has none); the selection rule combines them.
    """
    paths = [str(config.reward_checkpoint), *config.ensemble]
    predictions = [_predict(path, config, factory, shard) for path in paths]
    subs = np.stack([sub for sub, _ in predictions])  # (M, N, K, S)
    label = predictions[0][1]
    if len(paths) > 1:
        label += f" + {len(paths) - 1} more"
    if len(paths) == 1 and config.selection.is_plain:
        return EnsemblePrediction(subs[0], None, label)
    rewards = predicted_epdms(subs, np.broadcast_to(shard.sub_scores, subs.shape))  # (M, N, K)
    label += f", favourite by {config.selection.describe(len(paths))}"
    return EnsemblePrediction(subs.mean(axis=0), selection_scores(rewards, subs, config.selection), label)


def run_report(
    config: ReportConfig, factory: SourceFactory, out_dir: str | Path, *, log: Callable[[str], None] = print
) -> tuple[RewardReport, list[Path]]:
    """Build and write the report (see the module docstring); returns it and the paths written.

    Raises:
        ValueError: when no reward checkpoint is named, or as the labelling and loading steps raise.
    """
    if not config.reward_checkpoint:
        raise ValueError("report.reward_checkpoint: name the reward model to validate (irl-vla train stage=rwm)")
    started = time.perf_counter()
    shard = label(config, factory, None, log)
    labelled = time.perf_counter()
    prediction = predict_ensemble(config, factory, shard)
    main_label = prediction.label
    predict_s = time.perf_counter() - labelled
    candidates = scored(shard, prediction.sub_scores, selection=prediction.selection)
    main = evaluate(candidates, config.n_worst, config.n_bins)
    ablation: list[LabelledAgreement] = []
    if config.ablation:
        ablation.append(LabelledAgreement(main_label, config.reward_checkpoint, main))
        for path in config.ablation:
            other, name = _predict(path, config, factory, shard)
            ablation.append(
                LabelledAgreement(name, path, evaluate(scored(shard, other), config.n_worst, config.n_bins))
            )
    shift = [_policy_shift(config, factory, policy, log) for policy in config.policies]
    k = shard.num_candidates
    settings = {
        "split": config.split,
        "scenes": len(shard),
        "candidates per scene": k,
        "candidates by source": main.sources,
        "reward_checkpoint": str(resolve_checkpoint(config.reward_checkpoint)),
        "ensemble": [str(resolve_checkpoint(p)) for p in config.ensemble],
        "selection": config.selection.describe(1 + len(config.ensemble)),
        "ablation": [str(resolve_checkpoint(p)) for p in config.ablation],
        "policies": [str(resolve_checkpoint(p)) for p in config.policies],
        "policy draws per scene": config.policy_draws,
        "labels": str(config.label_dir),
        "vocabulary": config.vocabulary or f"K-means ({config.vocabulary_size}) of the held-out split's expert plans",
        "scorer": "fast scorer, log replay, human filter, EC from the previous frame's counterpart",
        "labelling [s]": round(labelled - started, 1),
        "prediction [s]": round(predict_s, 1),
        "predicted candidates/s": round(len(candidates) / max(predict_s, 1e-9), 1),
    }
    report = RewardReport(config.title, settings, main, candidates, ablation, shift)
    caches = MetricCacheStore(LabelConfig(data_root=config.data_root, split=config.split).cache_dir)
    paths = write_report(report, config.output_dir or out_dir, caches.load)
    return report, paths


def _policy_shift(
    config: ReportConfig, factory: SourceFactory, policy: str, log: Callable[[str], None]
) -> LabelledAgreement:
    """The reward checkpoint's (ensemble's) agreement on the samples of ``policy`` (its expert candidates left out)."""
    shard = label(config, factory, policy, log)
    samples = np.flatnonzero(shard.sources[0] == CandidateSource.POLICY_SAMPLE)
    if not len(samples) or not (shard.sources[:, samples] == CandidateSource.POLICY_SAMPLE).all():
        raise ValueError(f"policy {policy}: its labels hold no policy samples in the same columns of every scene")
    prediction = predict_ensemble(config, factory, shard)
    agreement: RewardAgreement = evaluate(
        scored(shard, prediction.sub_scores, samples, prediction.selection), config.n_worst, config.n_bins
    )
    return LabelledAgreement(f"policy {Path(policy).name}", policy, agreement)
