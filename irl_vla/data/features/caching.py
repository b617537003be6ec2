"""Building a split's feature cache (``irl-vla cache``): every scene's builder outputs, resumable, in parallel.

The scenes are cut into chunks of consecutive tokens (mostly one log each, so a worker decodes a log once) and
run on the suite's executor. A chunk reads each entry first and computes only what is missing or stale, so a
killed build resumes where it stopped; corrupt entries are rebuilt and named in the report.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from irl_vla.common.config_source import SceneSelectionConfig
from irl_vla.common.parallel import ExecutorConfig, Task, run_tasks
from irl_vla.common.progress import ProgressBar
from irl_vla.data.features.dataset import FeatureDataset, LoadStatus
from irl_vla.data.features.instruction import (
    InstructionTokensBuilder,
    SceneDescriptionTargetBuilder,
    navigation_instruction,
)
from irl_vla.data.features.registry import (
    FEATURE_BUILDERS,
    TARGET_BUILDERS,
    build_feature_builders,
    build_target_builders,
    builder_parameters,
)
from irl_vla.data.features.tokenizer import build_tokenizer, save_tokenizer
from irl_vla.data.source import SceneSource, SourceFactory

TOKENIZER_FILE = "tokenizer.json"

#: The builders ``irl-vla cache`` builds by default, each with its default parameters (listed, so that any one can
#: be overridden: ``cache.features.cameras.height=288``).
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    name: builder_parameters(FEATURE_BUILDERS[name])
    for name in ("ego_status", "driving_command", "cameras", "lidar_bev", "navigation_instruction")
}
DEFAULT_TARGETS: dict[str, dict[str, Any]] = {
    name: builder_parameters(TARGET_BUILDERS[name])
    for name in ("trajectory", "agents", "bev_semantic_map", "meta_action", "scene_description")
}

#: Builders that read the tokenizer (its path is filled in by ``dataset_for``).
TOKENIZED = (InstructionTokensBuilder.name, SceneDescriptionTargetBuilder.name)


@dataclass
class CacheConfig(SceneSelectionConfig):
    """Settings of ``irl-vla cache`` (``cache.<key>=...``; ``irl-vla cache --help`` lists them with defaults).

    The scene source's keys (``data_root``, ``source``, ``navsim_root``, ``maps_root``, ``split_file``,
    ``sensor_cache``) are ``SceneSourceConfig``'s.

    Attributes:
        split: the split whose scenes are cached.
        cache_dir: where the entries go (``irl-vla cache``: ``<data_root>/features/<split>``).
        tokenizer: ``tokenizer.json`` of the text builders; ``None``: ``<cache_dir>/tokenizer.json``, built from
            this split's texts if missing (give a test split the training split's).
        features: feature builders (policy inputs, from the ``AgentInput`` only) -> their parameters (``{}``:
            the builder's defaults).
        targets: target builders (supervision, from the scene) -> their parameters.
        model: cache what this model config reads instead of ``features`` and ``targets`` (``configs/model/<name>``
            or a yaml path, e.g. ``default``: its BEV grid, image size and route target), except the entries
            that read the training run's own tokenizer, which the run encodes itself; ``None``: the builders of
            ``features`` and ``targets``. Resolved by the command (``irl-vla cache``).
        max_scenes: cache only the first N scenes; ``None``: all.
        chunk_size: consecutive scenes per task (mostly one log, so each worker decodes a log once).
        executor: where tasks run (``backend``, ``workers``, ``ray_address``; they follow ``run.*``).
        progress: show a progress bar (follows ``run.progress``).
    """

    split: str = "synth_navtrain"
    cache_dir: str = "data/features/synth_navtrain"
    tokenizer: str | None = None
    features: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_FEATURES))
    targets: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    model: str | None = None
    chunk_size: int = 16
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.chunk_size < 1:
            raise ValueError(f"CacheConfig.chunk_size: expected >= 1, got {self.chunk_size}")
        if not self.features and not self.targets:
            raise ValueError("CacheConfig: no feature or target builders to cache")


@dataclass
class CacheReport:
    """What a cache build did, in scenes and builder entries."""

    cache_dir: Path
    scenes: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in LoadStatus})
    repaired: list[str] = field(default_factory=list)
    tokenizer: Path | None = None

    def summary(self) -> str:
        """One line: scenes and entries by status."""
        parts = ", ".join(f"{n} {s}" for s, n in self.counts.items())
        return f"{self.scenes} scenes in {self.cache_dir}: entries {parts}"


def resolve_tokenizer(cfg: CacheConfig, source: SourceFactory, tokens: list[str]) -> Path | None:
    """The tokenizer file of the text builders (``None`` if none is configured).

    ``cfg.tokenizer`` if set (e.g. the training split's, for a test split), else ``<cache_dir>/tokenizer.json``,
    built from the navigation instructions of ``tokens`` when it does not exist yet (a resumed build reuses it).
    """
    if not any(name in {**cfg.features, **cfg.targets} for name in TOKENIZED):
        return None
    if cfg.tokenizer:
        return Path(cfg.tokenizer)
    path = Path(cfg.cache_dir) / TOKENIZER_FILE
    if not path.is_file():
        save_tokenizer(split_tokenizer(source(), tokens), path)
    return path


def split_tokenizer(scenes: SceneSource, tokens: list[str]) -> Tokenizer:
    """A tokenizer built from the navigation instructions and scene descriptions of the scenes ``tokens``."""

    def texts() -> Iterator[str]:
        for token in tokens:
            scene = scenes.get_scene(token)
            yield navigation_instruction(scene.get_agent_input())
            yield scene.current_frame.scene_description

    return build_tokenizer(texts())


def dataset_for(cfg: CacheConfig, source: SourceFactory, tokens: list[str], tokenizer: Path | None) -> FeatureDataset:
    """The dataset a cache config describes (the text builders pointed at ``tokenizer``)."""
    features = {k: dict(v or {}) for k, v in cfg.features.items()}
    targets = {k: dict(v or {}) for k, v in cfg.targets.items()}
    for group in (features, targets):
        for name in TOKENIZED:
            if name in group and tokenizer is not None:
                group[name]["tokenizer"] = str(tokenizer)
    return FeatureDataset(
        source,
        build_feature_builders(features, "cache.features"),
        build_target_builders(targets, "cache.targets"),
        tokens=tokens,
        cache_dir=cfg.cache_dir,
        repair_corrupt=True,
    )


def _same(dataset: FeatureDataset) -> FeatureDataset:
    return dataset


def cache_chunk(dataset: FeatureDataset, tokens: tuple[str, ...]) -> dict[str, Any]:
    """Fill the cache entries of ``tokens``; returns entry counts by status and the repaired files."""
    counts = {s.value: 0 for s in LoadStatus}
    repaired: list[str] = []
    for token in tokens:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, status = dataset.load(token)
        for name, state in status.items():
            counts[state.value] += 1
            if state is LoadStatus.REPAIRED:
                repaired.append(
                    str(dataset.cache.path(token, name, dataset.fingerprints[name])) if dataset.cache else name
                )
        for w in caught:
            warnings.warn(w.message, stacklevel=2)
    return {"counts": counts, "repaired": repaired, "scenes": len(tokens)}


def run_cache(cfg: CacheConfig, source: SourceFactory) -> CacheReport:
    """Build (or complete) the feature cache of ``cfg``'s split.

    Raises:
        ValueError: when the builders cannot handle the first scene (a bad setting).
        TaskError: naming every chunk whose scenes failed, after the others are done.
    """
    if cfg.model is not None:
        raise ValueError(
            f"cache.model={cfg.model}: a model is resolved to its builders by the command (irl-vla cache); "
            "give run_cache the features and targets instead"
        )
    tokens = list(source().tokens)
    if cfg.max_scenes is not None:
        tokens = tokens[: cfg.max_scenes]
    tokenizer = resolve_tokenizer(cfg, source, tokens)
    dataset = dataset_for(cfg, source, tokens, tokenizer)
    report = CacheReport(Path(cfg.cache_dir), tokenizer=tokenizer)

    def record(_: str, result: dict[str, Any]) -> None:
        report.scenes += result["scenes"]
        for key, n in result["counts"].items():
            report.counts[key] += n
        report.repaired.extend(result["repaired"])
        bar(report.scenes, len(tokens))

    with ProgressBar(f"cache {cfg.split}", cfg.progress, unit="scene") as bar:
        bar(0, len(tokens))
        if tokens:  # a bad setting fails here, once, with its own error (not once per task)
            record("first", cache_chunk(dataset, (tokens[0],)))
        rest = tokens[1:]
        chunks = [tuple(rest[i : i + cfg.chunk_size]) for i in range(0, len(rest), cfg.chunk_size)]
        tasks = [Task(f"{chunk[0]}..{chunk[-1]}", (chunk,)) for chunk in chunks]
        outcome = run_tasks(cache_chunk, tasks, cfg.executor, setup=partial(_same, dataset), on_result=record)
    outcome.raise_failures(f"feature cache of {cfg.split}")
    return report
