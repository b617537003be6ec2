"""Generating the embedded splits: scenario families x seeds -> audited expert logs -> log records + manifest.

Each log is one task (family, index), independent of the others, so tasks run in parallel processes and a
re-run only does the tasks whose log file is missing or unreadable. A task's seed derives from the base seed,
the split, the family and the index; when the expert's rollout fails its audit (collision, off-road, red
light, comfort) the task moves on to the next attempt's seed, and the manifest counts these rejections.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from irl_vla.common.io import DataFormatError, atomic_open, write_json
from irl_vla.data.log_io import LOG_SUFFIX, LogRecord, log_to_bytes, read_log
from irl_vla.data.scene_filter import SceneFilter
from irl_vla.data.split import MANIFEST, LogEntry, SplitManifest
from scenarios.registry import FAMILIES_DIR, ScenarioFamily, load_families
from sim_bridges.embedded.audit import Auditor
from sim_bridges.embedded.recorder import cut_scenes, record_log
from sim_bridges.embedded.scenario_world import build_scenario
from sim_bridges.embedded.two_stage import TwoStageSpec

MAX_ATTEMPTS = 8
SPLIT_IDS = {"synth_navtrain": 1, "synth_navtest": 2, "synth_navhard": 3}


@dataclass
class SplitSpec:
    """Size and windowing of one split.

    Attributes:
        logs_per_family: logs generated per scenario family.
        hard_only: only the families tagged ``hard``.
        frame_interval: frames between consecutive scene windows of a log.
        two_stage: also re-simulate stage-2 scenes into ``<split>_two_stage`` (``two_stage.py``).
    """

    logs_per_family: int = 4
    hard_only: bool = False
    frame_interval: int = 5
    two_stage: bool = False


@dataclass
class GenerateConfig:
    """Settings of ``irl-vla generate`` (``configs/generate.yaml``)."""

    data_root: str = "data"
    splits: dict[str, SplitSpec] = field(default_factory=dict)
    only: list[str] | None = None  # generate only these splits
    families: list[str] | None = None  # restrict to these families
    families_dir: str = str(FAMILIES_DIR)
    base_seed: int = 0
    num_log_frames: int = 40  # 2 Hz frames per log
    num_history_frames: int = 4
    num_future_frames: int = 10
    workers: int = 2
    progress: bool = True
    two_stage: TwoStageSpec = field(default_factory=TwoStageSpec)  # how stage-2 starts are drawn


@dataclass(frozen=True)
class Task:
    """One log to generate."""

    split: str
    family: str
    index: int
    hard: bool

    @property
    def log_name(self) -> str:
        """Unique log name (also the file stem)."""
        return f"{self.split}-{self.family}-{self.index:05d}"


def task_seed(base_seed: int, task: Task, attempt: int) -> int:
    """Deterministic seed of a task's attempt."""
    split_id = SPLIT_IDS.get(task.split, zlib.crc32(task.split.encode()))
    seq = np.random.SeedSequence([base_seed, split_id, zlib.crc32(task.family.encode()), task.index, attempt])
    return int(seq.generate_state(1)[0])


def generate_log(
    task: Task, family: ScenarioFamily, cfg: GenerateConfig, frame_interval: int
) -> tuple[LogRecord, int, int]:
    """Build, roll out, audit and record one log; returns ``(record, seed, rejected_attempts)``."""
    scene_filter = SceneFilter(cfg.num_history_frames, cfg.num_future_frames, frame_interval=frame_interval)
    failures = []
    for attempt in range(MAX_ATTEMPTS):
        seed = task_seed(cfg.base_seed, task, attempt)
        inst = build_scenario(family, seed)
        auditor = Auditor(inst.world)
        frames = record_log(
            inst.world,
            inst.route_ids,
            inst.route_centerline,
            log_name=task.log_name,
            num_frames=cfg.num_log_frames,
            on_step=auditor.check,
        )
        if not auditor.report.ok:
            failures.append(f"seed {seed}: {auditor.report.summary()}")
            continue
        scenes = cut_scenes(frames, scene_filter, log_name=task.log_name, world=inst.world)
        starts = {f.token: i for i, f in enumerate(frames)}
        meta = {
            "family": task.family,
            "seed": seed,
            "params": inst.params,
            "route_lanes": inst.route_lanes,
            "progress_m": round(auditor.report.progress, 3),
        }
        record = LogRecord(
            task.log_name,
            inst.world.map,
            frames,
            [(s.token, starts[s.token] - cfg.num_history_frames + 1) for s in scenes],
            cfg.num_history_frames,
            cfg.num_future_frames,
            meta,
        )
        return record, seed, attempt
    raise RuntimeError(f"{task.log_name}: every attempt failed its audit: {failures}")


def _run_task(task: Task, cfg: GenerateConfig, frame_interval: int, path: str) -> dict[str, Any]:
    """Worker: generate and write one log; returns its manifest entry and rejection count."""
    families = load_families(cfg.families_dir)
    record, seed, rejected = generate_log(task, families[task.family], cfg, frame_interval)
    data = log_to_bytes(record)
    out = Path(path)
    with atomic_open(out, "wb") as f:  # a killed run leaves no partial log behind
        f.write(data)
    entry = LogEntry(
        task.log_name,
        f"logs/{out.name}",
        task.family,
        seed,
        hashlib.sha256(data).hexdigest(),
        [tok for tok, _ in record.scenes],
        task.hard,
    )
    return {"entry": entry.to_dict(), "rejected": rejected}


def _existing(task: Task, path: Path) -> dict[str, Any] | None:
    """Manifest entry of an already written, readable log (resume), else None."""
    if not path.is_file():
        return None
    try:
        record = read_log(path)
    except (DataFormatError, FileNotFoundError):
        return None  # corrupt or partial: regenerate
    if record.log_name != task.log_name:
        return None
    entry = LogEntry(
        task.log_name,
        f"logs/{path.name}",
        task.family,
        int(record.meta.get("seed", -1)),
        hashlib.sha256(path.read_bytes()).hexdigest(),
        [tok for tok, _ in record.scenes],
        task.hard,
    )
    return {"entry": entry.to_dict(), "rejected": 0}


def plan_tasks(split: str, spec: SplitSpec, families: dict[str, ScenarioFamily], only: list[str] | None) -> list[Task]:
    """The tasks of a split, in a fixed order."""
    if only is not None:
        unknown = sorted(set(only) - set(families))
        if unknown:
            raise ValueError(f"unknown scenario families {unknown}; known: {sorted(families)}")
    chosen = [f for name, f in families.items() if (only is None or name in only) and (f.hard or not spec.hard_only)]
    return [Task(split, f.name, i, f.hard) for f in chosen for i in range(spec.logs_per_family)]


def generate_split(
    split: str,
    spec: SplitSpec,
    cfg: GenerateConfig,
    progress: Callable[[int, int], None] | None = None,
) -> SplitManifest:
    """Generate (or complete) one split under ``cfg.data_root`` and write its manifest last."""
    families = load_families(cfg.families_dir)
    tasks = plan_tasks(split, spec, families, cfg.families)
    split_dir = Path(cfg.data_root) / split
    logs_dir = split_dir / "logs"
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for task in tasks:
        done = _existing(task, logs_dir / f"{task.log_name}{LOG_SUFFIX}")
        if done is not None:
            results[task.log_name] = done
        else:
            todo.append(task)
    if progress is not None:
        progress(len(results), len(tasks))
    if todo:
        if cfg.workers <= 1:
            for task in todo:
                results[task.log_name] = _run_task(
                    task, cfg, spec.frame_interval, str(logs_dir / f"{task.log_name}{LOG_SUFFIX}")
                )
                if progress is not None:
                    progress(len(results), len(tasks))
        else:
            with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=get_context("spawn")) as pool:
                futures = {
                    pool.submit(_run_task, t, cfg, spec.frame_interval, str(logs_dir / f"{t.log_name}{LOG_SUFFIX}")): t
                    for t in todo
                }
                for future in as_completed(futures):
                    results[futures[future].log_name] = future.result()
                    if progress is not None:
                        progress(len(results), len(tasks))
    entries = [LogEntry(**results[t.log_name]["entry"]) for t in tasks]
    settings = {
        "generator": "embedded",
        "base_seed": cfg.base_seed,
        "num_log_frames": cfg.num_log_frames,
        "num_history_frames": cfg.num_history_frames,
        "num_future_frames": cfg.num_future_frames,
        "split_spec": asdict(spec),
        "families": sorted({t.family for t in tasks}),
    }
    previous_rejected = _previous_rejected(split_dir)
    rejected = previous_rejected + sum(int(r["rejected"]) for r in results.values())
    manifest = SplitManifest(split, entries, settings, rejected)
    write_json(split_dir / MANIFEST, manifest.to_dict())
    return manifest


def _previous_rejected(split_dir: Path) -> int:
    try:
        return SplitManifest.read(split_dir).rejected
    except (FileNotFoundError, DataFormatError):
        return 0
