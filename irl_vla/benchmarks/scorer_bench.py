"""``irl-vla bench scorer``: EPDMS scorer throughput on ``synth_navtest`` scenes, one core.

Measures: metric-cache build (scene cache + PDM-Closed) in scenes/s; the per-scene containment grids of the
map polygons (built once per scene by ``fast``) in polygons/s; ``fast`` candidates/s at several batch
sizes K (all sub-metrics: simulation, geometry, comfort, aggregation); ``fast`` against ``reference`` on the same
scenes and plans in the same run (whole score call and geometric part alone); peak memory of one call at the
largest K; ``fast`` with log replay against reactive traffic (one IDM rollout per candidate) on the same scenes
and plans, side by side.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from irl_vla.benchmarks.timing import interleaved_medians, median_seconds, record
from irl_vla.data.split import SceneLoader
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.scoring.containment import PolygonGrid
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.pdm_closed import PDMClosedPlanner, plan_scene
from irl_vla.scoring.reference_scorer import ReferenceScorer
from irl_vla.scoring.scene_cache import SceneCache, build_scene_cache
from irl_vla.scoring.scorer import ScorerConfig

SUITE = "scorer"


@dataclass
class ScorerBenchConfig:
    """Sizes of the scorer benchmark (``configs/bench/scorer.yaml``).

    Attributes:
        split_dir: split whose scenes are scored (generate it first).
        num_scenes: scenes used, spread over the split.
        batch_sizes: candidates per call K.
        reference_batch: K of the fast/reference comparison.
        reactive_batch_sizes: K of the non-reactive/reactive comparison.
        seed: seed of the candidate perturbations.
    """

    split_dir: str = "data/synth_navtest"
    num_scenes: int = 8
    batch_sizes: list[int] = field(default_factory=lambda: [1, 16, 256, 1024])
    reference_batch: int = 64
    reactive_batch_sizes: list[int] = field(default_factory=lambda: [1, 16, 64])
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_scenes < 1 or self.reference_batch < 1 or not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError("ScorerBenchConfig: num_scenes, reference_batch and batch_sizes must be >= 1")


def candidates(cache: SceneCache, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` plans around the expert's: speed scaling, lateral drift and heading noise ``(K, 8, 3)``."""
    assert cache.human_plan is not None
    t = DEFAULT_SAMPLING.times[None, :, None]
    scale = rng.uniform(0.0, 1.6, (k, 1, 1))
    drift = rng.normal(0.0, 1.0, (k, 1, 3)) * np.array([2.0, 2.0, 0.2]) * t / 4.0
    return cache.human_plan[None] * scale + drift


def _caches(cfg: ScorerBenchConfig) -> tuple[list[SceneCache], float]:
    path = Path(cfg.split_dir)
    if not (path / "manifest.json").is_file():
        raise FileNotFoundError(f"{path}: no split to benchmark on; run `irl-vla generate` first")
    loader = SceneLoader(path)
    tokens = loader.tokens[:: max(1, len(loader.tokens) // cfg.num_scenes)][: cfg.num_scenes]
    planner = PDMClosedPlanner(FastScorer())
    start = time.perf_counter()
    caches = []
    for token in tokens:
        cache = build_scene_cache(loader.get_scene(token))
        plan_scene(cache, planner)
        caches.append(cache)
    return caches, time.perf_counter() - start


def run(cfg: ScorerBenchConfig, repeats: int) -> Iterator[dict[str, Any]]:
    """Yield one record per measurement."""
    caches, build_s = _caches(cfg)
    yield record(SUITE, "metric_cache_build", items=len(caches), seconds=build_s, unit="scenes")
    polygons = [p for c in caches for p in c.polygons]
    t, _ = median_seconds(lambda: [PolygonGrid(p) for p in polygons], repeats=repeats)
    yield record(SUITE, "containment_grid_build", items=len(polygons), seconds=t, unit="polygons")
    rng = np.random.default_rng(cfg.seed)
    fast, ref = FastScorer(), ReferenceScorer()
    for k in cfg.batch_sizes:
        plans = [candidates(c, k, rng) for c in caches]

        def score_all(plans: list[np.ndarray] = plans) -> None:
            for cache, p in zip(caches, plans, strict=True):
                fast.score(cache, p, DEFAULT_SAMPLING)

        t, _ = median_seconds(score_all, repeats=repeats)
        yield record(SUITE, f"fast_K{k}", items=k * len(caches), seconds=t, unit="candidates", k=k)

    k = cfg.reference_batch
    plans = [candidates(c, k, rng) for c in caches]
    timings = {}
    for name, scorer in (("fast", fast), ("reference", ref)):

        def whole(scorer=scorer) -> None:
            for cache, p in zip(caches, plans, strict=True):
                scorer.score(cache, p, DEFAULT_SAMPLING)

        states = [scorer.simulate(c, p, DEFAULT_SAMPLING) for c, p in zip(caches, plans, strict=True)]

        def geometric(scorer=scorer, states=states) -> None:
            for cache, s in zip(caches, states, strict=True):
                scorer.geometric_metrics(cache, s)

        reps = repeats if name == "fast" else max(1, min(repeats, 3))
        timings[name] = (median_seconds(whole, repeats=reps)[0], median_seconds(geometric, repeats=reps)[0])
        yield record(
            SUITE, f"{name}_K{k}_side_by_side", items=k * len(caches), seconds=timings[name][0], unit="candidates", k=k
        )
    yield record(
        SUITE,
        "fast_over_reference",
        items=1,
        seconds=1.0,
        unit="ratio",
        ratio_whole_score=timings["reference"][0] / timings["fast"][0],
        ratio_geometric_metrics=timings["reference"][1] / timings["fast"][1],
        k=k,
    )

    yield from _traffic_side_by_side(cfg, caches, rng, repeats)

    k = max(cfg.batch_sizes)
    p = candidates(caches[0], k, rng)
    fast.score(caches[0], p, DEFAULT_SAMPLING)
    tracemalloc.start()
    fast.score(caches[0], p, DEFAULT_SAMPLING)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    yield record(SUITE, f"fast_K{k}_peak_memory", items=k, seconds=1.0, unit="candidates", peak_mib=peak / 2**20, k=k)


def _traffic_side_by_side(
    cfg: ScorerBenchConfig, caches: list[SceneCache], rng: np.random.Generator, repeats: int
) -> Iterator[dict[str, Any]]:
    """``fast`` against log replay and against reactive traffic on the same scenes and plans, in the same run.

    The two are timed in turn, round by round (``interleaved_medians``), so both see the same load; then the ratio
    of their median times. Rollouts a scene keeps for plans it has seen are dropped before every reactive round,
    so each round pays for its rollouts as an agent's new plan does (the agents and footprints a scene derives
    once stay, as they do for the second and later agents of an ``eval``).
    """
    vehicles = [len(c.traffic) if c.traffic is not None else 0 for c in caches]
    for k in cfg.reactive_batch_sizes:
        plans = [candidates(c, k, rng) for c in caches]
        fns = {}
        for traffic in ("non_reactive", "reactive"):
            scorer = FastScorer(ScorerConfig(traffic=traffic))

            def score_all(scorer: FastScorer = scorer, plans: list[np.ndarray] = plans) -> None:
                for cache, p in zip(caches, plans, strict=True):
                    for key in [key for key in cache._derived if key.startswith("reactive_rollouts/")]:
                        del cache._derived[key]
                    scorer.score(cache, p, DEFAULT_SAMPLING)

            fns[traffic] = score_all
        timings = interleaved_medians(fns, repeats=max(1, min(repeats, 3)))
        for traffic, (wall, cpu) in timings.items():
            yield record(
                SUITE,
                f"fast_{traffic}_K{k}",
                items=k * len(caches),
                seconds=wall,
                unit="candidates",
                k=k,
                traffic=traffic,
                cpu_s=round(cpu, 6),
                vehicles_per_scene=float(np.mean(vehicles)),
            )
        (nr_wall, nr_cpu), (r_wall, r_cpu) = timings["non_reactive"], timings["reactive"]
        yield record(
            SUITE,
            f"reactive_over_non_reactive_K{k}",
            items=1,
            seconds=1.0,
            unit="ratio",
            k=k,
            time_ratio_wall=round(r_wall / nr_wall, 3),
            time_ratio_cpu=round(r_cpu / nr_cpu, 3),
        )
