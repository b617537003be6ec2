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
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from irl_vla.benchmarks.model_bench import DEVICES, bench_device, ready_policy, timed_record
from irl_vla.common.config import require_at_least
from irl_vla.models.vla.synthetic import synthetic_batch
from irl_vla.training.trainer import PRECISIONS, autocast_context, autocast_dtype

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
        precision: of the training step, as the trainer's ``train.precision``: ``auto`` (bf16 autocast on a CUDA
            device that supports it, else fp32), ``fp32`` or ``bf16`` (any device with native bf16).
    """

    sizes: list[str] = field(default_factory=lambda: ["tiny", "default"])
    plan_batch: int = 1
    train_batch: int = 16
    device: str = "cpu"
    target_plan_ms: float = 50.0
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self) -> None:
        require_at_least(self, ("plan_batch", "train_batch"), 1)
        if self.precision not in PRECISIONS:
            raise ValueError(f"PolicyBenchConfig.precision: expected one of {PRECISIONS}, got {self.precision!r}")
        if not self.sizes:
            raise ValueError("PolicyBenchConfig.sizes: at least one size")
        if self.device not in DEVICES:
            raise ValueError(f"PolicyBenchConfig.device: expected cpu, cuda or auto, got {self.device!r}")


def _on(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kB


def run(cfg: PolicyBenchConfig, repeats: int) -> Iterator[dict[str, Any]]:
    """Yield the records of every size."""
    device = bench_device(cfg.device)
    for size in cfg.sizes:
        yield from _run_size(size, cfg, repeats, device)


def _run_size(size: str, cfg: PolicyBenchConfig, repeats: int, device: torch.device) -> Iterator[dict[str, Any]]:
    model, mcfg, _, _ = ready_policy(size, cfg.train_batch, cfg.seed)
    model.to(device)
    counts = model.parameter_counts()
    yield {"suite": SUITE, "name": f"parameters_{size}", **counts}
    extra = {"size": size, "device": str(device)}

    plan_features = _on(synthetic_batch(mcfg, cfg.plan_batch, cfg.seed + 1)[0], device)
    model.eval()

    def plan() -> None:
        with torch.inference_mode():
            model(plan_features)

    def sample_chain() -> None:
        with torch.inference_mode():
            model(plan_features, stochastic=True)

    for name, fn in (("plan", plan), ("sample_chain", sample_chain)):
        rec = timed_record(
            SUITE, f"{name}_{size}", fn, device, items=cfg.plan_batch, unit="plans", repeats=repeats, warmup=2, **extra
        )
        rec["median_ms"] = round(1000 * rec["median_s"], 2)
        if name == "plan":
            rec["target_ms"] = cfg.target_plan_ms
        yield rec

    features, targets = (_on(b, device) for b in synthetic_batch(mcfg, cfg.train_batch, cfg.seed + 2))
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    dtype = autocast_dtype(cfg.precision, device)

    def train_step() -> None:
        with autocast_context(device, dtype):
            losses = model.compute_loss(model(features, targets), targets)
        optimiser.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimiser.step()

    name = f"train_step_{size}"
    rec = timed_record(SUITE, name, train_step, device, items=cfg.train_batch, unit="samples", repeats=repeats, **extra)
    rec["precision"] = "fp32" if dtype is None else "bf16"
    yield rec
    yield {"suite": SUITE, "name": f"peak_memory_{size}", "peak_mb": round(_peak_memory_mb(device), 1), **extra}
