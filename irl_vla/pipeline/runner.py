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
from typing import IO

from irl_vla.pipeline.markers import Identity, Markers, config_hash
from irl_vla.pipeline.steps import Step

#: How each step is started: ``<program> <command> <args...>``.
IRL_VLA = (sys.executable, "-m", "tools.cli")
#: Lines of a failed step's log shown in the error.
TAIL_LINES = 15
#: How often running steps are polled when several run at once [s].
POLL_S = 0.2
#: How long a stopped step may take to exit before it is killed [s].
STOP_TIMEOUT_S = 20.0


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


@dataclass
class _Running:
    """A step whose command is running."""

    step: Step
    identity: Identity
    process: subprocess.Popen
    log_file: IO[str]
    log: Path
    start: float


def run_steps(
    steps: Sequence[Step],
    steps_dir: Path,
    logs_dir: Path,
    *,
    program: Sequence[str] = IRL_VLA,
    env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
    parallel: int = 1,
    settings: Callable[[Step], str] | None = None,
    rerun: Sequence[str] = (),
) -> list[StepResult]:
    """Run each step unless its done-marker is valid; returns what happened to each, in the order of ``steps``.

    A step is skipped when its done-marker records its current config hash and its inputs' current hashes and its
    outputs exist. Otherwise it runs; when it had finished (or started) with other settings or inputs, its own
    outputs (``Step.clean``) are removed first, and when it was killed with the same settings it resumes.

    ``settings`` gives each step's composed configuration (part of its config hash: an edited config file re-runs
    the steps whose settings it changes, and their dependents). The steps named in ``rerun`` run again from
    scratch even when their done-marker is valid (after a change of code, which no hash sees), and so does every
    step that reads them.

    Up to ``parallel`` steps run at once: a step starts, in the order of ``steps``, as soon as every step it depends
    on has finished. When a step fails no further step starts and the running ones are stopped (their started-
    markers stay, so a rerun resumes them); when the pipeline itself is interrupted, its running steps are stopped.

    Raises:
        ValueError: a step depends on a step not before it, ``parallel`` < 1, or ``rerun`` names an unknown step.
        StepFailed: a step failed (naming it, its exit status and its log, with the log's last lines).
    """
    if parallel < 1:
        raise ValueError(f"pipeline: parallel steps must be >= 1, got {parallel}")
    seen: set[str] = set()
    for step in steps:
        missing = [d for d in step.depends if d not in seen]
        if missing:
            raise ValueError(f"pipeline step {step.name}: depends on {missing}, which do not run before it")
        seen.add(step.name)
    unknown = sorted(set(rerun) - seen)
    if unknown:
        raise ValueError(f"pipeline: rerun names unknown steps {unknown}; steps: {[s.name for s in steps]}")
    forced = set(rerun)
    for step in steps:  # in order, so a step after a forced one is forced too
        if forced & set(step.depends):
            forced.add(step.name)
    markers = Markers(steps_dir)
    hashes: dict[str, str] = {}
    results: dict[str, StepResult] = {}
    pending = list(steps)
    running: list[_Running] = []
    try:
        while pending or running:
            ready = [s for s in pending if all(d in hashes for d in s.depends)]
            if ready and len(running) < parallel:
                step = ready[0]
                pending.remove(step)
                composed = settings(step) if settings is not None else ""
                identity = Identity(config_hash(step, composed), {d: hashes[d] for d in step.depends})
                log = logs_dir / f"{step.name}.log"
                done = markers.read(markers.done_path(step.name))
                if step.name in forced and done is not None:
                    done = {**done, "hash": None}  # asked to re-run: the marker no longer vouches for the outputs
                if done is not None and identity.matches(done) and all(p.exists() for p in step.outputs):
                    hashes[step.name] = identity.hash
                    wall = float(done.get("wall_s", float("nan")))
                    results[step.name] = StepResult(step.name, "skipped", wall, log)
                    echo(f"[pipeline] {step.name}: done before ({wall:.0f} s), skipped")
                    continue
                started = markers.read(markers.started_path(step.name))
                if done is not None or (started is not None and not identity.matches(started)):
                    for path in step.clean:  # made with other settings or inputs: start again
                        _remove(path)
                    how = (
                        "re-running as asked (pipeline.rerun)"
                        if step.name in forced
                        else "settings, inputs or outputs changed: re-running"
                    )
                else:
                    how = "resuming a killed run" if started is not None else "running"
                markers.start(step.name, identity)
                echo(f"[pipeline] {step.name}: {how} (log {log})")
                running.append(_start(step, identity, [*program, step.command, *step.args], log, env))
                continue
            finished = _wait_any(running)
            running.remove(finished)
            wall = _finish(finished)
            step = finished.step
            absent = [str(p) for p in step.outputs if not p.exists()]
            if absent:
                raise StepFailed(
                    f"pipeline step {step.name}: finished without writing {absent}; see its log {finished.log}"
                )
            markers.finish(step.name, finished.identity, wall, [str(p) for p in step.outputs])
            hashes[step.name] = finished.identity.hash
            results[step.name] = StepResult(step.name, "ran", wall, finished.log)
            echo(f"[pipeline] {step.name}: done in {wall:.0f} s")
    finally:
        for r in [r for r in running if r.process.poll() == 0 and all(p.exists() for p in r.step.outputs)]:
            # finished beside a failing step (or an interrupt) before it was collected: keep it done
            running.remove(r)
            r.log_file.close()
            markers.finish(r.step.name, r.identity, time.perf_counter() - r.start, [str(p) for p in r.step.outputs])
            echo(f"[pipeline] {r.step.name}: done")
        _stop(running, echo)
    return [results[s.name] for s in steps]


def _start(step: Step, identity: Identity, argv: list[str], log: Path, env: Mapping[str, str] | None) -> _Running:
    """Start ``argv`` with its output in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    f = log.open("w")
    try:
        f.write(" ".join(argv) + "\n")
        f.flush()
        process = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    except BaseException:
        f.close()
        raise
    return _Running(step, identity, process, f, log, time.perf_counter())


def _wait_any(running: Sequence[_Running]) -> _Running:
    """The first of the running steps to exit (waits for it)."""
    if len(running) == 1:
        running[0].process.wait()
        return running[0]
    while True:
        for r in running:
            if r.process.poll() is not None:
                return r
        time.sleep(POLL_S)


def _finish(r: _Running) -> float:
    """The wall time [s] of an exited step.

    Raises:
        StepFailed: on a non-zero exit status.
    """
    wall = time.perf_counter() - r.start
    r.log_file.close()
    status = r.process.returncode
    if status != 0:
        tail = "\n".join(r.log.read_text(errors="replace").splitlines()[-TAIL_LINES:])
        raise StepFailed(f"pipeline step {r.step.name} failed (exit status {status}); its log {r.log} ends:\n{tail}")
    return wall


def _stop(running: Sequence[_Running], echo: Callable[[str], None]) -> None:
    """Stop steps still running (after another step failed or the pipeline was interrupted); a rerun resumes them."""
    for r in running:
        if r.process.poll() is None:
            echo(f"[pipeline] {r.step.name}: stopped (a rerun resumes it; log {r.log})")
            r.process.terminate()
    for r in running:
        try:
            r.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            r.process.kill()
            r.process.wait()
        r.log_file.close()


def _remove(path: Path) -> None:
    """Remove a file or folder if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
