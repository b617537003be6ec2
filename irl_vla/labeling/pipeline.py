"""``irl-vla label``: score a candidate set per training scene with the simulator and store it (``store``).

1. The scenes: the split's tokens (less those of ``exclude_labels``), or ``max_scenes`` of them spread evenly.
2. The **vocabulary**: K-means (``compute_anchors``) of the expert trajectories of the whole split, computed once
   and saved in the label directory (a resumed run reads it back).
3. The **metric caches** of the scenes (``build_metric_cache``: resumable, shared with ``irl-vla eval``).
4. One executor task per shard of ``shard_size`` consecutive scenes: for each scene build the candidates
   (``candidates``), score them with the fast scorer against log replay (human filter on real scenes), pair each
   with its counterpart in the previous frame for EC, aggregate, and write the shard atomically.

EC of a policy's candidates: the policy's plan in the previous frame is the one it output there (its most
confident deterministic mode), so each of its candidates (deterministic modes and stochastic draws) is paired with
that plan: the simulator's EC of the policy had it output this candidate now. A mode other than the one the policy
kept choosing fails EC, which is what a reward model must know before PPO's mode selection trusts it.

Resume: the manifest records the settings at the start (a rerun with other settings is refused, naming them);
each finished shard is journalled at once, so a killed run redoes only the shards it had not finished, and a
shard is always written whole under its fixed name, so no scene is ever labelled twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from irl_vla.common.checkpoint import config_differences
from irl_vla.common.config_source import DataKind, SceneSelectionConfig
from irl_vla.common.io import file_sha256
from irl_vla.common.parallel import ExecutorConfig, Task, run_tasks
from irl_vla.common.progress import ProgressBar
from irl_vla.data.source import SceneSource, SourceFactory
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.labeling.candidates import CandidateSet, Perturbation, PerturbationConfig, build_candidates, scene_seed
from irl_vla.labeling.store import (
    VOCABULARY,
    CandidateSource,
    LabelShard,
    LabelStore,
    ShardRecord,
    read_shard,
    shard_name,
    write_shard,
)
from irl_vla.models.vla.anchors import compute_anchors
from irl_vla.scoring.aggregation import aggregate
from irl_vla.scoring.comfort import extended_comfort
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.metric_cache import MetricCacheStore, build_metric_cache
from irl_vla.scoring.scene_aggregation import human_filter
from irl_vla.scoring.simulation import simulate_plans
from irl_vla.scoring.states import initial_state
from irl_vla.scoring.sub_scores import SubScore


@dataclass
class LabelConfig(SceneSelectionConfig):
    """Settings of ``irl-vla label`` (the scene source's keys are ``SceneSourceConfig``'s).

    Attributes:
        split: the split whose scenes are labelled.
        max_scenes: label this many scenes spread evenly over the split (``None``: all).
        exclude_labels: label directories whose scenes are left out before ``max_scenes`` are chosen (more
            scenes beside an earlier run's; train on both with ``train.extra_labels_dirs``).
        output_dir: the label directory (``None``: ``<data_root>/labels/<split>``).
        metric_cache_dir: the split's metric caches (``None``: ``<data_root>/metric_cache/<split>``).
        vocabulary_size: K-means clusters of the split's expert trajectories (0: no vocabulary).
        vocabulary_iterations: K-means iterations at most.
        vocabulary_scenes: expert trajectories of this many scenes spread over the split form the vocabulary
            (``None``: every scene).
        vocabulary_path: a ``vocabulary.npy`` to use instead of computing one (e.g. the training split's, when
            labelling held-out scenes).
        perturbations: perturbations of the expert per scene.
        policy_checkpoint: a stage-1 VLA checkpoint (or run directory) whose samples join the candidates;
            ``None``: no policy samples.
        policy_draws: stochastic denoising draws per scene, each giving all the policy's modes.
        policy_modes: also the policy's deterministic modes (what it outputs at inference, before its confidence
            picks one).
        policy_std_min: the standard-deviation floor of the stochastic draws (normalised units; ``None``: the
            model's ``planner.std_min``; PPO samples with ``ppo.sampling_std_min``).
        human_filter: forgive what the human also fails (real scenes), as ``irl-vla eval`` scores.
        shard_size: scenes per shard (one executor task each).
        seed: seeds the vocabulary, the random perturbations and the policy's noise.
        executor: where shards are labelled (``process`` by default, ``ray`` when configured).
        progress: show progress bars.
    """

    split: str = "synth_navtrain"
    max_scenes: int | None = 800
    exclude_labels: list[str] = field(default_factory=list)
    output_dir: str | None = None
    metric_cache_dir: str | None = None
    vocabulary_size: int = 256
    vocabulary_iterations: int = 50
    vocabulary_scenes: int | None = 1500
    vocabulary_path: str | None = None
    perturbations: PerturbationConfig = field(default_factory=PerturbationConfig)
    policy_checkpoint: str | None = None
    policy_draws: int = 1
    policy_modes: bool = True
    policy_std_min: float | None = None
    human_filter: bool = True
    shard_size: int = 16
    seed: int = 0
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("vocabulary_size", "vocabulary_iterations", "policy_draws"):
            if getattr(self, name) < 0:
                raise ValueError(f"LabelConfig.{name}: expected >= 0, got {getattr(self, name)}")
        if self.shard_size < 1:
            raise ValueError(f"LabelConfig.shard_size: expected >= 1, got {self.shard_size}")
        if self.policy_std_min is not None and self.policy_std_min <= 0:
            raise ValueError(f"LabelConfig.policy_std_min: expected > 0 or null, got {self.policy_std_min}")

    @property
    def label_dir(self) -> Path:
        """Where the labels go."""
        return Path(self.output_dir) if self.output_dir else self.data_dir(DataKind.LABELS)

    @property
    def cache_dir(self) -> Path:
        """Where the split's metric caches are."""
        return Path(self.metric_cache_dir) if self.metric_cache_dir else self.metric_caches()

    def record(self) -> dict[str, Any]:
        """The settings that decide the labels (recorded in the manifest; a resumed run must match them)."""
        return {
            "split": self.split,
            "source": self.source,
            "max_scenes": self.max_scenes,
            "vocabulary_size": self.vocabulary_size,
            "vocabulary_iterations": self.vocabulary_iterations,
            "vocabulary_scenes": self.vocabulary_scenes,
            "perturbations": asdict(self.perturbations),
            "policy_checkpoint": self.policy_checkpoint,
            "policy_draws": self.policy_draws if self.policy_checkpoint else 0,
            "human_filter": self.human_filter,
            "shard_size": self.shard_size,
            "seed": self.seed,
            # only with a policy, so that label directories without one still resume
            **({"policy": self.policy_record()} if self.policy_checkpoint else {}),
            **({"exclude_labels": sorted(self.exclude_labels)} if self.exclude_labels else {}),
        }

    def policy_record(self) -> dict[str, Any]:
        """The settings of the policy's candidates beside its checkpoint and draws."""
        return {"modes": self.policy_modes, "std_min": self.policy_std_min, "ec_previous": "output"}


@dataclass
class LabelReport:
    """What a labelling run did.

    Attributes:
        label_dir: the label directory.
        scenes: scenes labelled in all.
        candidates: candidates per scene (K).
        shards_written: shards written by this run.
        shards_kept: shards a previous run had finished.
    """

    label_dir: Path
    scenes: int
    candidates: int
    shards_written: int
    shards_kept: int

    def summary(self) -> str:
        """One line."""
        return (
            f"label: {self.scenes} scenes x {self.candidates} candidates in {self.label_dir} "
            f"({self.shards_written} shards written, {self.shards_kept} kept)"
        )


class LabelSettingsError(ValueError):
    """A label directory was made with other settings (the message names every key that differs)."""


def labelled_tokens(label_dirs: list[str]) -> set[str]:
    """The scene tokens the label directories hold (their finished shards).

    Raises:
        FileNotFoundError: naming a directory without labels.
    """
    out: set[str] = set()
    for root in label_dirs:
        finished = LabelStore(root).finished()
        if not finished:
            raise FileNotFoundError(f"label.exclude_labels: {root} holds no labelled shard")
        for rec in finished.values():
            out.update(rec.tokens)
    return out


def select_tokens(tokens: list[str], max_scenes: int | None) -> list[str]:
    """``max_scenes`` tokens spread evenly over ``tokens`` (all when ``None`` or more than there are)."""
    if max_scenes is None or max_scenes >= len(tokens):
        return list(tokens)
    index = np.unique(np.linspace(0, len(tokens) - 1, max_scenes).round().astype(int))
    return [tokens[i] for i in index]


def expert_plan(source: SceneSource, token: str) -> np.ndarray:
    """The expert's logged plan ``(T, 3)`` of scene ``token``."""
    return source.get_scene(token).get_future_trajectory(DEFAULT_SAMPLING.num_poses).poses.astype(np.float64)


def compute_vocabulary(
    source: SceneSource, size: int, iterations: int, seed: int, scenes: int | None = None, progress: bool = False
) -> np.ndarray:
    """K-means vocabulary ``(size, T, 3)`` of the expert plans of ``scenes`` scenes spread over ``source``."""
    if size == 0:
        return np.zeros((0, DEFAULT_SAMPLING.num_poses, 3), dtype=np.float32)
    tokens = select_tokens(list(source.tokens), scenes)
    bar = tqdm(tokens, desc="label: vocabulary (expert trajectories)", unit="scene", disable=not progress)
    plans = np.stack([expert_plan(source, t) for t in bar])
    return compute_anchors(torch.from_numpy(plans), size, iterations=iterations, seed=seed).numpy()


# ---------------------------------------------------------------------------------------------- in a worker
@dataclass
class _Worker:
    """Per-worker state: the scene source, the metric caches, the scorer, the vocabulary, the policy."""

    source: SceneSource
    caches: MetricCacheStore
    scorer: FastScorer
    vocabulary: np.ndarray
    config: LabelConfig
    policy: Any = None


def _open_worker(factory: SourceFactory, config: LabelConfig, vocabulary: np.ndarray) -> _Worker:
    torch.set_num_threads(1)
    policy = None
    if config.policy_checkpoint:
        from irl_vla.training.policy import load_policy

        policy, _ = load_policy(config.policy_checkpoint, architecture="vla")
    return _Worker(factory(), MetricCacheStore(config.cache_dir, keep=4), FastScorer(), vocabulary, config, policy)


@dataclass
class _PolicyPlans:
    """A policy's plans in one frame: its candidates ``(P, T, 3)`` and the plan it outputs ``(T, 3)``."""

    candidates: np.ndarray
    output: np.ndarray


def _policy_plans(w: _Worker, scene_token: str, scene: Any, draws: bool = True) -> _PolicyPlans | None:
    """The policy's candidates and output in ``scene`` (``None`` without a policy).

    Candidates: its deterministic modes (``policy_modes``), then the modes of ``policy_draws`` stochastic draws,
    noise seeded by the scene token; ``draws=False``: none, the output alone.
    """
    if w.policy is None:
        return None
    generator = torch.Generator().manual_seed(scene_seed(w.config.seed, scene_token))
    model = w.policy.model
    features = w.policy.features([scene.get_agent_input()])
    with torch.no_grad():
        model.eval()
        ctx, _ = model.encode(features, None, with_aux=False)
        mean = model.planner.sample(ctx)  # deterministic: what the policy outputs
        modes, logits = mean.modes[0].float(), mean.logits[0]  # (K, T, 3), (K,)
        plans = [modes] if draws and w.config.policy_modes else []
        for _ in range(w.config.policy_draws if draws else 0):
            out = model.planner.sample(ctx, stochastic=True, generator=generator, std_min=w.config.policy_std_min)
            plans.append(out.modes[0].float())
    empty = modes.new_zeros((0, *modes.shape[1:]))
    return _PolicyPlans(torch.cat(plans or [empty]).cpu().numpy(), modes[logits.argmax()].cpu().numpy())


def _candidates(w: _Worker, seed_token: str, scene: Any, perturbations: list[Perturbation]) -> CandidateSet:
    """Candidates of ``scene``, random draws seeded by ``seed_token``."""
    expert = scene.get_future_trajectory(DEFAULT_SAMPLING.num_poses).poses.astype(np.float64)
    policy = _policy_plans(w, seed_token, scene)
    samples = policy.candidates if policy is not None else None
    return build_candidates(expert, w.vocabulary, perturbations, DEFAULT_SAMPLING.interval_length, samples)


def _previous_plans(
    w: _Worker, token: str, previous: Any, perturbations: list[Perturbation], current: CandidateSet
) -> np.ndarray:
    """Each candidate's plan in the previous frame ``(K, T, 3)``, for EC.

    Its counterpart there (the expert's plan, the same vocabulary entry, the same perturbation of the expert), and
    for the policy's candidates the plan the policy output there.
    """
    expert = previous.get_future_trajectory(DEFAULT_SAMPLING.num_poses).poses.astype(np.float64)
    policy = _policy_plans(w, token, previous, draws=False)
    mine = current.sources == CandidateSource.POLICY_SAMPLE
    samples = None if policy is None else np.repeat(policy.output[None], int(mine.sum()), axis=0)
    prev = build_candidates(expert, w.vocabulary, perturbations, DEFAULT_SAMPLING.interval_length, samples)
    if not np.array_equal(prev.sources, current.sources):  # build_candidates orders both frames' sets alike
        raise ValueError(f"scene {previous.token}: the previous frame's candidates do not pair with the current's")
    return prev.plans


def label_scene(w: _Worker, token: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidates ``(K, T, 3)``, sub-scores ``(K, S)``, EPDMS ``(K,)`` and sources ``(K,)`` of one scene."""
    sensors = w.policy.sensor_config() if w.policy is not None else None
    scene = w.source.get_scene(token, sensors)
    perturbations = w.config.perturbations.draw(w.config.seed, token)
    cands = _candidates(w, token, scene, perturbations)
    cache = w.caches.load(token)
    scorer = w.scorer
    result = scorer.score(cache, cands.plans, DEFAULT_SAMPLING)
    sub = result.sub_scores.copy()
    if w.config.human_filter and not cache.synthetic and cache.human_plan is not None:
        human = scorer.score(cache, cache.human_plan[None], DEFAULT_SAMPLING, normalizer="batch", with_history=False)
        sub = human_filter(sub, human.sub_scores[0])
    previous = w.source.get_previous_scene(token, sensors)
    if previous is not None:
        prev_plans = _previous_plans(w, token, previous, perturbations, cands)
        ego = previous.current_frame.ego_status
        start = initial_state(ego.ego_pose, ego.ego_velocity, ego.ego_acceleration)
        where = f"scene {previous.token}"
        prev_states = simulate_plans(prev_plans, DEFAULT_SAMPLING, start, scorer.simulation, where=where)
        dt = (scene.current_frame.timestamp - previous.current_frame.timestamp) / 1e6
        sub[:, SubScore.EC] = extended_comfort(
            result.states, prev_states, dt, scorer.simulation.dt, scorer.config.extended_comfort
        )
    return cands.plans, sub, aggregate(sub, scorer.config.aggregation), cands.sources


def label_shard(w: _Worker, name: str, tokens: list[str], root: str) -> dict[str, Any]:
    """Executor task: label ``tokens`` and write shard ``name``; returns its record."""
    rows = [label_scene(w, t) for t in tokens]
    shard = LabelShard(
        np.array(tokens),
        np.stack([r[0] for r in rows]),
        np.stack([r[1] for r in rows]),
        np.stack([r[2] for r in rows]),
        np.stack([r[3] for r in rows]),
    )
    sha = write_shard(Path(root) / name, shard)
    return {"name": name, "sha256": sha, "tokens": list(tokens)}


# ---------------------------------------------------------------------------------------------- the command
def run_label(config: LabelConfig, factory: SourceFactory) -> LabelReport:
    """Label the split's scenes into ``config.label_dir`` (resuming a killed run); see the module docstring.

    Raises:
        LabelSettingsError: when the label directory was made with other settings.
        TaskError: naming every shard (and its error) that could not be labelled.
    """
    store = LabelStore(config.label_dir)
    settings = config.record()
    previous = store.read_manifest()
    if previous is not None:
        differences = config_differences(previous.get("settings", {}), settings, ignore=["vocabulary_sha256"])
        if differences:
            raise LabelSettingsError(
                f"{store.manifest_path}: labelled with other settings ({'; '.join(differences)}); "
                "choose another label.output_dir or delete that directory"
            )
    source = factory()
    excluded = labelled_tokens(config.exclude_labels)
    tokens = select_tokens([t for t in source.tokens if t not in excluded], config.max_scenes)
    vocabulary = store.read_vocabulary()
    if vocabulary is None and config.vocabulary_path:
        vocabulary = LabelStore(Path(config.vocabulary_path).parent).read_vocabulary(Path(config.vocabulary_path).name)
        if vocabulary is None:
            raise FileNotFoundError(f"label.vocabulary_path {config.vocabulary_path}: no such file")
        store.root.mkdir(parents=True, exist_ok=True)
        store.write_vocabulary(vocabulary)
    if vocabulary is None:
        vocabulary = compute_vocabulary(
            source,
            config.vocabulary_size,
            config.vocabulary_iterations,
            config.seed,
            config.vocabulary_scenes,
            config.progress,
        )
        store.root.mkdir(parents=True, exist_ok=True)
        store.write_vocabulary(vocabulary)
    settings["vocabulary_sha256"] = file_sha256(store.root / VOCABULARY)
    if (
        previous is not None
        and previous["settings"].get("vocabulary_sha256", settings["vocabulary_sha256"])
        != (settings["vocabulary_sha256"])
    ):
        raise LabelSettingsError(f"{store.root / VOCABULARY}: changed since the labelling run began")
    finished = store.finished()
    store.write_manifest(settings, finished.values(), complete=False)

    with ProgressBar(f"metric cache {config.split}", config.progress, unit="scene") as bar:
        build_metric_cache(factory, config.cache_dir, [(t, False) for t in tokens], config.executor, bar)

    chunks = [tokens[i : i + config.shard_size] for i in range(0, len(tokens), config.shard_size)]
    tasks = [Task(shard_name(i), (shard_name(i), chunk, str(store.root))) for i, chunk in enumerate(chunks)]

    def done(task: Task) -> dict[str, Any] | None:
        rec = finished.get(task.name)
        expected = task.args[1]
        if rec is None or rec.tokens != expected:
            return None
        try:
            read_shard(store.root / task.name, rec.sha256)
        except Exception:  # changed or damaged since: label it again
            return None
        return {"name": rec.name, "sha256": rec.sha256, "tokens": rec.tokens}

    def record(_: str, result: dict[str, Any]) -> None:
        store.record(ShardRecord(result["name"], result["sha256"], result["tokens"]))

    setup = partial(_open_worker, factory, config, vocabulary)
    with ProgressBar(f"label {config.split}", config.progress, unit="shard") as bar:
        outcome = run_tasks(label_shard, tasks, config.executor, done=done, setup=setup, on_result=record, progress=bar)
    records = [ShardRecord(r["name"], r["sha256"], r["tokens"]) for r in outcome.results.values()]
    complete = not outcome.failures
    store.write_manifest(settings, records, complete=complete)
    outcome.raise_failures(f"label {config.label_dir}")
    k = read_shard(store.root / records[0].name).num_candidates if records else 0
    return LabelReport(store.root, len(tokens), k, len(records) - len(outcome.skipped), len(outcome.skipped))
