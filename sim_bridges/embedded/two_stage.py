"""Stage-2 scenes of a two-stage split: NAVSIM v2's pseudo-simulation, re-simulated in the embedded world.

NAVSIM v2 scores ``navhard`` in two stages (``reference/navsim.md`` §1.10): a real scene (and its predecessor
0.5 s earlier), then synthetic scenes that start near where the expert was 4 s later, with the ego's position,
heading and speed varied; stage-2 scores are weighted by how close each start lies to the end of the agent's
stage-1 plan. NAVSIM renders those scenes with Gaussian splatting; here they are re-simulated.

For a stage-1 scene with current frame ``c`` of a log (2 Hz), the log's world is rebuilt from its family and
seed, replayed to frame ``c + 4`` (checked against the log), and copied once per stage-2 pair. In each copy the
ego is displaced along its route and sideways and its speed scaled, and the expert drives on for 6 s while the
other road users react to it. The 13 recorded frames hold two scenes: "prev" with current frame ``c + 7`` and
"now" with current frame ``c + 8``, where the unperturbed expert was at the end of its 4 s plan. A copy whose
expert then collides, leaves the road, runs a red light or brakes beyond the comfort bounds is redrawn (at most
``TwoStageSpec.max_attempts`` times, then dropped and counted), as the generator does with whole logs.

Output, ``<data_root>/<split>_two_stage/`` (``irl_vla.data.two_stage``): a standard split (``manifest.json``,
one log per pair with 17-hex-character frame tokens and ``meta.corresponding_original_scene``) and
``two_stage.json``, whose groups also list ``offsets_m``: how far each "now" start lies from the expert's
endpoint [m].

Work is one task per source log, run on the parallel executor (``irl_vla.common.parallel``); a task's results (its
logs, then a small JSON under ``groups/``) are written atomically, so an interrupted run resumes where it stopped,
and a task whose source log or settings changed is redone.
"""

from __future__ import annotations

import copy
import hashlib
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from irl_vla.common import parallel
from irl_vla.common.config import require_at_least
from irl_vla.common.io import DataFormatError, atomic_open, read_json, write_json
from irl_vla.data.log_io import LOG_SUFFIX, LogRecord, log_to_bytes
from irl_vla.data.split import MANIFEST, LogEntry, SceneLoader, SplitManifest
from irl_vla.data.two_stage import TWO_STAGE_FILE, TWO_STAGE_FORMAT, TWO_STAGE_VERSION, two_stage_dir
from irl_vla.data.vehicle import PACIFICA
from scenarios.registry import FAMILIES_DIR, load_families
from sim_bridges.embedded.audit import Auditor
from sim_bridges.embedded.recorder import RECORD_EVERY, SYNTHETIC_TOKEN_LENGTH, record_log
from sim_bridges.embedded.scenario_world import ScenarioInstance, build_scenario
from sim_bridges.embedded.world import World

ENDPOINT_FRAMES = 8  # frames (2 Hz) from a scene's current frame to the end of a 4 s plan
HISTORY_FRAMES = 4  # history frames of a stage-2 scene (current included)
FUTURE_FRAMES = 8  # future frames of a stage-2 scene (4 s, what scoring needs)
# A stage-2 log: the prev scene's history (4 frames), the now frame, and the now scene's future.
SYNTHETIC_LOG_FRAMES = HISTORY_FRAMES + 1 + FUTURE_FRAMES
GENERATOR_VERSION = 2  # bumped when the same settings would draw different scenes; older task records are redone
STOP_LINE_MARGIN = 0.5  # [m] a displaced start stays this far behind a stop line ahead
REPLAY_TOLERANCE = 1e-6  # [m] the rebuilt world must retrace the logged ego this closely


@dataclass
class TwoStageSpec:
    """How stage-2 start states are drawn around the expert's endpoint.

    Attributes:
        pairs_per_group: stage-2 (now, prev) pairs per stage-1 scene (NAVSIM navhard: 5 to 20).
        position_std: standard deviation of the displacement along the route [m] (clipped at 2 std).
        lateral_range: the sideways displacement is uniform in +- this [m] (the expert steers back).
        speed_std: standard deviation of the relative speed change (clipped at 2 std).
        max_attempts: draws per pair before it is dropped (the expert's continuation must pass its audit).
        base_seed: seed of the draws.
    """

    pairs_per_group: int = 6
    position_std: float = 1.0
    lateral_range: float = 0.5
    speed_std: float = 0.05
    max_attempts: int = 4
    base_seed: int = 0

    def __post_init__(self) -> None:
        require_at_least(self, ("pairs_per_group", "max_attempts"), 1)
        require_at_least(self, ("position_std", "lateral_range", "speed_std"), 0)


def stage_one_frames(record: LogRecord) -> list[int]:
    """Current-frame indices of the log's scenes that get stage-2 scenes.

    A scene qualifies when its log has the previous frame's scene (two-frame comfort) and room for the stage-2
    log: frame ``c + 4`` to ``c + 16`` inside the log, so that the replayed world never runs past what the
    expert was audited on.
    """
    out = []
    for _, start in record.scenes:
        current = start + record.num_history_frames - 1
        first = current + ENDPOINT_FRAMES - HISTORY_FRAMES
        if start >= 1 and first + SYNTHETIC_LOG_FRAMES <= len(record.frames):
            out.append(current)
    return out


def _draw_seed(spec: TwoStageSpec, log_name: str, current: int, pair: int, attempt: int) -> int:
    seq = np.random.SeedSequence([spec.base_seed, 4, zlib.crc32(log_name.encode()), current, pair, attempt])
    return int(seq.generate_state(1)[0])


def _copy_world(world: World) -> World:
    """A copy of ``world`` whose mutable state (road users, time) is independent; map and paths are shared."""
    memo: dict[int, Any] = {id(world.map): world.map}
    for user in world.road_users_and_ego:
        memo[id(user.path)] = user.path
    return copy.deepcopy(world, memo)


def perturb_ego(world: World, rng: np.random.Generator, spec: TwoStageSpec) -> None:
    """Displace the ego along its path and sideways and scale its speed (in place).

    A forward displacement never carries the ego's front across a stop line it had not reached (it stops
    ``STOP_LINE_MARGIN`` short): a start already over a red line would fail TLC whatever the agent does.
    """
    ego = world.ego
    ds = float(np.clip(rng.normal(0.0, spec.position_std), -2 * spec.position_std, 2 * spec.position_std))
    front = ego.s + ego.length / 2
    ahead = [stop.s for stop in ego.stops if stop.s >= front]
    if ahead:
        ds = min(ds, max(min(ahead) - STOP_LINE_MARGIN - front, 0.0))
    ego.s += ds
    lateral = float(rng.uniform(-spec.lateral_range, spec.lateral_range))
    if ego.manoeuvre is None:  # mid-manoeuvre the offset follows the manoeuvre; leave it
        ego.lateral += lateral
    ego.speed *= 1.0 + float(np.clip(rng.normal(0.0, spec.speed_std), -2 * spec.speed_std, 2 * spec.speed_std))


def _ego_rear_axle(world: World) -> np.ndarray:
    return PACIFICA.rear_axle_from_center(world.ego.pose)


@dataclass
class _LogResult:
    groups: list[dict[str, Any]]
    entries: list[dict[str, Any]]
    rejected: int  # draws whose expert continuation failed its audit
    dropped: int  # pairs with no passing draw


def _replay(inst: ScenarioInstance, record: LogRecord, frames: list[int]) -> dict[int, World]:
    """Copies of the rebuilt world at each frame in ``frames``, checked against the log."""
    world = inst.world
    snapshots: dict[int, World] = {}
    for index in range(max(frames) + 1):
        if index:
            for _ in range(RECORD_EVERY):
                world.step()
        logged = record.frames[index].ego_status.ego_pose
        if np.abs(_ego_rear_axle(world)[:2] - logged[:2]).max() > REPLAY_TOLERANCE:
            raise DataFormatError(
                f"log {record.log_name}: rebuilding family {inst.family} with seed {inst.seed} does not retrace "
                f"the logged ego at frame {index} (log from another version?): regenerate the split"
            )
        if index in frames:
            snapshots[index] = _copy_world(world)
    return snapshots


def generate_log_two_stage(
    record: LogRecord, entry: LogEntry, spec: TwoStageSpec, families_dir: str, out_dir: Path
) -> _LogResult:
    """Write the stage-2 logs of one source log under ``out_dir/logs``; returns its groups and entries."""
    currents = stage_one_frames(record)
    result = _LogResult([], [], 0, 0)
    if not currents:
        return result
    family = load_families(families_dir)[entry.family]
    inst = build_scenario(family, entry.seed)
    starts = {c: c + ENDPOINT_FRAMES - HISTORY_FRAMES for c in currents}
    snapshots = _replay(inst, record, sorted(starts.values()))
    for current in currents:
        endpoint = record.frames[current + ENDPOINT_FRAMES].ego_status.ego_pose[:2]
        pairs, offsets = [], []
        for k in range(spec.pairs_per_group):
            name = f"{record.log_name}-s2-{current:03d}-{k:02d}"
            for attempt in range(spec.max_attempts):
                seed = _draw_seed(spec, record.log_name, current, k, attempt)
                world = _copy_world(snapshots[starts[current]])
                perturb_ego(world, np.random.default_rng(seed), spec)
                auditor = Auditor(world)
                frames = record_log(
                    world,
                    inst.route_ids,
                    inst.route_centerline,
                    log_name=f"{name}/{seed}",  # tokens name the draw: a redrawn scene never reuses a cache
                    num_frames=SYNTHETIC_LOG_FRAMES,
                    on_step=auditor.check,
                    token_length=SYNTHETIC_TOKEN_LENGTH,
                )
                if auditor.report.ok:
                    break
                result.rejected += 1
            else:
                result.dropped += 1
                continue
            meta = {
                "family": entry.family,
                "seed": entry.seed,
                "draw_seed": seed,
                "source_log": record.log_name,
                "corresponding_original_scene": record.frames[current].token,
            }
            prev_tok, now_tok = frames[HISTORY_FRAMES - 1].token, frames[HISTORY_FRAMES].token
            scenes = [(prev_tok, 0), (now_tok, 1)]  # window starts
            data = log_to_bytes(LogRecord(name, record.map, frames, scenes, HISTORY_FRAMES, FUTURE_FRAMES, meta))
            path = out_dir / "logs" / f"{name}{LOG_SUFFIX}"
            with atomic_open(path, "wb") as f:
                f.write(data)
            sha = hashlib.sha256(data).hexdigest()
            result.entries.append(
                LogEntry(name, f"logs/{path.name}", entry.family, seed, sha, [prev_tok, now_tok], True).to_dict()
            )
            pairs.append([now_tok, prev_tok])
            offsets.append(round(float(np.hypot(*(frames[HISTORY_FRAMES].ego_status.ego_pose[:2] - endpoint))), 3))
        if pairs:
            orig, prev = record.frames[current].token, record.frames[current - 1].token
            result.groups.append({"orig": orig, "prev": prev, "pairs": pairs, "offsets_m": offsets})
    return result


# ---------------------------------------------------------------------------------------------- a whole split
def _groups_path(out_dir: Path, log_name: str) -> Path:
    return out_dir / "groups" / f"{log_name}.json"


def _run_log(split_dir: str, log_name: str, spec: TwoStageSpec, families_dir: str, out_dir: str) -> dict[str, Any]:
    """Worker: the stage-2 logs of one source log; writes and returns its task record."""
    loader = SceneLoader(split_dir)
    entry = next(e for e in loader.manifest.logs if e.log_name == log_name)
    result = generate_log_two_stage(loader.log(entry), entry, spec, families_dir, Path(out_dir))
    task = {
        "source_sha256": entry.sha256,
        "generator_version": GENERATOR_VERSION,
        "spec": asdict(spec),
        **asdict(result),
    }
    write_json(_groups_path(Path(out_dir), log_name), task)
    return task


def _done(out_dir: Path, entry: LogEntry, spec: TwoStageSpec) -> dict[str, Any] | None:
    """The task record of a source log already done with the same source and settings, else None (redo)."""
    path = _groups_path(out_dir, entry.log_name)
    if not path.is_file():
        return None
    try:
        task = read_json(path)
    except DataFormatError:
        return None
    if not isinstance(task, dict) or task.get("source_sha256") != entry.sha256:
        return None
    if task.get("generator_version") != GENERATOR_VERSION:
        return None
    if task.get("spec") != asdict(spec):
        return None
    if not all((out_dir / e["file"]).is_file() for e in task.get("entries", [])):
        return None
    return task


def generate_two_stage(
    split_dir: str | Path,
    spec: TwoStageSpec,
    *,
    workers: int = 2,
    executor: parallel.ExecutorConfig | None = None,
    families_dir: str = str(FAMILIES_DIR),
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Generate (or complete) the stage-2 scenes of the split in ``split_dir``; returns counts.

    Writes ``manifest.json`` and ``two_stage.json`` last, so a split with both files is complete.

    Args:
        split_dir: the stage-1 split.
        spec: how stage-2 starts are drawn.
        workers: processes, when no ``executor`` is given.
        executor: where tasks run.
        families_dir: the scenario families.
        progress: ``(done, total)`` callback.

    Raises:
        TaskError: naming every source log whose stage-2 scenes could not be generated.
    """
    split_dir = Path(split_dir)
    source = SplitManifest.read(split_dir)
    out_dir = two_stage_dir(split_dir)
    executor = executor or parallel.ExecutorConfig(workers=workers)
    entries_of = {e.log_name: e for e in source.logs}
    jobs = [
        parallel.Task(e.log_name, (str(split_dir), e.log_name, spec, families_dir, str(out_dir))) for e in source.logs
    ]
    outcome = parallel.run_tasks(
        _run_log, jobs, executor, done=lambda job: _done(out_dir, entries_of[job.name], spec), progress=progress
    )
    tasks = outcome.raise_failures(f"stage-2 scenes of {source.split}").results
    ordered = [tasks[e.log_name] for e in source.logs]
    entries = [LogEntry(**e) for t in ordered for e in t["entries"]]
    groups = [g for t in ordered for g in t["groups"]]
    counts = {
        "groups": len(groups),
        "pairs": sum(len(g["pairs"]) for g in groups),
        "rejected_draws": sum(t["rejected"] for t in ordered),
        "dropped_pairs": sum(t["dropped"] for t in ordered),
    }
    settings = {"generator": "embedded_two_stage", "source_split": source.split, "spec": asdict(spec), **counts}
    manifest = SplitManifest(out_dir.name, entries, settings, counts["rejected_draws"])
    write_json(out_dir / MANIFEST, manifest.to_dict())
    doc = {"format": TWO_STAGE_FORMAT, "version": TWO_STAGE_VERSION, "source_split": source.split, "groups": groups}
    write_json(out_dir / TWO_STAGE_FILE, doc)
    return counts
