"""``irl-vla bench reward``: the reward model against the fast scorer, and labelling throughput.

1. **Reward model vs fast scorer**, one core, same run, same scenes and the same ``num_candidates`` candidates per
   scene (the expert's plan scaled in speed and drifted sideways, as ``bench scorer`` draws them): candidates/s of
   the fast scorer given each scene's metric cache, and of the reward model given each scene's input tensors
   (its scene encoding, once per scene, included), and their ratio. Building the inputs (the metric cache for
   the scorer; LiDAR, map raster and boxes for the reward model) is once per scene for both and reported apart;
   so is the reward model's rate with every scene already encoded (the cost per extra candidate). The three are
   timed in turn, round by round, so that a busy machine loads them alike; each record has the wall-clock and
   the thread-CPU rate, the ratio record both ratios.
   Without ``reward_checkpoint`` an untrained model of ``model_size`` is timed (its cost does not depend on the
   weights). ``compare`` adds more reward models (checkpoints, or sizes timed untrained) to the same rounds, each
   with its own inputs and records named after it (``reward_model_<name>_K<k>``, ``reward_<name>_over_fast_scorer``),
   so that two models and the fast scorer are compared under the same load. Each model is also timed on all the
   scenes in one batch (``_batched``: B scenes encoded and scored in one call, as PPO calls it), where the fixed
   cost of a call is shared by the scenes.
2. **Labelling throughput** (``irl-vla label``'s code on ``label_scenes`` scenes, fresh label directories, the
   split's metric caches already built): candidates/s with the process pool at each of ``label_workers`` and
   with Ray at ``ray_workers``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from irl_vla.benchmarks.scorer_bench import candidates
from irl_vla.benchmarks.timing import interleaved_medians, record
from irl_vla.common.config import require_at_least
from irl_vla.common.parallel import ExecutorConfig
from irl_vla.data.source import SourceFactory
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.labeling.pipeline import LabelConfig, run_label, select_tokens
from irl_vla.labeling.store import LabelStore
from irl_vla.models.reward.checkpoint import load_reward_model
from irl_vla.models.reward.config import REWARD_SIZES, load_reward_config
from irl_vla.models.reward.inputs import RewardInputBuilders, reward_builder_params
from irl_vla.models.reward.model import RewardWorldModel, compute_reward_normalization
from irl_vla.models.vla.anchors import compute_anchors
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.metric_cache import MetricCacheStore

SUITE = "reward"


@dataclass
class RewardBenchConfig:
    """Sizes of the reward benchmark (``configs/bench/reward.yaml``).

    Attributes:
        split_dir: the split whose scenes are used (generated, with its metric caches built by ``irl-vla eval``).
        metric_cache_dir: its metric caches (``None``: ``<data_root>/metric_cache/<split>`` beside ``split_dir``).
        reward_checkpoint: the reward model timed (``None``: an untrained one of ``model_size``).
        model_size: the reward model size without a checkpoint (``tiny`` | ``default`` | ``light``).
        compare: more reward models timed in the same rounds: checkpoints (or run directories), or sizes
            (untrained); each is named by its last path component.
        num_scenes: scenes of the reward-vs-scorer comparison, spread over the split.
        num_candidates: candidates per scene K.
        label_scenes: scenes labelled per labelling measurement (0: skip the labelling measurements).
        label_workers: process-pool sizes of the labelling measurements.
        ray_workers: Ray CPUs of the labelling measurement with Ray (0: skip it).
        vocabulary_size: vocabulary entries per labelled scene.
        seed: seed of the candidates.
    """

    split_dir: str = "data/synth_navtest"
    metric_cache_dir: str | None = None
    reward_checkpoint: str | None = None
    model_size: str = "default"
    compare: list[str] = field(default_factory=list)
    num_scenes: int = 8
    num_candidates: int = 256
    label_scenes: int = 8
    label_workers: list[int] = field(default_factory=lambda: [1, 2])
    ray_workers: int = 2
    vocabulary_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        require_at_least(self, ("num_scenes", "num_candidates"), 1)
        require_at_least(self, ("label_scenes", "ray_workers", "vocabulary_size"), 0)
        if any(w < 1 for w in self.label_workers):
            raise ValueError(f"RewardBenchConfig.label_workers: expected sizes >= 1, got {self.label_workers}")

    @property
    def cache_dir(self) -> Path:
        """Where the split's metric caches are."""
        split = Path(self.split_dir)
        return Path(self.metric_cache_dir) if self.metric_cache_dir else split.parent / "metric_cache" / split.name


def _untrained(size: str, seed: int, features: list[dict[str, torch.Tensor]], plans: torch.Tensor) -> RewardWorldModel:
    """An untrained model of ``size`` with the statistics of the benched inputs (``plans`` ``(N, T, 3)``)."""
    torch.manual_seed(seed)
    model = RewardWorldModel(load_reward_config(size))
    ego = torch.cat([f["ego_status"] for f in features])
    model.set_normalization(compute_reward_normalization(ego, plans[:, None]))
    return model.eval()


def run(cfg: RewardBenchConfig, repeats: int, source: SourceFactory) -> Iterator[dict[str, Any]]:
    """Yield one record per measurement (``source`` opens ``split_dir`` with its sensors)."""
    scenes_source = source()
    tokens = select_tokens(list(scenes_source.tokens), cfg.num_scenes)
    store = MetricCacheStore(cfg.cache_dir)
    missing = [t for t in tokens if not store.has(t)]
    if missing:
        raise FileNotFoundError(f"{cfg.cache_dir}: no metric cache of {missing[:3]}...; run irl-vla eval on the split")
    caches = [store.load(t) for t in tokens]
    rng = np.random.default_rng(cfg.seed)
    plans = [candidates(c, cfg.num_candidates, rng) for c in caches]  # each (K, T, 3)
    yield from _reward_vs_scorer(cfg, scenes_source, tokens, caches, plans, repeats)
    if cfg.label_scenes:  # the vocabulary: K-means of twice as many plans, drawn as the candidates are
        per_scene = -(-2 * cfg.vocabulary_size // len(caches))
        yield from _labelling(cfg, source, np.concatenate([candidates(c, per_scene, rng) for c in caches]))


@dataclass
class _BenchedModel:
    """A reward model under test, its inputs per scene and the scenes encoded once."""

    name: str
    model: RewardWorldModel
    features: list[dict[str, torch.Tensor]]
    encoded: list[Any]
    trained: bool


def _prepare(
    spec: str | None, size: str, seed: int, scenes_source: Any, tokens: list[str], plans: torch.Tensor
) -> tuple[_BenchedModel, float]:
    """The model of a checkpoint ``spec`` (or an untrained one of ``size``) and its inputs; seconds to build them."""
    loaded = load_reward_model(spec) if spec else None
    builders = (
        loaded.builders if loaded else RewardInputBuilders.from_params(*reward_builder_params(load_reward_config(size)))
    )
    start = time.perf_counter()
    features = [builders.batch([scenes_source.get_scene(t, builders.sensor_config())]) for t in tokens]
    seconds = time.perf_counter() - start
    model = loaded.model if loaded else _untrained(size, seed, features, plans)
    with torch.no_grad():
        encoded = [model.encode_scene(f) for f in features]
    name = Path(spec.rstrip("/")).name if spec else size
    return _BenchedModel(name, model, features, encoded, loaded is not None), seconds


def _reward_vs_scorer(
    cfg: RewardBenchConfig, scenes_source: Any, tokens: list[str], caches: list, plans: list[np.ndarray], repeats: int
) -> Iterator[dict[str, Any]]:
    k, n = cfg.num_candidates, len(tokens)
    tensors = [torch.as_tensor(p, dtype=torch.float32)[None] for p in plans]  # each (1, K, T, 3)
    all_plans = torch.cat(tensors, dim=1)[0]
    main, seconds = _prepare(cfg.reward_checkpoint, cfg.model_size, cfg.seed, scenes_source, tokens, all_plans)
    yield record(SUITE, "reward_inputs_build", items=n, seconds=seconds, unit="scenes")
    benched = [main]
    for spec in cfg.compare:
        is_size = spec in REWARD_SIZES and not Path(spec).exists()
        other, _ = _prepare(
            None if is_size else spec, spec if is_size else cfg.model_size, cfg.seed, scenes_source, tokens, all_plans
        )
        benched.append(other)
    fast = FastScorer()

    def fast_scorer() -> None:
        for cache, p in zip(caches, plans, strict=True):
            fast.score(cache, p, DEFAULT_SAMPLING)

    stacked = torch.cat(tensors)  # (N, K, T, 3)

    def scoring(b: _BenchedModel, mode: str):
        batch = {key: torch.cat([f[key] for f in b.features]) for key in b.features[0]}

        @torch.no_grad()
        def run_model() -> None:
            if mode == "batched":
                b.model.score_candidates(b.model.encode_scene(batch), stacked)
                return
            for f, scene, p in zip(b.features, b.encoded, tensors, strict=True):
                b.model.score_candidates(scene if mode == "encoded" else b.model.encode_scene(f), p)

        return run_model

    def prefix(i: int) -> str:
        return "reward_model" if i == 0 else f"reward_model_{benched[i].name}"

    fns: dict[str, Any] = {"fast_scorer": fast_scorer}
    about: dict[str, dict[str, Any]] = {"fast_scorer": {}}  # what each timed function ran
    for i, b in enumerate(benched):
        kind = "checkpoint" if b.trained else f"untrained {b.name}"
        params = sum(p.numel() for p in b.model.parameters())
        for suffix, mode in (("", "scene"), ("_scenes_encoded", "encoded"), ("_batched", "batched")):
            fns[prefix(i) + suffix] = scoring(b, mode)
            about[prefix(i) + suffix] = {
                "model": kind if i == 0 else f"{b.name} ({kind})",
                "params": params,
                "decoder": b.model.cfg.decoder,
            }
    timed = interleaved_medians(fns, repeats)
    for name, (wall, cpu) in timed.items():
        more = about[name]
        cpu_rate = round(k * n / cpu, 2) if cpu > 0 else float("inf")
        yield record(
            SUITE,
            f"{name}_K{k}",
            items=k * n,
            seconds=wall,
            unit="candidates",
            k=k,
            **more,
            cpu_s=round(cpu, 6),
            cpu_candidates_per_s=cpu_rate,
        )
    fast_wall, fast_cpu = timed["fast_scorer"]
    for i, b in enumerate(benched):
        p = prefix(i)
        yield record(
            SUITE,
            "reward_over_fast_scorer" if i == 0 else f"reward_{b.name}_over_fast_scorer",
            items=1,
            seconds=1.0,
            unit="ratio",
            ratio=fast_wall / timed[p][0],
            ratio_cpu=fast_cpu / timed[p][1],
            ratio_scenes_encoded=fast_wall / timed[f"{p}_scenes_encoded"][0],
            ratio_scenes_encoded_cpu=fast_cpu / timed[f"{p}_scenes_encoded"][1],
            ratio_batched=fast_wall / timed[f"{p}_batched"][0],
            ratio_batched_cpu=fast_cpu / timed[f"{p}_batched"][1],
            target=100.0,
            k=k,
            threads=torch.get_num_threads(),
        )


def _labelling(cfg: RewardBenchConfig, source: SourceFactory, plans: np.ndarray) -> Iterator[dict[str, Any]]:
    """``run_label`` on fresh label directories, each backend and size in turn (the vocabulary written first)."""
    split = Path(cfg.split_dir)
    vocabulary = torch.zeros(0, *plans.shape[1:])
    if cfg.vocabulary_size:
        vocabulary = compute_anchors(torch.as_tensor(plans, dtype=torch.float32), cfg.vocabulary_size, seed=cfg.seed)
    runs = [("process", w) for w in cfg.label_workers] + ([("ray", cfg.ray_workers)] if cfg.ray_workers else [])
    for backend, workers in runs:
        with tempfile.TemporaryDirectory(prefix="irl_vla_bench_label_") as tmp:
            out = Path(tmp) / "labels"
            out.mkdir()
            LabelStore(out).write_vocabulary(vocabulary.numpy())
            config = LabelConfig(
                data_root=str(split.parent),
                split=split.name,
                max_scenes=cfg.label_scenes,
                output_dir=str(out),
                metric_cache_dir=str(cfg.cache_dir),
                vocabulary_size=cfg.vocabulary_size,
                shard_size=max(1, cfg.label_scenes // (2 * workers)),
                seed=cfg.seed,
                executor=ExecutorConfig(backend=backend, workers=workers),
                progress=False,
            )
            start = time.perf_counter()
            report = run_label(config, source)
            seconds = time.perf_counter() - start
        yield record(
            SUITE,
            f"label_{backend}_{workers}",
            items=report.scenes * report.candidates,
            seconds=seconds,
            unit="candidates",
            backend=backend,
            workers=workers,
            scenes=report.scenes,
            candidates_per_scene=report.candidates,
        )
