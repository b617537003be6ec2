"""The metric cache: built once, reused, and rebuilt when the log a cache came from has changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from irl_vla.scoring.metric_cache import MetricCacheStore, build_metric_cache
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split


def test_a_regenerated_log_rebuilds_its_caches_and_only_those(tmp_path: Path) -> None:
    spec = SplitSpec(logs_per_family=1, frame_interval=6)

    def generate(seed: int) -> list[str]:
        cfg = GenerateConfig(
            data_root=str(tmp_path), families=["lead_vehicle", "merge"], num_log_frames=18, workers=1, progress=False
        )
        cfg.base_seed = seed
        return generate_split("synth_navtest", spec, cfg).tokens

    tokens = generate(0)
    split, root = tmp_path / "synth_navtest", tmp_path / "cache"
    keys = [(t, False) for t in tokens]
    build_metric_cache(split, root, keys)
    before = {t: (root / f"{t}.npz").stat().st_mtime_ns for t in tokens}
    first_state = MetricCacheStore(root).load(tokens[0]).initial_state
    build_metric_cache(split, root, keys)  # nothing changed: nothing rebuilt
    assert {t: (root / f"{t}.npz").stat().st_mtime_ns for t in tokens} == before

    victim = sorted((split / "logs").iterdir())[0]
    victim.unlink()
    assert generate(1) == tokens  # same log names, so the same tokens, but another drive
    build_metric_cache(split, root, keys)
    after = {t: (root / f"{t}.npz").stat().st_mtime_ns for t in tokens}
    changed = {t for t in tokens if after[t] != before[t]}
    assert changed and tokens[0] in changed and changed != set(tokens)  # the other log's caches were kept
    assert not np.array_equal(MetricCacheStore(root).load(tokens[0]).initial_state, first_state)
