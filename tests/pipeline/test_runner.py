"""Skip and resume of ``irl-vla pipeline``'s steps (done-markers), with a fake command in place of ``irl-vla``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from irl_vla.pipeline.config import PipelineConfig
from irl_vla.pipeline.markers import Markers
from irl_vla.pipeline.runner import StepFailed, run_steps
from irl_vla.pipeline.steps import Layout, Step, plan

#: A fake command: writes ``out`` (with ``v``), appends its command name to ``calls``, exits with ``fail``.
FAKE = (
    "import sys, pathlib\n"
    "a = dict(x.split('=', 1) for x in sys.argv[2:])\n"
    "open(a['calls'], 'a').write(sys.argv[1] + '\\n')\n"
    "if a.get('fail', '0') != '0': sys.exit(int(a['fail']))\n"
    "p = pathlib.Path(a['out']); p.parent.mkdir(parents=True, exist_ok=True); p.write_text(a.get('v', ''))\n"
)
PROGRAM = (sys.executable, "-c", FAKE)


def _steps(tmp: Path, v: dict[str, str] | None = None, fail: str = "") -> list[Step]:
    """a -> b -> c, and d independent; ``v`` changes a step's settings, ``fail`` makes one fail."""
    v = v or {}
    calls = tmp / "calls.txt"
    out = {n: tmp / "out" / n for n in "abcd"}

    def step(name: str, depends: tuple[str, ...]) -> Step:
        args = (f"out={out[name]}", f"calls={calls}", f"v={v.get(name, '0')}", f"fail={int(name == fail)}")
        return Step(name, name, args, depends, (out[name],), (out[name],))

    return [step("a", ()), step("b", ("a",)), step("c", ("b",)), step("d", ())]


def _run(tmp: Path, steps: list[Step], **kwargs: Any) -> list[str]:
    """Run the steps (``kwargs`` to ``run_steps``); the commands that actually ran, in order."""
    calls = tmp / "calls.txt"
    calls.unlink(missing_ok=True)
    run_steps(steps, tmp / "steps", tmp / "logs", program=PROGRAM, echo=lambda _: None, **kwargs)
    return calls.read_text().split() if calls.exists() else []


def test_second_run_skips_every_finished_step(tmp_path: Path) -> None:
    assert _run(tmp_path, _steps(tmp_path)) == ["a", "b", "c", "d"]
    results = run_steps(_steps(tmp_path), tmp_path / "steps", tmp_path / "logs", program=PROGRAM, echo=lambda _: None)
    assert [r.status for r in results] == ["skipped"] * 4
    assert all(r.wall_s > 0 for r in results)  # the recorded wall time of the run that made the outputs
    marker = json.loads((tmp_path / "steps" / "b.done.json").read_text())
    assert marker["step"] == "b" and set(marker["inputs"]) == {"a"}


def test_changed_settings_rerun_the_step_and_what_depends_on_it(tmp_path: Path) -> None:
    _run(tmp_path, _steps(tmp_path))
    assert _run(tmp_path, _steps(tmp_path, {"b": "1"})) == ["b", "c"]
    assert (tmp_path / "out" / "b").read_text() == "1"
    assert _run(tmp_path, _steps(tmp_path, {"b": "1"})) == []
    assert _run(tmp_path, _steps(tmp_path, {"a": "2", "b": "1"})) == ["a", "b", "c"]


def test_an_edited_config_file_reruns_the_steps_whose_composed_settings_it_changes(tmp_path: Path) -> None:
    # same command lines, but b's composed settings differ (as after an edit of the yaml it reads)
    _run(tmp_path, _steps(tmp_path), settings=lambda s: "lr: 0.1")
    assert _run(tmp_path, _steps(tmp_path), settings=lambda s: "lr: 0.1") == []
    edited = _run(tmp_path, _steps(tmp_path), settings=lambda s: "lr: 0.2" if s.name == "b" else "lr: 0.1")
    assert edited == ["b", "c"]


def test_rerun_runs_the_named_steps_and_their_dependents_again(tmp_path: Path) -> None:
    _run(tmp_path, _steps(tmp_path))
    assert _run(tmp_path, _steps(tmp_path), rerun=["b"]) == ["b", "c"]
    assert _run(tmp_path, _steps(tmp_path)) == []  # the re-run's markers are valid again
    with pytest.raises(ValueError, match=r"unknown steps \['z'\]"):
        _run(tmp_path, _steps(tmp_path), rerun=["z"])


def test_missing_output_reruns_the_step(tmp_path: Path) -> None:
    _run(tmp_path, _steps(tmp_path))
    (tmp_path / "out" / "d").unlink()
    assert _run(tmp_path, _steps(tmp_path)) == ["d"]


def test_failed_step_names_its_log_and_a_rerun_resumes_from_it(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match=r"pipeline step b failed \(exit status 1\); its log .*b\.log"):
        _run(tmp_path, _steps(tmp_path, fail="b"))
    assert not (tmp_path / "steps" / "b.done.json").exists()
    assert (tmp_path / "steps" / "b.started.json").exists()
    assert _run(tmp_path, _steps(tmp_path)) == ["b", "c", "d"]  # a is skipped


def test_killed_step_keeps_its_partial_outputs_with_the_same_settings_and_clears_them_otherwise(
    tmp_path: Path,
) -> None:
    steps = _steps(tmp_path)
    _run(tmp_path, steps)
    markers = Markers(tmp_path / "steps")
    markers.done_path("c").unlink()  # as if killed while running: started-marker, partial output
    markers.started_path("c").write_text((tmp_path / "steps" / "b.done.json").read_text())  # other identity
    partial = tmp_path / "out" / "c"
    partial.write_text("partial")
    seen: list[str] = []
    noop = (sys.executable, "-c", "import sys")  # writes nothing: the step is then refused for its missing output
    with pytest.raises(StepFailed, match=r"pipeline step c: finished without writing .*out/c"):
        run_steps(steps, tmp_path / "steps", tmp_path / "logs", program=noop, echo=seen.append)
    assert any("c: settings, inputs or outputs changed" in s for s in seen)
    assert not partial.exists()  # cleared before the re-run


def test_killed_step_with_the_same_settings_resumes_without_clearing(tmp_path: Path) -> None:
    steps = _steps(tmp_path)
    _run(tmp_path, steps)
    markers = Markers(tmp_path / "steps")
    done = json.loads(markers.done_path("c").read_text())
    markers.done_path("c").unlink()
    markers.started_path("c").write_text(json.dumps(done))
    partial = tmp_path / "out" / "c"
    partial.write_text("partial")
    seen: list[str] = []
    run_steps(
        steps, tmp_path / "steps", tmp_path / "logs", program=(sys.executable, "-c", "import sys"), echo=seen.append
    )
    assert any("c: resuming a killed run" in s for s in seen)
    assert partial.read_text() == "partial"  # kept for the command to resume from
    assert markers.done_path("c").exists() and not markers.started_path("c").exists()


def test_a_dependency_that_does_not_run_before_is_refused(tmp_path: Path) -> None:
    steps = _steps(tmp_path)
    with pytest.raises(ValueError, match=r"pipeline step b: depends on \['a'\]"):
        run_steps(steps[1:], tmp_path / "steps", tmp_path / "logs", program=PROGRAM, echo=lambda _: None)


def test_plan_orders_dependencies_and_writes_only_inside_the_experiment(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "w", tmp_path / "w" / "data")
    steps = plan(PipelineConfig(extra={"il": ["train.batch_size=2"]}), layout)
    names = [s.name for s in steps]
    assert len(names) == len(set(names))
    for i, s in enumerate(steps):
        assert set(s.depends) <= set(names[:i]), s.name
        assert all(tmp_path / "w" in p.parents for p in (*s.outputs, *s.clean)), s.name
        assert f"paths.data_root={layout.data}" in s.args
    il = next(s for s in steps if s.name == "il")
    assert il.args[-1] == "train.batch_size=2"  # extra overrides come last, so they win
    evals = [s.name for s in steps if s.command == "eval"]
    assert len(evals) == 10  # baselines and 4 policies on 2 splits


#: A fake command that sleeps ``sleep`` seconds and records ``<name> <start> <end>`` (wall clock) in ``calls``.
TIMED = (
    "import sys, time, pathlib\n"
    "a = dict(x.split('=', 1) for x in sys.argv[2:])\n"
    "t0 = time.time()\n"
    "if a.get('fail', '0') != '0': sys.exit(3)\n"
    "time.sleep(float(a['sleep']))\n"
    "p = pathlib.Path(a['out']); p.parent.mkdir(parents=True, exist_ok=True); p.write_text('x')\n"
    "open(a['calls'], 'a').write(f'{sys.argv[1]} {t0} {time.time()}\\n')\n"
)


def _run_parallel(tmp: Path, steps: list, echo: object) -> list:
    """``run_steps`` of ``steps`` with the timed fake command, two at a time."""
    return run_steps(steps, tmp / "steps", tmp / "logs", program=(sys.executable, "-c", TIMED), echo=echo, parallel=2)


def _timed_steps(tmp: Path, sleeps: dict[str, float], depends: dict[str, tuple[str, ...]], fail: str = "") -> list:
    calls = tmp / "calls.txt"
    return [
        Step(
            n,
            n,
            (f"out={tmp / 'out' / n}", f"calls={calls}", f"sleep={t}", f"fail={int(n == fail)}"),
            depends.get(n, ()),
            (tmp / "out" / n,),
            (tmp / "out" / n,),
        )
        for n, t in sleeps.items()
    ]


def test_parallel_steps_overlap_and_a_dependent_step_waits_for_all_its_inputs(tmp_path: Path) -> None:
    steps = _timed_steps(tmp_path, {"a": 1.0, "b": 1.0, "c": 0.0}, {"c": ("a", "b")})
    results = _run_parallel(tmp_path, steps, lambda _: None)
    assert [r.name for r in results] == ["a", "b", "c"] and all(r.status == "ran" for r in results)
    spans = {
        n: (float(s), float(e))
        for n, s, e in (line.split() for line in (tmp_path / "calls.txt").read_text().splitlines())
    }
    assert spans["a"][0] < spans["b"][1] and spans["b"][0] < spans["a"][1]  # a and b ran at the same time
    assert spans["c"][0] >= max(spans["a"][1], spans["b"][1])
    again = _run_parallel(tmp_path, steps, lambda _: None)
    assert [r.status for r in again] == ["skipped"] * 3


def test_a_failing_step_stops_the_parallel_ones_and_a_rerun_resumes_them(tmp_path: Path) -> None:
    import time

    steps = _timed_steps(tmp_path, {"slow": 30.0, "bad": 0.0}, {}, fail="bad")
    seen: list[str] = []
    start = time.monotonic()
    with pytest.raises(StepFailed, match=r"pipeline step bad failed \(exit status 3\)"):
        _run_parallel(tmp_path, steps, seen.append)
    assert time.monotonic() - start < 20  # the 30 s step was stopped, not waited for
    assert any("slow: stopped (a rerun resumes it" in s for s in seen)
    markers = Markers(tmp_path / "steps")
    assert markers.started_path("slow").exists() and not markers.done_path("slow").exists()


def test_parallel_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parallel steps must be >= 1"):
        run_steps(_steps(tmp_path), tmp_path / "steps", tmp_path / "logs", program=PROGRAM, parallel=0)


def test_a_step_that_finished_beside_a_failing_one_keeps_its_done_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # both exit within one (long) poll interval; the failing one is met first, the other is collected on the way out
    from irl_vla.pipeline import runner

    monkeypatch.setattr(runner, "POLL_S", 8.0)
    steps = _timed_steps(tmp_path, {"bad": 0.0, "fast": 0.0}, {}, fail="bad")
    seen: list[str] = []
    with pytest.raises(StepFailed, match="pipeline step bad failed"):
        _run_parallel(tmp_path, steps, seen.append)
    assert Markers(tmp_path / "steps").done_path("fast").exists()
    assert "[pipeline] fast: done" in seen
