"""``irl-vla bench data``: dataset samples/s with the default builders, cold and from the feature cache.

A sample is every default feature (ego status history, driving command, the default rig's three cameras at the
current frame, LiDAR BEV, instruction tokens) and target (trajectory, agent boxes, BEV semantic map, meta-action,
scene-description tokens)
of one scene, batched by ``collate``. *Cold* reads the scene (log decode, one per log and process), renders its
sensors and runs the builders; *cached* reads the feature cache. Each is timed with 0 loader workers (this
process) and with ``workers`` processes; scenes are read in log order (as a sharded sampler would), and every
repeat starts from a fresh dataset, so cold runs decode their logs each time. ``log_decode`` times the decode
alone: one scene of each of the split's first ``num_logs`` logs from a fresh source (files already read once, so
the disk is not timed).

The scene source is given by the command (``tools/run_bench.py``): ``irl_vla`` does not know the embedded world.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from irl_vla.benchmarks.timing import median_seconds, record
from irl_vla.common.config import require_at_least
from irl_vla.data.features.caching import DEFAULT_FEATURES, DEFAULT_TARGETS, split_tokenizer
from irl_vla.data.features.dataset import FeatureDataset, collate
from irl_vla.data.features.registry import build_feature_builders, build_target_builders
from irl_vla.data.features.tokenizer import save_tokenizer
from irl_vla.data.source import SourceFactory

SUITE = "data"


@dataclass
class DataBenchConfig:
    """Sizes of the data benchmark (``configs/bench/data.yaml``).

    Attributes:
        split_dir: the embedded split read (generate it first).
        num_samples: scenes per timed pass (the split's first, in log order).
        batch_size: samples per batch.
        workers: loader worker counts timed (0 = this process).
        num_logs: logs decoded by ``log_decode``.
    """

    split_dir: str = "data/synth_navtest"
    num_samples: int = 64
    batch_size: int = 8
    workers: list[int] = field(default_factory=lambda: [0, 2])
    num_logs: int = 32

    def __post_init__(self) -> None:
        require_at_least(self, ("num_samples", "batch_size", "num_logs"), 1)
        if not self.workers or any(w < 0 for w in self.workers):
            raise ValueError(f"DataBenchConfig.workers: expected worker counts >= 0, got {self.workers}")


def _first_scene_per_log(source: SourceFactory, num_logs: int) -> list[str]:
    opened = source()
    firsts: list[str] = []
    seen: set[str] = set()
    for token in opened.tokens:
        log = opened.log_hash(token)
        if log not in seen:
            seen.add(log)
            firsts.append(token)
            if len(firsts) == num_logs:
                break
    return firsts


def run(cfg: DataBenchConfig, repeats: int, source: SourceFactory) -> Iterator[dict[str, Any]]:
    """Yield the ``log_decode`` record, then one per (cold | cached) x workers measurement."""
    firsts = _first_scene_per_log(source, cfg.num_logs)

    def decode() -> None:
        fresh = source()
        for token in firsts:
            fresh.get_scene(token)

    t, _ = median_seconds(decode, repeats=repeats, warmup=1)
    yield record(SUITE, "log_decode", items=len(firsts), seconds=t, unit="logs")
    tokens = list(source().tokens)[: cfg.num_samples]
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = Path(tmp) / "tokenizer.json"
        save_tokenizer(split_tokenizer(source(), tokens), tokenizer)
        features = {**DEFAULT_FEATURES, "navigation_instruction": {"tokenizer": str(tokenizer)}}
        targets = {**DEFAULT_TARGETS, "scene_description": {"tokenizer": str(tokenizer)}}

        def dataset(cache: Path | None) -> FeatureDataset:
            return FeatureDataset(
                source,
                build_feature_builders(features),
                build_target_builders(targets),
                tokens=tokens,
                cache_dir=cache,
            )

        def passes(cache: Path | None, workers: int) -> None:
            loader = DataLoader(dataset(cache), batch_size=cfg.batch_size, num_workers=workers, collate_fn=collate)
            for _ in loader:
                pass

        cache = Path(tmp) / "cache"
        filled = dataset(cache)
        for token in tokens:
            filled.load(token)
        size = sum(p.stat().st_size for p in cache.rglob("*.safetensors"))
        for mode, where in (("cold", None), ("cached", cache)):
            for workers in cfg.workers:
                t, _ = median_seconds(lambda w=workers, c=where: passes(c, w), repeats=repeats, warmup=0)
                extra: dict[str, Any] = {"workers": workers, "batch_size": cfg.batch_size}
                if where is not None:
                    extra["cache_bytes_per_sample"] = size // len(tokens)
                name = f"dataset_{mode}_workers_{workers}"
                yield record(SUITE, name, items=len(tokens), seconds=t, unit="samples", **extra)
