"""The parallel executor: same outcome on every backend, failures named, resumes skip, workers follow the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from irl_vla.common.parallel import ExecutorConfig, Outcome, Task, TaskError, TaskFailure, TaskInputError, run_tasks


def square_or_fail(offset: int, x: int) -> int:
    """A task body: fails on 3, else ``x * x + offset`` (``offset`` from the per-worker setup)."""
    if x == 3:
        raise ValueError(f"three is not allowed (task {x})")
    return x * x + offset


def ten() -> int:
    return 10


def plain_square(x: int) -> int:
    return x * x


def _job(config: ExecutorConfig, **kwargs) -> Outcome[int]:
    tasks = [Task(f"item-{x}", (x,)) for x in range(6)]
    return run_tasks(square_or_fail, tasks, config, setup=ten, **kwargs)


def _check(outcome: Outcome[int]) -> None:
    assert outcome.results == {f"item-{x}": x * x + 10 for x in (0, 1, 2, 4, 5)}
    assert [f.name for f in outcome.failures] == ["item-3"]
    assert outcome.failures[0].error == "ValueError: three is not allowed (task 3)"
    assert "square_or_fail" in outcome.failures[0].details  # the worker's traceback
    with pytest.raises(TaskInputError, match=r"make squares: 1 of 6 tasks failed: item-3: ValueError: three") as e:
        outcome.raise_failures("make squares")  # a ValueError in a task is bad input, as the command reports it
    assert isinstance(e.value, ValueError) and "square_or_fail" in str(e.value.__cause__)  # the worker's traceback


@pytest.mark.parametrize("backend", ["sequential", "process"])
def test_every_backend_gives_the_same_outcome_and_names_the_failure(backend: str) -> None:
    seen: list[tuple[int, int]] = []
    outcome = _job(ExecutorConfig(backend, workers=2), progress=lambda d, t: seen.append((d, t)))
    _check(outcome)
    assert seen[0] == (0, 6) and seen[-1] == (6, 6) and len(seen) == 7


def test_a_small_job_on_a_local_ray_instance() -> None:
    pytest.importorskip("ray")
    _check(_job(ExecutorConfig("ray", workers=2)))


def test_done_tasks_are_skipped_and_results_arrive_in_task_order() -> None:
    recorded: dict[str, int] = {}
    tasks = [Task(f"t{x}", (x,)) for x in range(5)]
    outcome = run_tasks(
        plain_square,
        tasks,
        ExecutorConfig("process", workers=2),
        done=lambda t: -1 if t.args[0] % 2 == 0 else None,
        on_result=recorded.__setitem__,
    )
    assert outcome.skipped == ["t0", "t2", "t4"] and recorded == {"t1": 1, "t3": 9}
    assert list(outcome.results.items()) == [("t0", -1), ("t1", 1), ("t2", -1), ("t3", 9), ("t4", -1)]
    assert run_tasks(plain_square, [], ExecutorConfig()).results == {}


def test_a_failure_that_is_not_bad_input_is_a_plain_task_error() -> None:
    failures = [TaskFailure("a", "ValueError: x", bad_input=True), TaskFailure("b", "RuntimeError: y")]
    with pytest.raises(TaskError, match="2 of 3 tasks failed: a: ValueError: x; b: RuntimeError: y") as e:
        Outcome({"c": 1}, failures).raise_failures("job")
    assert not isinstance(e.value, ValueError)


def test_bad_settings_and_repeated_names_are_refused() -> None:
    with pytest.raises(ValueError, match="backend: 'threads'"):
        ExecutorConfig("threads")
    with pytest.raises(ValueError, match="workers: expected >= 1"):
        ExecutorConfig(workers=0)
    with pytest.raises(ValueError, match="ray_address"):
        ExecutorConfig("process", ray_address="auto")
    with pytest.raises(ValueError, match=r"repeated: \['a'\]"):
        run_tasks(plain_square, [Task("a", (1,)), Task("a", (2,))], ExecutorConfig("sequential"))


# ---------------------------------------------------------------------------------------------- SIGKILL
_KILLED_JOB = """
import os, sys, time
from irl_vla.common.parallel import ExecutorConfig, Task, run_tasks
from tests.common.test_parallel import sleep_and_report

out = sys.argv[2]
config = ExecutorConfig(sys.argv[1], workers=2)
run_tasks(sleep_and_report, [Task(str(i), (out, i)) for i in range(4)], config)
"""


def sleep_and_report(out: str, index: int) -> None:
    """Write this worker's pid, then sleep long enough to be killed."""
    Path(out, f"{index}.pid").write_text(str(os.getpid()))
    time.sleep(60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its new parent) is not running
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(") ")[-1].startswith("Z"))


@pytest.mark.parametrize("backend", ["process", pytest.param("ray", marks=pytest.mark.slow)])
def test_sigkill_of_the_parent_leaves_no_worker_running(backend: str, tmp_path: Path) -> None:
    if backend == "ray":
        pytest.importorskip("ray")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_JOB, backend, str(tmp_path)], cwd=root, env=env)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("*.pid"))) < 2:  # both workers are busy
        assert time.monotonic() < deadline and proc.poll() is None, "the job did not start"
        time.sleep(0.2)
    pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    watched = pids + [int(c) for c in children]
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in watched) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in watched if _alive(p)], "processes outlived their parent"


# ---------------------------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_while_a_worker_starts_stops_that_worker_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C between a worker's start and the pool recording it must not leave that worker computing."""
    from concurrent.futures import ProcessPoolExecutor

    spawn = ProcessPoolExecutor._spawn_process
    started: list[int] = []

    def interrupted_spawn(self: ProcessPoolExecutor) -> None:
        spawn(self)
        pid = list(self._processes)[-1]
        started.append(pid)
        if len(started) == 2:  # the first worker is busy; the interrupt lands before the pool records the second
            time.sleep(2.0)
            del self._processes[pid]
            raise KeyboardInterrupt

    monkeypatch.setattr(ProcessPoolExecutor, "_spawn_process", interrupted_spawn)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_tasks(sleep_and_report, [Task(str(i), (str(tmp_path), i)) for i in range(3)], ExecutorConfig(workers=2))
    assert time.monotonic() - t0 < 30, "stopping the job waited on its workers"
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started and not [p for p in started if _alive(p)], "a worker the pool never recorded is still running"
