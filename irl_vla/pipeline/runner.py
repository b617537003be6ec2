"""Run the pipeline's steps in order, skipping those whose done-marker is valid, resuming a killed one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from irl_vla.pipeline.markers import Identity, Markers, config_hash
from irl_vla.pipeline.steps import Step

#: How each step is started: ``<program> <command> <args...>``.
IRL_VLA = (sys.executable, "-m", "tools.cli")
#: Lines of a failed step's log shown in the error.
TAIL_LINES = 15


class StepFailed(RuntimeError):
    """A step exited with an error or without writing its outputs (the message names its log)."""


@dataclass(frozen=True)
class StepResult:
    """How a step went in this run.

    Attributes:
        name: the step.
        status: ``ran`` or ``skipped`` (its done-marker was valid).
        wall_s: wall time of the step [s] (of the run that made its outputs, for a skipped step).
        log: the step's log.
    """

    name: str
    status: str
    wall_s: float
    log: Path


def run_steps(
    steps: Sequence[Step],
    steps_dir: Path,
    logs_dir: Path,
    *,
    program: Sequence[str] = IRL_VLA,
    env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
) -> list[StepResult]:
    """Run each step unless its done-marker is valid; returns what happened to each.

    A step is skipped when its done-marker records its current config hash and its inputs' current hashes and its
    outputs exist. Otherwise it runs; when it had finished (or started) with other settings or inputs, its own
    outputs (``Step.clean``) are removed first, and when it was killed with the same settings it resumes.

    Raises:
        ValueError: a step depends on a step not before it.
        StepFailed: a step failed (naming it, its exit status and its log, with the log's last lines).
    """
    markers = Markers(steps_dir)
    hashes: dict[str, str] = {}
    results = []
    for step in steps:
        missing = [d for d in step.depends if d not in hashes]
        if missing:
            raise ValueError(f"pipeline step {step.name}: depends on {missing}, which do not run before it")
        identity = Identity(config_hash(step), {d: hashes[d] for d in step.depends})
        log = logs_dir / f"{step.name}.log"
        done = markers.read(markers.done_path(step.name))
        if done is not None and identity.matches(done) and all(p.exists() for p in step.outputs):
            hashes[step.name] = identity.hash
            wall = float(done.get("wall_s", float("nan")))
            results.append(StepResult(step.name, "skipped", wall, log))
            echo(f"[pipeline] {step.name}: done before ({wall:.0f} s), skipped")
            continue
        started = markers.read(markers.started_path(step.name))
        if done is not None or (started is not None and not identity.matches(started)):
            for path in step.clean:  # made with other settings or inputs: start again
                _remove(path)
            how = "settings, inputs or outputs changed: re-running"
        else:
            how = "resuming a killed run" if started is not None else "running"
        markers.start(step.name, identity)
        echo(f"[pipeline] {step.name}: {how} (log {log})")
        wall = _execute(step, [*program, step.command, *step.args], log, env)
        absent = [str(p) for p in step.outputs if not p.exists()]
        if absent:
            raise StepFailed(f"pipeline step {step.name}: finished without writing {absent}; see its log {log}")
        markers.finish(step.name, identity, wall, [str(p) for p in step.outputs])
        hashes[step.name] = identity.hash
        results.append(StepResult(step.name, "ran", wall, log))
        echo(f"[pipeline] {step.name}: done in {wall:.0f} s")
    return results


def _execute(step: Step, argv: list[str], log: Path, env: Mapping[str, str] | None) -> float:
    """Run ``argv`` with its output in ``log``; its wall time [s].

    Raises:
        StepFailed: on a non-zero exit status.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as f:
        f.write(" ".join(argv) + "\n")
        f.flush()
        status = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}).returncode
    wall = time.perf_counter() - start
    if status != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-TAIL_LINES:])
        raise StepFailed(f"pipeline step {step.name} failed (exit status {status}); its log {log} ends:\n{tail}")
    return wall


def _remove(path: Path) -> None:
    """Remove a file or folder if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
