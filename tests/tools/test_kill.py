"""SIGKILL of a running command leaves none of its processes behind (workers, multiprocessing's tracker, Ray)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        children = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True, text=True).stdout.split()
        for child in map(int, children):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


#: Ray's idle per-node agents: they see Ray's node process die within 2 s, then wait out Ray's own hard-coded
#: 60 s timeout reporting it to the (dead) control store, so they get a longer grace than anything that computes.
RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent", "dashboard/agent.py", "runtime_env/agent/main.py")
RAY_AGENT_GRACE = 90.0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _running(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return not stat.read_text().split(") ")[-1].startswith("Z")  # a zombie has exited
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("backend", ["process", "ray"])
def test_sigkill_of_generate_leaves_no_process_running(backend: str, tmp_path: Path) -> None:
    if backend == "ray":
        pytest.importorskip("ray")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "IRL_VLA_OUTPUT_ROOT": str(tmp_path / "out")}
    cmd = [
        sys.executable, "-m", "tools.cli", "generate", f"paths.data_root={tmp_path}", "generate.only=[synth_navtest]",
        "generate.splits.synth_navtest.logs_per_family=4", "generate.workers=2", f"generate.backend={backend}",
        "generate.progress=false",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    seen: set[int] = set()
    while len(seen) < 3:  # two workers (and a tracker or Ray's own processes) are up
        assert proc.poll() is None and time.monotonic() < deadline, "the command did not start its workers"
        seen |= _descendants(proc.pid)
        time.sleep(0.2)
    time.sleep(1.0)
    seen |= _descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    agents = {p for p in seen if any(name in _cmdline(p) for name in RAY_AGENTS)}  # (renamed once started)
    for watched, grace in ((seen - agents, 30.0), (agents, RAY_AGENT_GRACE)):
        deadline = time.monotonic() + grace
        while [p for p in watched if _running(p)] and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {p: _cmdline(p) for p in watched if _running(p)}
        assert not left, f"processes of the killed command are still running after {grace:.0f} s: {left}"
