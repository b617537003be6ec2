"""What the network benchmarks (``policy``, ``ppo``) share: the device, a ready VLA, one timed record.

A timed network call is synchronised on CUDA (its kernels finish inside the timing) and measured in wall time and,
on CPU, in thread CPU time, which a busy shared machine inflates less; both come from the same runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from irl_vla.benchmarks.timing import interleaved_medians, record
from irl_vla.models.vla.anchors import compute_anchors
from irl_vla.models.vla.config import VLAConfig, load_model_config
from irl_vla.models.vla.model import VLAModel
from irl_vla.models.vla.normalization import compute_normalization
from irl_vla.models.vla.synthetic import synthetic_batch

#: The devices a network benchmark runs on (``auto``: CUDA where there is one).
DEVICES = ("cpu", "cuda", "auto")


def bench_device(name: str) -> torch.device:
    """The device a benchmark's ``device`` setting names (``auto``: CUDA where available, else the CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def ready_policy(
    size: str, samples: int, seed: int
) -> tuple[VLAModel, VLAConfig, dict[str, Tensor], dict[str, Tensor]]:
    """A VLA of ``size`` (seeded weights) with normalisation statistics and anchors from a synthetic batch.

    Args:
        size: ``configs/model/<size>.yaml`` or a yaml path.
        samples: samples of the synthetic batch the statistics and anchors come from (at least 4 per anchor).
        seed: seeds the weights and the batch.

    Returns:
        the model (on the CPU), its config, and the batch's features and targets.
    """
    cfg = load_model_config(size)
    torch.manual_seed(seed)
    model = VLAModel(cfg)
    features, targets = synthetic_batch(cfg, max(samples, 4 * cfg.planner.num_modes), seed)
    model.set_normalization(compute_normalization([{**features, **targets}]))
    model.set_anchors(compute_anchors(targets["trajectory"], cfg.planner.num_modes, seed=seed))
    return model, cfg, features, targets


def synchronised(fn: Callable[[], Any], device: torch.device) -> Callable[[], Any]:
    """``fn`` followed by waiting for ``device``'s queued kernels (CUDA), so that a timing includes them."""
    if device.type != "cuda":
        return fn

    def call() -> Any:
        out = fn()
        torch.cuda.synchronize(device)
        return out

    return call


def timed_record(
    suite: str,
    name: str,
    fn: Callable[[], Any],
    on: torch.device,
    *,
    items: int,
    unit: str,
    repeats: int,
    warmup: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """``record`` of ``fn`` on device ``on``: median wall time and, on CPU, ``cpu_median_ms`` (median thread CPU time).

    Args:
        suite: the benchmark suite.
        name: the record's name.
        fn: one call of what is measured (synchronised here on CUDA).
        on: the device it runs on (``extra`` usually names it as ``device``).
        items: what one call processes, for the throughput ``<unit>_per_s``.
        unit: what an item is.
        repeats: timed calls.
        warmup: untimed calls first.
        extra: more fields of the record.
    """
    wall, cpu = interleaved_medians({name: synchronised(fn, on)}, repeats, warmup)[name]
    rec = record(suite, name, items=items, seconds=wall, unit=unit, **extra)
    if on.type == "cpu":
        rec["cpu_median_ms"] = round(1000 * cpu, 2)
    return rec
