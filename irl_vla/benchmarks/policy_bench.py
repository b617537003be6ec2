"""``irl-vla bench policy``: the VLA policy's inference latency, training throughput and memory.

For each model size: parameters per part; one planning step at ``plan_batch`` (deterministic denoising, eval
mode, no gradients: what an agent runs each 0.5 s) and a sampled chain with its log-probability (what RL runs);
one imitation training step at ``train_batch`` (forward with every auxiliary head, loss, backward, AdamW) in
samples/s; the process's peak resident memory (CPU) or peak allocated memory (CUDA). Inputs are synthetic
batches of the configured shapes (``irl_vla.models.vla.synthetic``): the cost of the network does not depend on
pixel values, and no split is needed. Medians of wall time; on CPU also the median thread CPU time, which a
busy shared machine inflates less.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from irl_vla.benchmarks.timing import median_seconds, record
from irl_vla.common.config import require_at_least
from irl_vla.models.vla.anchors import compute_anchors
from irl_vla.models.vla.config import load_model_config
from irl_vla.models.vla.model import VLAModel
from irl_vla.models.vla.normalization import compute_normalization
from irl_vla.models.vla.synthetic import synthetic_batch

SUITE = "policy"


@dataclass
class PolicyBenchConfig:
    """Sizes of the policy benchmark (``configs/bench/policy.yaml``).

    Attributes:
        sizes: model sizes (``configs/model/<size>.yaml``) or yaml paths.
        plan_batch: scenes per planning call.
        train_batch: samples per training step.
        device: ``cpu``, ``cuda`` or ``auto``.
        target_plan_ms: latency target of one planning step at ``plan_batch`` [ms] (reported beside it).
        seed: seed of the synthetic batches and weights.
    """

    sizes: list[str] = field(default_factory=lambda: ["tiny", "default"])
    plan_batch: int = 1
    train_batch: int = 16
    device: str = "cpu"
    target_plan_ms: float = 50.0
    seed: int = 0

    def __post_init__(self) -> None:
        require_at_least(self, ("plan_batch", "train_batch"), 1)
        if not self.sizes:
            raise ValueError("PolicyBenchConfig.sizes: at least one size")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"PolicyBenchConfig.device: expected cpu, cuda or auto, got {self.device!r}")


def _median_cpu_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU time of this thread [ms] over ``repeats`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return 1000 * statistics.median(times)


def _on(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kB


def run(cfg: PolicyBenchConfig, repeats: int) -> Iterator[dict[str, Any]]:
    """Yield the records of every size."""
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    for size in cfg.sizes:
        yield from _run_size(size, cfg, repeats, device)


def _run_size(size: str, cfg: PolicyBenchConfig, repeats: int, device: torch.device) -> Iterator[dict[str, Any]]:
    mcfg = load_model_config(size)
    torch.manual_seed(cfg.seed)
    model = VLAModel(mcfg)
    stats_batch = synthetic_batch(mcfg, max(4 * mcfg.planner.num_modes, cfg.train_batch), cfg.seed)
    model.set_normalization(compute_normalization([{**stats_batch[0], **stats_batch[1]}]))
    model.set_anchors(compute_anchors(stats_batch[1]["trajectory"], mcfg.planner.num_modes, seed=cfg.seed))
    model.to(device)
    counts = model.parameter_counts()
    yield {"suite": SUITE, "name": f"parameters_{size}", **counts}
    extra = {"size": size, "device": str(device)}

    plan_features = _on(synthetic_batch(mcfg, cfg.plan_batch, cfg.seed + 1)[0], device)
    model.eval()

    def plan() -> None:
        with torch.inference_mode():
            model(plan_features)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def sample_chain() -> None:
        with torch.inference_mode():
            model(plan_features, stochastic=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for name, fn in (("plan", plan), ("sample_chain", sample_chain)):
        seconds, _ = median_seconds(fn, repeats=repeats, warmup=2)
        rec = record(SUITE, f"{name}_{size}", items=cfg.plan_batch, seconds=seconds, unit="plans", **extra)
        rec["median_ms"] = round(1000 * seconds, 2)
        if device.type == "cpu":
            rec["cpu_median_ms"] = round(_median_cpu_ms(fn, repeats), 2)
        if name == "plan":
            rec["target_ms"] = cfg.target_plan_ms
        yield rec

    features, targets = (_on(b, device) for b in synthetic_batch(mcfg, cfg.train_batch, cfg.seed + 2))
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()

    def train_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            losses = model.compute_loss(model(features, targets), targets)
        optimiser.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimiser.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    seconds, _ = median_seconds(train_step, repeats=repeats, warmup=1)
    rec = record(SUITE, f"train_step_{size}", items=cfg.train_batch, seconds=seconds, unit="samples", **extra)
    rec["precision"] = "bf16" if use_bf16 else "fp32"
    if device.type == "cpu":
        rec["cpu_median_ms"] = round(_median_cpu_ms(train_step, repeats), 2)
    yield rec
    yield {"suite": SUITE, "name": f"peak_memory_{size}", "peak_mb": round(_peak_memory_mb(device), 1), **extra}
