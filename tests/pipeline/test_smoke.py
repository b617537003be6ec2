"""``irl-vla pipeline experiment=smoke`` end to end: killed in the middle, resumed, every row of the table filled."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from irl_vla.pipeline.results import ROWS
from irl_vla.pipeline.steps import EVAL_SPLITS

ROOT = Path(__file__).resolve().parents[2]
#: The step after which the first run is killed, and the steps that finished by then.
KILL_AFTER = "il"
FINISHED = ("generate", "cache_train", "cache_test", "il")
#: Limit of each run [s]: the smoke experiment takes about 4 min of CPU, but 13 to 20 min of wall on a 2-core
#: machine at load 10 to 17.
TIMEOUT_S = 2400


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "tools.cli", "pipeline", "experiment=smoke", f"paths.output_root={out}"]


def _run(out: Path) -> subprocess.CompletedProcess[str]:
    """Run the smoke pipeline to its end; on a timeout its whole process group (its running step) is killed."""
    process = subprocess.Popen(
        _command(out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.slow
def test_smoke_pipeline_killed_then_resumed(tmp_path: Path) -> None:
    work = tmp_path / "pipeline" / "smoke"
    marker = work / "steps" / f"{KILL_AFTER}.done.json"
    first = subprocess.Popen(
        _command(tmp_path), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not marker.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert marker.exists(), f"the first run stopped (status {first.poll()}) before {KILL_AFTER} finished"
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)  # the pipeline and the step it was running, as a hard kill
        first.wait()
    assert not (work / "results.json").exists()

    second = _run(tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    for step in FINISHED:
        assert f"[pipeline] {step}: done before" in second.stdout, step
    assert "[pipeline] ppo: " in second.stdout and "[pipeline] ppo: done before" not in second.stdout

    results = json.loads((work / "results.json").read_text())
    for split in EVAL_SPLITS:
        rows = results["splits"][split]
        assert list(rows) == list(ROWS)
        for row, r in rows.items():
            assert 0.0 <= r["epdms"] <= 1.0, (split, row)
            assert set(r["sub_scores"]) >= {"NC", "DAC", "DDC", "TLC", "EP", "TTC", "LK", "HC", "EC"}
    for row in ("stage1", "stage3"):
        assert math.isfinite(results["learned_reward"][row]["learned_reward"])
    for path in results["submissions"]:
        assert Path(path).is_file()
        assert f"submission {path}" in second.stdout
    assert Path(results["report"]).is_file()
    statuses = {s["name"]: s["status"] for s in results["steps"]}
    assert all(statuses[s] == "skipped" for s in FINISHED) and statuses["submit_synth_navhard"] == "ran"
    assert all(s["wall_s"] > 0 for s in results["steps"])
    table = (work / "results.md").read_text()
    assert table in second.stdout and "| stage 3 (PPO) |" in table and "| ppo |" in table

    third = _run(tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count("done before") == len(statuses)  # nothing re-runs
