"""``irl-vla cache [overrides]``: build (or complete) the feature cache of a split, with a progress bar."""

from __future__ import annotations

import dataclasses

import hydra
from omegaconf import DictConfig

from irl_vla.common.command import Command
from irl_vla.data.features.caching import DEFAULT_FEATURES, DEFAULT_TARGETS, CacheConfig, run_cache
from irl_vla.data.features.cameras import DEFAULT_CAMERAS
from irl_vla.training.policy import cached_builder_params
from tools.sources import config_sources

COMMAND = Command(
    "cache",
    CacheConfig,
    key="cache",
    split_key="split",
    summary="Build (or complete) the feature cache of a split: every configured feature and target builder's "
    "tensors per scene, as safetensors, with a progress bar; a rerun builds only what is missing or stale.",
)


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="cache")
def main(cfg: DictConfig) -> None:
    """Cache every configured builder's outputs of every scene; print what was done and where."""
    config = COMMAND.load(cfg)
    if config.model is not None:
        if config.features != DEFAULT_FEATURES or config.targets != DEFAULT_TARGETS:
            raise ValueError("cache.features and cache.targets are set by cache.model; give one or the other")
        features, targets = cached_builder_params(config.model, DEFAULT_CAMERAS)
        config = dataclasses.replace(config, features=features, targets=targets, model=None)
    run = COMMAND.start(cfg, config)
    sources = config_sources(config)
    report = run_cache(config, sources.split)
    print(report.summary())
    for path in report.repaired:
        print(f"rebuilt corrupt entry {path}")
    if report.tokenizer is not None:
        print(f"tokenizer {report.tokenizer}")
    run.finish([report.cache_dir])
