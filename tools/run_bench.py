"""``irl-vla bench [suite] [overrides]``: run a benchmark suite and print one JSON line per measurement."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from irl_vla.benchmarks import core_bench, data_bench, policy_bench, ppo_bench, reward_bench, scorer_bench
from irl_vla.benchmarks.timing import emit, machine_info
from irl_vla.common.command import Command, register_group
from irl_vla.common.config import to_dataclass
from irl_vla.common.io import atomic_open
from irl_vla.data.split import embedded_sources
from irl_vla.viz import viewer_bench
from sim_bridges.embedded import closed_loop_bench, world_bench
from sim_bridges.navsim import navsim_bench
from tools.sources import embedded_renderer, navsim_renderer


def _data_bench(cfg: data_bench.DataBenchConfig, repeats: int) -> Iterator[dict[str, Any]]:
    """The data suite on the embedded split ``cfg.split_dir``, sensors drawn by the embedded renderer."""
    return data_bench.run(cfg, repeats, embedded_sources(cfg.split_dir, embedded_renderer()).split)


def _viewer_bench(cfg: viewer_bench.ViewerBenchConfig, repeats: int) -> Iterator[dict[str, Any]]:
    """The viewer suite on scenes of the embedded split ``cfg.split_dir``, cameras drawn by the embedded renderer."""
    return viewer_bench.run(cfg, repeats, embedded_sources(cfg.split_dir, embedded_renderer()).split)


def _reward_bench(cfg: reward_bench.RewardBenchConfig, repeats: int) -> Iterator[dict[str, Any]]:
    """The reward suite on the embedded split ``cfg.split_dir``, sensors drawn by the embedded renderer."""
    return reward_bench.run(cfg, repeats, embedded_sources(cfg.split_dir, embedded_renderer()).split)


#: suite -> (config dataclass, runner)
SUITES: dict[str, tuple[type, Callable[[Any, int], Iterator[dict[str, Any]]]]] = {
    "core": (core_bench.CoreBenchConfig, core_bench.run),
    "world": (world_bench.WorldBenchConfig, world_bench.run),
    "scorer": (scorer_bench.ScorerBenchConfig, scorer_bench.run),
    "navsim": (navsim_bench.NavsimBenchConfig, partial(navsim_bench.run, renderer=navsim_renderer())),
    "data": (data_bench.DataBenchConfig, _data_bench),
    "policy": (policy_bench.PolicyBenchConfig, policy_bench.run),
    "reward": (reward_bench.RewardBenchConfig, _reward_bench),
    "viewer": (viewer_bench.ViewerBenchConfig, _viewer_bench),
    "ppo": (ppo_bench.PPOBenchConfig, ppo_bench.run),
    "closed_loop": (closed_loop_bench.ClosedLoopBenchConfig, closed_loop_bench.run),
}


register_group("bench", {f"{suite}_schema": schema for suite, (schema, _) in SUITES.items()})


@dataclass
class BenchConfig:
    """Settings of ``irl-vla bench`` (top-level keys; the suite's sizes are ``bench.<key>=...``).

    Attributes:
        repeats: timed runs per measurement (the median is reported).
        threads: torch and BLAS threads (1 = one core, as the targets are stated).
        output: also append the JSON lines to this file (the run directory always holds ``bench.jsonl``).
    """

    repeats: int = 5
    threads: int = 1
    output: str | None = None

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"bench.repeats: expected >= 1, got {self.repeats}")
        if self.threads < 1:
            raise ValueError(f"bench.threads: expected >= 1, got {self.threads}")


COMMAND = Command(
    "bench",
    BenchConfig,
    summary=f"Run a benchmark suite ({', '.join(SUITES)}; `irl-vla bench <suite>` is short for bench=<suite>) and "
    "print one JSON line per measurement, also kept in the run directory's bench.jsonl.",
)


def rewrite_args(args: list[str]) -> list[str]:
    """Turn a leading bare suite name (``irl-vla bench core``) into the override ``bench=core``."""
    if args and "=" not in args[0] and not args[0].startswith("-"):
        return [f"bench={args[0]}", *args[1:]]
    return args


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="bench")
def main(cfg: DictConfig) -> None:
    """Run the suite chosen by the ``bench`` group."""
    suite = hydra.core.hydra_config.HydraConfig.get().runtime.choices["bench"]
    if suite not in SUITES:
        raise ValueError(f"bench: unknown suite {suite!r}; available: {sorted(SUITES)}")
    schema, runner = SUITES[suite]
    suite_cfg = to_dataclass(OmegaConf.to_container(cfg.bench, resolve=True), schema, where=f"bench/{suite}")
    config = COMMAND.load(cfg)
    torch.set_num_threads(config.threads)
    run = COMMAND.start(cfg, config)
    records = [machine_info()]
    emit(records[0])
    for rec in runner(suite_cfg, config.repeats):
        emit(rec)
        records.append(rec)
    lines = [json.dumps(r) + "\n" for r in records]
    with atomic_open(run.dir / "bench.jsonl") as f:
        f.writelines(lines)
    if config.output:
        out = Path(config.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as f:
            f.writelines(lines)
        print(f"appended {len(records)} records to {out}")
    run.finish([run.dir / "bench.jsonl"])
