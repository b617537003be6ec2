"""The shared trainer of every stage: one loop for a policy (or any network with a loss) over a dataset.

Read top to bottom:

1. **Settings** (``TrainerConfig``, ``OptimizerConfig``): mirrored by the trainer keys of ``configs/train/*.yaml``.
2. **Processes**: run plainly, it is one process; under ``torchrun --nproc_per_node=N`` it joins the process
   group (gloo on CPU, NCCL on GPU), wraps the network in DDP, gives each process its share of every epoch
   (``ResumableSampler``, a ``DistributedSampler``), and only rank 0 logs, validates and writes checkpoints.
3. **Optimisation**: AdamW (no weight decay on biases and norms), linear warm-up then cosine decay to
   ``min_lr_ratio`` of the rate, gradient clipping, bf16 autocast on CUDA devices that support it (on CPU fp32,
   unless ``precision: bf16`` or ``bf16_if_native`` asks for bf16 on a CPU that computes it natively).
4. **Determinism and resume**: each step seeds the global torch RNG and the network's noise generator from
   (seed, rank, step), and the data order of an epoch from (seed, epoch); a checkpoint holds the weights, the
   optimiser and scheduler states and the step, so a run killed after a checkpoint and started again with the
   same settings continues where the checkpoint left off and ends with the weights an uninterrupted run ends with.
5. **Guards**: a non-finite loss or gradient norm stops training before the weights change, with a message naming
   the step and the last good checkpoint (which is kept as it is).
6. **Outputs** (``output_dir``): ``checkpoints/step_<N>/`` every ``checkpoint_every`` steps and at the end (the
   newest ``keep_checkpoints`` kept), TensorBoard scalars in ``tensorboard/`` (``train/*`` and ``val/*``), the same
   scalars as JSON lines in ``metrics.jsonl``, and a progress bar with the loss and samples/s.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from irl_vla.common.checkpoint import (
    Checkpoint,
    ResumeState,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from irl_vla.common.config import require_at_least
from irl_vla.common.io import atomic_open
from irl_vla.data.features.dataset import Batch, collate
from irl_vla.training.policy import CHECKPOINTS_DIR, STEP_PREFIX, checkpoint_dirs

TENSORBOARD_DIR = "tensorboard"
METRICS_FILE = "metrics.jsonl"
PRECISIONS = ("auto", "fp32", "bf16", "bf16_if_native")


# ---------------------------------------------------------------------------------------------- 1. settings
@dataclass
class OptimizerConfig:
    """AdamW and its schedule.

    Attributes:
        lr: peak learning rate.
        weight_decay: decoupled weight decay of weight matrices (biases and norms: none).
        betas: AdamW's moment coefficients.
        warmup_steps: steps of linear warm-up from ``lr / warmup_steps`` to ``lr``.
        min_lr_ratio: the cosine decay ends at ``lr * min_lr_ratio`` at the last step.
        grad_clip: largest gradient norm (0: no clipping).
    """

    lr: float = 3e-4
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.weight_decay < 0 or self.grad_clip < 0 or self.warmup_steps < 0:
            raise ValueError(
                f"OptimizerConfig: expected lr > 0, weight_decay, grad_clip, warmup_steps >= 0; got lr {self.lr}, "
                f"weight_decay {self.weight_decay}, grad_clip {self.grad_clip}, warmup_steps {self.warmup_steps}"
            )
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"OptimizerConfig.min_lr_ratio: expected in [0, 1], got {self.min_lr_ratio}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"OptimizerConfig.betas: expected two values in [0, 1), got {self.betas}")


@dataclass
class TrainerConfig:
    """What the trainer needs from a stage's config (``configs/train/<stage>.yaml``).

    Attributes:
        batch_size: samples per step and process (the global batch is ``batch_size * world_size``).
        max_steps: optimiser steps of the run.
        seed: seeds the initial weights, the data order and every step's randomness.
        optimizer: AdamW and its schedule.
        precision: ``auto`` (bf16 autocast on a CUDA device that supports it, else fp32), ``fp32``, ``bf16``
            (bf16 autocast on any device with native bf16, a CPU with AVX512-BF16 or AMX included; refused
            elsewhere) or ``bf16_if_native`` (bf16 where the device has it natively, CPU included, else fp32).
        device: ``auto`` (the process's CUDA device if there is one, else the CPU), ``cpu`` or ``cuda``.
        threads: torch CPU threads per process (``None``: torch's default; 1 on a machine shared with other
            jobs, where competing threads slow small networks down many times).
        num_workers: ``DataLoader`` worker processes per training process.
        checkpoint_every: steps between checkpoints (one is always written at the end).
        keep_checkpoints: newest checkpoints kept.
        log_every: steps between logged scalars.
        val_every: steps between validations (0: only at the end; validation needs a held-out split).
        output_dir: the run directory.
        resume: continue from the newest checkpoint of ``output_dir`` (same settings) if there is one.
        progress: show the progress bar.
    """

    batch_size: int = 16
    max_steps: int = 2000
    seed: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    precision: str = "auto"
    device: str = "auto"
    threads: int | None = None
    num_workers: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    val_every: int = 0
    output_dir: str = "outputs/train"
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        require_at_least(self, ("batch_size", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every"), 1)
        require_at_least(self, ("num_workers", "val_every"), 0)
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"TrainerConfig.threads: expected >= 1 or null, got {self.threads}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainerConfig.precision: {self.precision!r} is not one of {list(PRECISIONS)}")
        if self.device != "auto" and self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"TrainerConfig.device: expected auto, cpu or cuda[:<index>], got {self.device!r}")

    def record(self) -> dict[str, Any]:
        """The settings that change the trained weights (stored in checkpoints, compared on resume)."""
        return {
            "batch_size": self.batch_size,
            "max_steps": self.max_steps,
            "seed": self.seed,
            "precision": self.precision,
            "optimizer": {
                "lr": self.optimizer.lr,
                "weight_decay": self.optimizer.weight_decay,
                "betas": list(self.optimizer.betas),
                "warmup_steps": self.optimizer.warmup_steps,
                "min_lr_ratio": self.optimizer.min_lr_ratio,
                "grad_clip": self.optimizer.grad_clip,
            },
        }


class NonFiniteLossError(ValueError):
    """Training stopped: the loss or the gradient norm of a step was NaN or infinite."""


# ---------------------------------------------------------------------------------------------- 2. processes
@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes.

    ``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; a plain run is rank 0 of 1.

    Attributes:
        rank: this process's rank.
        world_size: processes in all.
        local_rank: rank on this machine (its CUDA device).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: logs, validates, writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every process."""
        if self.distributed:
            torch_dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` in every process (statistics, anchors: in-memory, between our own processes)."""
        if not self.distributed:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_finite(self, value: Tensor) -> bool:
        """Whether ``value`` is finite in every process (so all stop together)."""
        flag = torch.isfinite(value.detach()).all().to(torch.float32).reshape(1)
        if self.distributed:
            torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MIN)
        return bool(flag.item())


def resolve_device(setting: str) -> torch.device:
    """The device of ``TrainerConfig.device`` for this process (its ``LOCAL_RANK``'s CUDA device under torchrun).

    Raises:
        ValueError: for ``cuda`` without a CUDA device.
    """
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if setting == "auto":
        return torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    if setting.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"train.device {setting}: no CUDA device is available")
        return torch.device(setting if ":" in setting else f"cuda:{local}")
    return torch.device("cpu")


def init_processes(device: torch.device, threads: int | None = None) -> Processes:
    """Join the process group when started by ``torchrun`` with more than one process (else: one process).

    ``threads`` sets torch's CPU threads of this process (``None``: unchanged).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Processes()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not torch_dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world_size, local)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively.

    True for a CUDA device with bf16 support, and for a CPU with bf16 dot-product instructions (AVX512-BF16 or AMX,
    by the flags of ``/proc/cpuinfo``), which oneDNN uses for matrix products and convolutions. oneDNN's own check
    also accepts CPUs that only emulate bf16 (AVX-512 without BF16), where it is slower than fp32; this one does not.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(_cpu_flags() & CPU_BF16_FLAGS)
    return False


#: ``/proc/cpuinfo`` flags of x86 instructions that compute bf16 dot products natively.
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def resolved_precision(precision: str, device: torch.device) -> str:
    """What ``precision`` computes in on ``device``: ``bf16`` or ``fp32`` (:func:`autocast_dtype`)."""
    return "fp32" if autocast_dtype(precision, device) is None else "bf16"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (``None``: fp32).

    ``auto`` is bf16 on a CUDA device that supports it and fp32 elsewhere; ``bf16`` is bf16 on any device that
    computes it natively (:func:`native_bf16`), a CPU with AVX512-BF16 or AMX included; ``bf16_if_native`` is
    ``bf16`` where the device computes it natively and fp32 elsewhere (the stage-1 recipe's setting).

    Raises:
        ValueError: for ``bf16`` on a device without native bf16.
    """
    if precision == "bf16":
        if not native_bf16(device):
            raise ValueError(
                f"train.precision bf16 needs a device that computes bf16 natively (a CUDA device with bf16, or a "
                f"CPU with AVX512-BF16 or AMX); the device is {device}"
            )
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and native_bf16(device):
        return torch.bfloat16
    if precision == "bf16_if_native" and native_bf16(device):
        return torch.bfloat16
    return None


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[object]:
    """Autocast to ``dtype`` on ``device`` (an :func:`autocast_dtype` result; ``None``: no autocast, fp32)."""
    return torch.autocast(device.type, dtype) if dtype is not None else nullcontext()


# ---------------------------------------------------------------------------------------------- 3. optimisation
def lr_factor(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Multiplier of the peak rate at ``step`` (0-based): linear warm-up, then cosine decay to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(
    model: nn.Module, cfg: OptimizerConfig, total_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters (weight decay on matrices only) and its warm-up + cosine schedule."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]))
    schedule = partial(lr_factor, warmup=cfg.warmup_steps, total=total_steps, min_ratio=cfg.min_lr_ratio)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


# ---------------------------------------------------------------------------------------------- 4. data order
class ResumableSampler(DistributedSampler):
    """A ``DistributedSampler`` (this process's share of a seeded shuffle per epoch) that can start mid-epoch.

    With ``weights`` (one non-negative weight per sample) an epoch is instead as many draws with replacement, sample
    ``i`` drawn with probability ``weights[i] / weights.sum()``, from a generator seeded with (seed, epoch); the
    processes take every ``world_size``-th draw, so they share one seeded order as with the shuffle.
    """

    def __init__(self, dataset: Dataset[Any], processes: Processes, seed: int, weights: Tensor | None = None) -> None:
        super().__init__(dataset, processes.world_size, processes.rank, shuffle=True, seed=seed, drop_last=False)
        self.skip = 0
        self.weights = None
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float64)
            size = len(dataset)  # type: ignore[arg-type]
            if weights.shape != (size,) or not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
                raise ValueError(f"sampling weights: expected {size} finite, non-negative weights, got {weights.shape}")
            if float(weights.sum()) <= 0.0:
                raise ValueError("sampling weights: every weight is 0")
            self.weights = weights

    def _epoch_order(self) -> list[int]:
        if self.weights is None:
            return list(super().__iter__())
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.total_size, replacement=True, generator=generator)
        return drawn[self.rank : self.total_size : self.num_replicas].tolist()

    def start(self, epoch: int, skip: int) -> None:
        """Serve ``epoch``'s order from its ``skip``-th sample on."""
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return iter(self._epoch_order()[self.skip :])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def find_resume(cfg: TrainerConfig, record: Mapping[str, Any]) -> Checkpoint | None:
    """The newest checkpoint of ``cfg.output_dir`` to continue from (``None``: start afresh).

    Raises:
        ConfigMismatchError: naming every key where ``record`` differs from the checkpoint's config.
        FileExistsError: when the run directory has checkpoints but ``resume`` is off.
    """
    found = checkpoint_dirs(cfg.output_dir)
    if not found:
        return None
    if not cfg.resume:
        raise FileExistsError(
            f"{cfg.output_dir} already holds checkpoints ({found[-1].name}); set resume=true to continue that run, "
            "or choose another output_dir"
        )
    return load_checkpoint(found[-1], config=record)


# ---------------------------------------------------------------------------------------------- 5. the trainer
class Trainer:
    """Trains ``model`` on ``dataset`` (see the module docstring).

    The model is called as ``model(features, targets, generator=g)`` in training mode and its loss as
    ``model.compute_loss(predictions, targets)``, a dict of terms whose ``loss`` is minimised.

    Args:
        cfg: the settings.
        model: the network, with its normalisation statistics (and anchors) set, on the CPU.
        dataset: samples of ``Sample(token, features, targets)`` (``collate`` batches them).
        record: the resolved config stored in every checkpoint (``find_resume`` compares it).
        normalization: the statistics stored beside the weights.
        artefacts: file name -> bytes stored with every checkpoint (tokenizer, anchors, ...).
        validate: scores the network on held-out data (rank 0), returning named metrics.
        resume_from: the checkpoint to continue from (``find_resume``).
        processes: this process's place (``init_processes``).
        device: where to train.
        find_unused_parameters: DDP checks for parameters without a gradient each step (needed when a model's
            heads may go unused, e.g. loss terms weighted 0).
        sample_weights: one weight per sample of ``dataset``: epochs are weighted draws with replacement
            (``ResumableSampler``); ``None``: a shuffle of the whole dataset per epoch.
    """

    def __init__(
        self,
        cfg: TrainerConfig,
        model: nn.Module,
        dataset: Dataset[Any],
        *,
        record: Mapping[str, Any],
        normalization: Mapping[str, Tensor],
        artefacts: Mapping[str, bytes] | None = None,
        validate: Callable[[nn.Module], dict[str, float]] | None = None,
        resume_from: Checkpoint | None = None,
        processes: Processes | None = None,
        device: torch.device | None = None,
        find_unused_parameters: bool = True,
        sample_weights: Tensor | None = None,
    ) -> None:
        self.cfg = cfg
        self.processes = processes or Processes()
        self.device = device or resolve_device(cfg.device)
        self.autocast = autocast_dtype(cfg.precision, self.device)
        self.model = model.to(self.device)
        self.dataset = dataset
        self.record = dict(record)
        self.normalization = dict(normalization)
        self.artefacts = dict(artefacts or {})
        self.validate = validate
        self.validates = bool(self.processes.broadcast(validate is not None))  # rank 0 validates, all wait
        self.output = Path(cfg.output_dir)
        self.optimizer, self.scheduler = make_optimizer(self.model, cfg.optimizer, cfg.max_steps)
        self.generator = torch.Generator(device=self.device)
        self.step = 0
        self.last_checkpoint: Path | None = None
        if resume_from is not None:
            self._restore(resume_from)
        self.network: nn.Module = self.model
        if self.processes.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=find_unused_parameters
            )
        self.sampler = ResumableSampler(dataset, self.processes, cfg.seed, sample_weights)
        self.steps_per_epoch = len(self.sampler) // cfg.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"train.batch_size {cfg.batch_size} exceeds the {len(self.sampler)} samples each of the "
                f"{self.processes.world_size} processes gets from {len(dataset)} scenes; lower it"
            )
        self.writer: Any = None

    def _restore(self, ck: Checkpoint) -> None:
        """Weights, optimiser, schedule, RNG and step of a checkpoint."""
        if ck.resume is None:
            raise ValueError(f"{ck.path}: has no resume state (it cannot continue a run)")
        self.model.load_state_dict(ck.weights)
        self.optimizer.load_state_dict(ck.resume.optimizer)
        if ck.resume.scheduler is not None:
            self.scheduler.load_state_dict(ck.resume.scheduler)
        restore_rng_state(ck.resume.rng)
        self.step = ck.resume.step
        self.last_checkpoint = ck.path

    # ------------------------------------------------------------------------------------------ the loop
    def fit(self) -> Path:
        """Train to ``max_steps`` (from the resumed step); returns the last checkpoint's directory."""
        cfg, main = self.cfg, self.processes.is_main
        if main:
            self.output.mkdir(parents=True, exist_ok=True)
            self._truncate_metrics()
        if self.step >= cfg.max_steps:
            if main:
                tqdm.write(f"train: {self.output} is complete ({self.step} of {cfg.max_steps} steps)")
            assert self.last_checkpoint is not None
            return self.last_checkpoint
        self.model.train()
        show = main and cfg.progress
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc="train", unit="step", disable=not show)
        window: list[dict[str, float]] = []
        tick = time.perf_counter()
        try:
            while self.step < cfg.max_steps:
                epoch, offset = divmod(self.step, self.steps_per_epoch)
                for batch in self._loader(epoch, offset):
                    scalars = self._train_step(batch)
                    self.step += 1
                    now = time.perf_counter()
                    scalars["samples_per_s"] = cfg.batch_size * self.processes.world_size / max(now - tick, 1e-9)
                    tick = now
                    window.append(scalars)
                    bar.update(1)
                    bar.set_postfix(loss=f"{scalars['loss']:.4f}", samples_s=f"{scalars['samples_per_s']:.1f}")
                    if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                        self._log("train", {k: sum(w[k] for w in window) / len(window) for k in window[0]})
                        window = []
                    if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                        self._save()
                    if self.validates and (
                        (cfg.val_every and self.step % cfg.val_every == 0) or self.step == cfg.max_steps
                    ):
                        self._validate(bar)
                    if self.step >= cfg.max_steps:
                        break
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        assert self.last_checkpoint is not None
        return self.last_checkpoint

    def _loader(self, epoch: int, offset: int) -> DataLoader[Any]:
        """The batches of ``epoch`` from its ``offset``-th step on (full batches only)."""
        self.sampler.start(epoch, offset * self.cfg.batch_size)
        return DataLoader(
            self.dataset,
            batch_size=self.cfg.batch_size,
            sampler=self.sampler,
            drop_last=True,
            collate_fn=collate,
            num_workers=self.cfg.num_workers,
            generator=torch.Generator().manual_seed(self.cfg.seed + epoch),  # never draws from the global RNG
        )

    def _seed_step(self) -> None:
        """Seed this step's randomness from (seed, rank, step): a resumed run draws what an uninterrupted one does."""
        seed = (self.cfg.seed * 1_000_003 + self.processes.rank * 10_007 + self.step) % (2**63)
        torch.manual_seed(seed)
        self.generator.manual_seed(seed + 1)

    def _train_step(self, batch: Batch) -> dict[str, float]:
        """One optimiser step; its scalars (loss terms, gradient norm, learning rate)."""
        self._seed_step()
        features = {k: v.to(self.device, non_blocking=True) for k, v in batch.features.items()}
        targets = {k: v.to(self.device, non_blocking=True) for k, v in batch.targets.items()}
        with autocast_context(self.device, self.autocast):
            predictions = self.network(features, targets, generator=self.generator)
        predictions = {k: v.float() if v.is_floating_point() else v for k, v in predictions.items()}
        terms = self.model.compute_loss(predictions, targets)
        loss = terms["loss"]
        self._require_finite(loss, "loss", terms)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.optimizer.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self._require_finite(grad_norm, "gradient norm", terms)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        return {**{k: float(v.detach()) for k, v in terms.items()}, "grad_norm": float(grad_norm), "lr": lr}

    def _require_finite(self, value: Tensor, what: str, terms: Mapping[str, Tensor]) -> None:
        """Stop (every process) on a non-finite value, naming the step and the last good checkpoint.

        Raises:
            NonFiniteLossError: before the weights change.
        """
        if self.processes.all_finite(value):
            return
        shown = ", ".join(f"{k} {float(v.detach()):.4g}" for k, v in terms.items())
        kept = self.last_checkpoint if self.last_checkpoint is not None else "none was written yet"
        raise NonFiniteLossError(
            f"step {self.step + 1}: the {what} is {float(value.detach())} ({shown}); training stopped before "
            f"changing the weights; the last good checkpoint is {kept}"
        )

    # ------------------------------------------------------------------------------------------ outputs
    def _save(self) -> None:
        """Write this step's checkpoint (rank 0) and drop the oldest beyond ``keep_checkpoints``."""
        path = self.output / CHECKPOINTS_DIR / f"{STEP_PREFIX}{self.step:07d}"
        if self.processes.is_main:
            resume = ResumeState(
                self.step, self.optimizer.state_dict(), self.scheduler.state_dict(), capture_rng_state()
            )
            save_checkpoint(
                path,
                weights=self.model.state_dict(),
                config=self.record,
                normalization=self.normalization,
                artefacts=self.artefacts,
                resume=resume,
            )
            for old in checkpoint_dirs(self.output)[: -self.cfg.keep_checkpoints]:
                shutil.rmtree(old)
        self.last_checkpoint = path
        self.processes.barrier()

    def _validate(self, bar: tqdm) -> None:
        """Score the network on held-out data (rank 0; its randomness does not touch training's)."""
        if self.processes.is_main and self.validate is not None:
            rng = capture_rng_state()
            try:
                metrics = self.validate(self.model)
            finally:
                restore_rng_state(rng)
                self.model.train()
            self._log("val", metrics)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            bar.write(f"step {self.step}: validation {shown}")
        self.processes.barrier()

    def _log(self, group: str, scalars: Mapping[str, float]) -> None:
        """TensorBoard scalars ``<group>/<name>`` (``<name>`` for an empty group) and a line of ``metrics.jsonl``."""
        if not self.processes.is_main:
            return
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter  # imported by the one process that logs

            self.writer = SummaryWriter(log_dir=str(self.output / TENSORBOARD_DIR))
        for name, value in scalars.items():
            self.writer.add_scalar(f"{group}/{name}" if group else name, value, self.step)
        self.writer.flush()
        line = {"step": self.step, "group": group, **{k: (v if math.isfinite(v) else None) for k, v in scalars.items()}}
        with (self.output / METRICS_FILE).open("a") as f:
            f.write(json.dumps(line) + "\n")

    def _truncate_metrics(self) -> None:
        """Drop ``metrics.jsonl`` lines after the resumed step (a killed run logged steps it will redo)."""
        path = self.output / METRICS_FILE
        if not path.is_file():
            return
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= self.step]
        with atomic_open(path) as f:
            f.write("".join(ln + "\n" for ln in lines))
