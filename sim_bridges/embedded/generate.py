"""Generating the embedded splits: scenario families x seeds -> audited expert logs -> log records + manifest.

Each log is one task (family, index), independent of the others, so tasks run on the parallel executor
(``irl_vla.common.parallel``) and a re-run only does the tasks whose log is missing, unreadable, or no longer the
one the manifest recorded (edited since). A task's seed derives from the base seed, the split, the family and the
index; when the expert's rollout fails its audit (collision, off-road, red light, comfort) the task moves on to the
next attempt's seed, and the manifest counts these rejections: per log, the attempt its seed came from, so the
count is the same whether a split was generated in one run or resumed.

Each log records the settings it was generated with (``LOG_SETTINGS``). Re-running with other settings over
existing logs is refused with a message saying how to regenerate (``generate.regenerate=true`` regenerates the
logs made with other settings), so a manifest never describes logs that its settings did not make.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from irl_vla.common import parallel
from irl_vla.common.io import DataFormatError, atomic_open, file_sha256, write_json
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
#: The settings that shape a log's content, recorded in each log's meta and in the manifest.
LOG_SETTINGS = ("base_seed", "num_log_frames", "num_history_frames", "num_future_frames", "frame_interval")

log = logging.getLogger(__name__)


@dataclass
class SplitSpec:
    """Size and windowing of one split.

    Attributes:
        logs_per_family: logs generated per scenario family.
        hard_only: only the families tagged ``hard``.
        frame_interval: frames between consecutive scene windows of a log.
        two_stage: also re-simulate stage-2 scenes into ``<split>_two_stage`` (``two_stage.py``).
        two_stage_pairs: stage-2 pairs per stage-1 scene of this split (``None``: ``generate.two_stage``'s
            ``pairs_per_group``).
    """

    logs_per_family: int = 4
    hard_only: bool = False
    frame_interval: int = 5
    two_stage: bool = False
    two_stage_pairs: int | None = None

    def __post_init__(self) -> None:
        if self.two_stage_pairs is not None and self.two_stage_pairs < 1:
            raise ValueError(f"SplitSpec.two_stage_pairs: expected >= 1 or null, got {self.two_stage_pairs}")

    def two_stage_spec(self, spec: TwoStageSpec) -> TwoStageSpec:
        """``spec`` with this split's pairs per stage-1 scene."""
        return spec if self.two_stage_pairs is None else replace(spec, pairs_per_group=self.two_stage_pairs)


def default_splits() -> dict[str, SplitSpec]:
    """The embedded splits: navtrain (all families, a window every second), navtest and the two-stage navhard.

    ``synth_navtrain`` gets one stage-2 pair per scene (``synth_navtrain_two_stage``): the displaced starts that the
    ``default`` VLA also trains on (``train.extra_splits``), so that it learns to steer back into its lane.
    """
    return {
        "synth_navtrain": SplitSpec(logs_per_family=40, frame_interval=2, two_stage=True, two_stage_pairs=1),
        "synth_navtest": SplitSpec(logs_per_family=8, frame_interval=5),
        "synth_navhard": SplitSpec(logs_per_family=10, hard_only=True, frame_interval=5, two_stage=True),
    }


@dataclass
class GenerateConfig:
    """Settings of ``irl-vla generate`` (``generate.<key>=...``; ``irl-vla generate --help`` lists the defaults).

    Attributes:
        data_root: where the splits go, one directory each (follows ``paths.data_root``).
        splits: split name -> its size and windowing (``SplitSpec``), e.g.
            ``generate.splits.synth_navtest.logs_per_family=2``.
        only: generate only these splits (e.g. ``[synth_navtest]``); ``None``: all.
        families: only these scenario families (e.g. ``[merge, cut_in]``); ``None``: all.
        families_dir: the folder of the scenario families' yaml files.
        base_seed: seed of every log (follows ``run.seed``).
        num_log_frames: 2 Hz frames per log (40: 20 s).
        num_history_frames: frames of a scene window's history, the current one included.
        num_future_frames: frames of a scene window's future (10: 5 s).
        workers: processes, or CPUs of a local Ray instance (follows ``run.workers``).
        backend: ``sequential`` | ``process`` | ``ray`` (follows ``run.backend``).
        ray_address: with ``backend=ray``: ``None`` starts a local Ray instance, else a cluster's address.
        regenerate: regenerate logs made with other settings (``base_seed``, ``num_log_frames``, ...) instead of
            refusing to mix them with this run's.
        progress: show progress bars (follows ``run.progress``).
        two_stage: how the stage-2 start states of two-stage splits are drawn (``TwoStageSpec``).
    """

    data_root: str = "data"
    splits: dict[str, SplitSpec] = field(default_factory=default_splits)
    only: list[str] | None = None
    families: list[str] | None = None
    families_dir: str = str(FAMILIES_DIR)
    base_seed: int = 0
    num_log_frames: int = 40
    num_history_frames: int = 4
    num_future_frames: int = 10
    workers: int = 2
    backend: str = "process"
    ray_address: str | None = None
    regenerate: bool = False
    progress: bool = True
    two_stage: TwoStageSpec = field(default_factory=TwoStageSpec)

    def __post_init__(self) -> None:
        self.executor()  # validates backend, workers and ray_address

    def executor(self) -> parallel.ExecutorConfig:
        """Where tasks run."""
        return parallel.ExecutorConfig(self.backend, self.workers, self.ray_address)

    def log_settings(self, spec: SplitSpec) -> dict[str, int]:
        """The values of ``LOG_SETTINGS`` for a split."""
        values = {**asdict(self), "frame_interval": spec.frame_interval}
        return {k: int(values[k]) for k in LOG_SETTINGS}


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
    record.meta["settings"] = cfg.log_settings(SplitSpec(frame_interval=frame_interval))
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


def attempt_of(base_seed: int, task: Task, seed: int) -> int | None:
    """The attempt whose seed is ``seed`` (= the audit rejections before it), or None if none under ``base_seed``."""
    return next((a for a in range(MAX_ATTEMPTS) if task_seed(base_seed, task, a) == seed), None)


@dataclass
class _Existing:
    """What a log file on disk is worth to this run.

    Attributes:
        result: its manifest entry and rejection count when it can be kept.
        made_with: the settings it was generated with, when they differ from this run's.
    """

    result: dict[str, Any] | None = None
    made_with: dict[str, Any] | None = None


def _manifest_settings(manifest: SplitManifest | None) -> dict[str, Any] | None:
    """``LOG_SETTINGS`` of a previous manifest (older manifests keep ``frame_interval`` in ``split_spec``)."""
    if manifest is None:
        return None
    flat = {**manifest.settings, **manifest.settings.get("split_spec", {})}
    return {k: flat.get(k) for k in LOG_SETTINGS}


def _existing(task: Task, path: Path, settings: dict[str, int], previous: SplitManifest | None) -> _Existing:
    """Whether the log of ``task`` at ``path`` can be kept (resume), is stale (other settings), or is redone.

    A log is kept when it is the one the previous manifest recorded (same SHA-256) under this run's settings,
    or, without such a record, when it reads back and its meta says it was made with this run's settings. A log
    whose bytes differ from the manifest's under unchanged settings was edited: it is regenerated.
    """
    if not path.is_file():
        return _Existing()
    entry = next((e for e in previous.logs if e.log_name == task.log_name), None) if previous else None
    recorded = _manifest_settings(previous)
    sha = file_sha256(path)
    if entry is not None and entry.sha256 == sha and recorded is not None:
        made_with, seed, tokens = recorded, entry.seed, entry.scene_tokens
    else:
        if entry is not None and recorded == settings:
            log.warning("%s: differs from the manifest's SHA-256 (edited?): regenerating it", path)
            return _Existing()
        try:
            record = read_log(path)
        except (DataFormatError, FileNotFoundError):
            return _Existing()  # corrupt or partial: regenerate
        if record.log_name != task.log_name:
            return _Existing()
        made_with = record.meta.get("settings", {k: None for k in LOG_SETTINGS})
        seed, tokens = int(record.meta.get("seed", -1)), [tok for tok, _ in record.scenes]
    attempt = attempt_of(settings["base_seed"], task, seed)
    if made_with != settings or attempt is None:
        return _Existing(made_with=made_with)
    entry = LogEntry(task.log_name, f"logs/{path.name}", task.family, seed, sha, tokens, task.hard)
    return _Existing(result={"entry": entry.to_dict(), "rejected": attempt})


def _shown(value: Any) -> str:
    return "unknown" if value is None else str(value)


def _refuse_other_settings(split_dir: Path, stale: dict[str, dict[str, Any]], settings: dict[str, int]) -> None:
    """Raise a ``ValueError`` saying which settings differ and how to regenerate."""
    changes = sorted(
        {
            f"{k}: {_shown(made.get(k))} -> {v}"
            for made in stale.values()
            for k, v in settings.items()
            if made.get(k) != v
        }
    )
    raise ValueError(
        f"{split_dir}: {len(stale)} existing logs were generated with other settings ({'; '.join(changes)}), e.g. "
        f"{next(iter(stale))}. To regenerate them with these settings, re-run with generate.regenerate=true (metric "
        f"caches built from them are rebuilt on the next eval); or delete {split_dir}, or generate into another "
        f"paths.data_root"
    )


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
    """Generate (or complete) one split under ``cfg.data_root`` and write its manifest last.

    Raises:
        ValueError: when existing logs were generated with other settings (unless ``cfg.regenerate``).
        TaskError: naming every log that could not be generated (the others are kept for a re-run).
    """
    families = load_families(cfg.families_dir)
    tasks = plan_tasks(split, spec, families, cfg.families)
    split_dir = Path(cfg.data_root) / split
    logs_dir = split_dir / "logs"
    settings = cfg.log_settings(spec)
    previous = _previous_manifest(split_dir)
    existing = {t.log_name: _existing(t, logs_dir / f"{t.log_name}{LOG_SUFFIX}", settings, previous) for t in tasks}
    stale = {name: e.made_with for name, e in existing.items() if e.made_with is not None}
    if stale and not cfg.regenerate:
        _refuse_other_settings(split_dir, stale, settings)
    jobs = [
        parallel.Task(t.log_name, (t, cfg, spec.frame_interval, str(logs_dir / f"{t.log_name}{LOG_SUFFIX}")))
        for t in tasks
    ]
    outcome = parallel.run_tasks(
        _run_task, jobs, cfg.executor(), done=lambda job: existing[job.name].result, progress=progress
    )
    outcome.raise_failures(f"generate {split}")
    results = outcome.results
    entries = [LogEntry(**results[t.log_name]["entry"]) for t in tasks]
    manifest_settings = {
        "generator": "embedded",
        **{k: v for k, v in settings.items() if k != "frame_interval"},
        "split_spec": asdict(spec),
        "families": sorted({t.family for t in tasks}),
    }
    rejected = sum(int(r["rejected"]) for r in results.values())
    manifest = SplitManifest(split, entries, manifest_settings, rejected)
    write_json(split_dir / MANIFEST, manifest.to_dict())
    return manifest


def _previous_manifest(split_dir: Path) -> SplitManifest | None:
    try:
        return SplitManifest.read(split_dir)
    except (FileNotFoundError, DataFormatError):
        return None
