"""One parallel executor for the suite's task loops: skip what is done, run the rest, collect every outcome.

A job is a list of named ``Task`` s and one picklable, module-level function. ``run_tasks`` asks ``done`` which
tasks already have a result (a resumed run), runs the others on a backend, and returns an ``Outcome`` holding a
result or a failure for every task, each named: nothing is dropped, and one failing task never hides the others.

Backends (``ExecutorConfig.backend``):

- ``sequential``: in this process, in order (debugging, tiny jobs).
- ``process`` (default): a pool of ``workers`` spawned processes; with one worker or one task it runs in this
  process. Each worker exits when this process dies, even by SIGKILL: it asks the kernel for SIGKILL on its
  parent's death (``prctl(PR_SET_PDEATHSIG)`` on Linux) and also polls its parent's pid.
- ``ray``: Ray tasks, on a local Ray instance with ``workers`` CPUs (``ray_address`` unset; its processes share
  this process's fate) or on a running cluster (``ray_address``: ``"auto"`` or ``"ray://<head>:10001"``, with the
  suite installed on its nodes). Ray comes with the ``dist`` extra.

Workers ignore Ctrl-C (the parent stops them and says what was finished); tasks write their files atomically, so
stopping a worker mid-task leaves nothing half-written.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass, field
from multiprocessing import active_children, get_context
from typing import Any, Generic, TypeVar

R = TypeVar("R")

#: The executor's backends.
BACKENDS = ("sequential", "process", "ray")
#: How often a worker checks that its parent is alive [s] (where the kernel cannot tell it).
PARENT_POLL_INTERVAL = 0.5
#: Failures listed one by one in a ``TaskError`` message (the rest are counted).
LISTED_FAILURES = 10
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class ExecutorConfig:
    """Where a job's tasks run.

    Attributes:
        backend: ``sequential`` | ``process`` | ``ray``.
        workers: processes (``process``), or CPUs of a local Ray instance (``ray``).
        ray_address: ``None`` starts a local Ray instance; otherwise the address of a running cluster.
    """

    backend: str = "process"
    workers: int = 2
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"ExecutorConfig.backend: {self.backend!r} is not one of {list(BACKENDS)}")
        if not self.workers >= 1:
            raise ValueError(f"ExecutorConfig.workers: expected >= 1, got {self.workers}")
        if self.ray_address is not None and self.backend != "ray":
            raise ValueError(f"ExecutorConfig.ray_address: set ({self.ray_address!r}) but backend is {self.backend}")


@dataclass(frozen=True)
class Task:
    """One unit of work: a unique name (shown in failures) and the arguments of the job's function."""

    name: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised.

    Attributes:
        name: the task's name.
        error: ``"<ExceptionType>: <message>"``.
        details: the traceback, as text (the worker's, for remote tasks).
        bad_input: the exception says the task's input is wrong (``BAD_INPUT``), not the code.
    """

    name: str
    error: str
    details: str = ""
    bad_input: bool = False


#: Exceptions that mean a task's input (data, file, setting) is wrong.
BAD_INPUT: tuple[type[Exception], ...] = (ValueError, KeyError, OSError)


class RemoteTraceback(Exception):
    """The tracebacks of failed tasks, as text: the cause of a ``TaskError``, shown with the error's traceback."""

    def __str__(self) -> str:
        return str(self.args[0])


class TaskError(RuntimeError):
    """Some tasks of a job failed; the message names each (up to ``LISTED_FAILURES``) with its error."""

    def __init__(self, what: str, failures: list[TaskFailure], total: int) -> None:
        self.failures = failures
        listed = "; ".join(f"{f.name}: {f.error}" for f in failures[:LISTED_FAILURES])
        more = f"; and {len(failures) - LISTED_FAILURES} more" if len(failures) > LISTED_FAILURES else ""
        super().__init__(f"{what}: {len(failures)} of {total} tasks failed: {listed}{more}")


class TaskInputError(TaskError, ValueError):
    """A ``TaskError`` where every failure is bad input (a command reports it as such)."""


@dataclass
class Outcome(Generic[R]):
    """What became of every task of a job.

    Attributes:
        results: result per task name, in task order: tasks done before (``done``) and tasks run now.
        failures: the tasks that raised, in task order.
        skipped: names of the tasks that were already done.
    """

    results: dict[str, R] = field(default_factory=dict)
    failures: list[TaskFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Tasks of the job."""
        return len(self.results) + len(self.failures)

    def raise_failures(self, what: str) -> Outcome[R]:
        """Raise ``TaskError`` naming every failed task (``what``: the job, for the message); else return self."""
        if self.failures:
            kind = TaskInputError if all(f.bad_input for f in self.failures) else TaskError
            shown = self.failures[:LISTED_FAILURES]
            cause = RemoteTraceback("".join(f"\n--- task {f.name}\n{f.details}" for f in shown))
            raise kind(what, self.failures, self.total) from cause
        return self


# ---------------------------------------------------------------------------------------------- in a worker
_state: dict[str, Any] = {}  # per-process state of jobs with a ``setup``, by job key


def watch_parent(parent_pid: int) -> None:
    """End this process (SIGKILL) as soon as ``parent_pid`` is no longer its parent.

    Linux delivers SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); everywhere, a daemon thread also polls
    the parent pid every ``PARENT_POLL_INTERVAL`` seconds.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the polling below still applies
    if os.getppid() != parent_pid:  # the parent died before the watch began
        os._exit(1)

    def poll() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            threading.Event().wait(PARENT_POLL_INTERVAL)

    threading.Thread(target=poll, name="parent-watch", daemon=True).start()


def _init_worker(parent_pid: int) -> None:
    """Process-pool worker start: follow the parent's fate and leave Ctrl-C to it."""
    watch_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(fn: Callable[..., Any], key: str, setup: Callable[[], Any] | None, args: tuple[Any, ...]) -> tuple:
    """Run one task where it landed; returns ``(True, result)`` or ``(False, error, traceback, bad_input)``.

    Exceptions are caught here so that the failure reaches the parent as text, named, even when the exception
    object itself could not be pickled.
    """
    try:
        if setup is None:
            return True, fn(*args)
        if key not in _state:
            _state.clear()  # one job's state at a time
            _state[key] = setup()
        return True, fn(_state[key], *args)
    except Exception as e:
        return False, f"{type(e).__name__}: {e}", traceback.format_exc(), isinstance(e, BAD_INPUT)


# ---------------------------------------------------------------------------------------------- the job
def run_tasks(
    fn: Callable[..., R],
    tasks: Sequence[Task],
    config: ExecutorConfig,
    *,
    done: Callable[[Task], R | None] | None = None,
    setup: Callable[[], Any] | None = None,
    on_result: Callable[[str, R], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome[R]:
    """Run ``fn`` over ``tasks``: skip what is done, run the rest on ``config.backend``, collect every outcome.

    Args:
        fn: a module-level function (picklable by reference): ``fn(*task.args)``, or ``fn(state, *task.args)``
            with ``setup``.
        tasks: the job, with unique names.
        config: backend and workers.
        done: the recorded result of a task finished before, or ``None`` to run it (called here, in order).
        setup: builds per-worker state once per worker process (e.g. opening a reader); picklable.
        on_result: called here with each new result as it arrives (e.g. to record progress durably).
        progress: ``(done, total)`` callback.

    Returns:
        The outcome: a result or a failure per task. Call ``raise_failures`` to turn failures into an error.

    Raises:
        ValueError: when two tasks share a name.
    """
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"run_tasks: task names must be unique; repeated: {repeated[:5]}")
    finished: dict[str, R] = {}
    skipped, todo = [], []
    for task in tasks:
        previous = done(task) if done is not None else None
        if previous is None:
            todo.append(task)
        else:
            finished[task.name] = previous
            skipped.append(task.name)
    failed: dict[str, TaskFailure] = {}
    if progress is not None:
        progress(len(finished), len(tasks))

    def record(task: Task, reply: tuple) -> None:
        if reply[0]:
            finished[task.name] = reply[1]
            if on_result is not None:
                on_result(task.name, reply[1])
        else:
            failed[task.name] = TaskFailure(task.name, *reply[1:])
        if progress is not None:
            progress(len(finished) + len(failed), len(tasks))

    with closing(_replies(fn, todo, config, uuid.uuid4().hex, setup)) as replies:
        for task, reply in replies:
            record(task, reply)
    return Outcome({n: finished[n] for n in names if n in finished}, [failed[n] for n in names if n in failed], skipped)


def _replies(
    fn: Callable[..., Any], todo: list[Task], config: ExecutorConfig, key: str, setup: Callable[[], Any] | None
) -> Iterator[tuple[Task, tuple]]:
    """``(task, reply)`` pairs as tasks finish on the configured backend."""
    if not todo:
        return
    if config.backend == "ray":
        yield from _ray_replies(fn, todo, config, key, setup)
    elif config.backend == "process" and config.workers > 1 and len(todo) > 1:
        yield from _process_replies(fn, todo, config.workers, key, setup)
    else:
        try:
            for task in todo:
                yield task, _call(fn, key, setup, task.args)
        finally:
            _state.pop(key, None)


def _process_replies(
    fn: Callable[..., Any], todo: list[Task], workers: int, key: str, setup: Callable[[], Any] | None
) -> Iterator[tuple[Task, tuple]]:
    before = set(active_children())
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(todo)),
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    clean = False
    try:
        futures: dict[Future, Task] = {pool.submit(_call, fn, key, setup, t.args): t for t in todo}
        pending = set(futures)
        while pending:
            ready, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                task = futures[future]
                try:
                    reply = future.result()
                except Exception as e:  # the worker died (killed, out of memory) or the reply could not be sent
                    reply = (False, f"{type(e).__name__}: {e}", "".join(traceback.format_exception(e)))
                yield task, reply
        clean = True
    finally:
        if not clean:  # interrupted (Ctrl-C) or the caller failed: stop the workers now, not after their tasks
            # A Ctrl-C can land while the pool is starting a worker, after the process began but before the pool
            # recorded it; such a worker would go on computing and keep ``shutdown`` waiting, so every process
            # started since this job began is stopped, recorded by the pool or not.
            started = set(getattr(pool, "_processes", {}).values()) | (set(active_children()) - before)
            for process in started:
                process.kill()
        pool.shutdown(wait=True, cancel_futures=True)


def _ray_replies(
    fn: Callable[..., Any], todo: list[Task], config: ExecutorConfig, key: str, setup: Callable[[], Any] | None
) -> Iterator[tuple[Task, tuple]]:
    try:
        import ray
    except ImportError:
        raise ValueError("executor backend 'ray' needs Ray: pip install 'irl-vla[dist]' (or ray>=2.9)") from None
    if not ray.is_initialized():
        if config.ray_address is None:
            ray.init(num_cpus=config.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=config.ray_address, log_to_driver=False, configure_logging=False)
    remote = ray.remote(num_cpus=1, max_retries=0)(_call)
    setup_ref = ray.put(setup)
    refs = {remote.remote(fn, key, setup_ref, t.args): t for t in todo}
    pending = list(refs)
    clean = False
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    reply = ray.get(ref)
                except Exception as e:  # the worker died or the task could not run
                    reply = (False, f"{type(e).__name__}: {e}", "".join(traceback.format_exception(e)))
                yield refs[ref], reply
        clean = True
    finally:
        if not clean:
            for ref in pending:
                ray.cancel(ref, force=True)
