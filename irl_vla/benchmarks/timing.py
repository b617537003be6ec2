"""Timing helpers: medians over repeats, one JSON line per result."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


def median_seconds(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time [s] of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, tuple[float, float]]:
    """Median wall and thread-CPU seconds of each function, timed in turn round by round.

    ``warmup`` untimed rounds come first. Timing the functions alternately exposes them to the same load, so their
    ratio is steadier on a busy machine than that of medians taken one function after the other; the thread CPU time
    is less inflated by the load.
    """
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            w, c = time.perf_counter(), time.thread_time()
            fn()
            if round_ >= warmup:
                wall[name].append(time.perf_counter() - w)
                cpu[name].append(time.thread_time() - c)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in fns}


def record(suite: str, name: str, *, items: int, seconds: float, unit: str, **extra: Any) -> dict[str, Any]:
    """A benchmark result: ``items`` processed in a median of ``seconds`` [s] -> throughput [unit/s]."""
    return {
        "suite": suite,
        "name": name,
        "items": items,
        "median_s": round(seconds, 6),
        f"{unit}_per_s": round(items / seconds, 2) if seconds > 0 else float("inf"),
        **extra,
    }


def machine_info() -> dict[str, Any]:
    """Python, platform and library versions, printed once per bench run."""
    import numpy
    import shapely

    info: dict[str, Any] = {
        "suite": "machine",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "numpy": numpy.__version__,
        "shapely": shapely.__version__,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return info


def emit(rec: dict[str, Any], stream: TextIO | None = None) -> None:
    """Print one record as a JSON line (to stdout unless ``stream`` is given)."""
    stream = sys.stdout if stream is None else stream
    stream.write(json.dumps(rec) + "\n")
    stream.flush()
