"""The console script: command list, unknown commands, resolved config, a tiny benchmark run."""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "bench.num_poses=100",
    "bench.num_trajectories=8",
    "bench.num_rows=100",
    "bench.num_blocks=3",
    "bench.num_queries=10",
    "repeats=1",
]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert f"  {command} " in out


def test_unknown_command_lists_commands_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err and "bench" in err


def test_cfg_job_prints_resolved_config(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRL_VLA_DATA_ROOT", "my_data")
    assert main(["bench", "core", "--cfg", "job", "repeats=3"]) == 0
    out = capsys.readouterr().out
    assert "data_root: my_data" in out and "repeats: 3" in out and "num_poses: 1000000" in out


def test_bad_override_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "core", "no_such_key=1"]) != 0
    assert main(["bench", "core", "bench.num_rows=0", "repeats=1"]) != 0


def test_bench_core_prints_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "bench.jsonl"
    assert main(["bench", "core", *TINY, f"output={out_file}"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    names = {rec.get("name") for rec in lines}
    assert {"se2_absolute_to_relative", "aggregate_numpy", "map_lanes_containing"} <= names
    assert all(rec["median_s"] > 0 for rec in lines if rec["suite"] == "core")
    assert len(out_file.read_text().splitlines()) == len(lines)


def test_readme_and_ci_run_the_same_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    line = next(ln for ln in ci.splitlines() if ln.startswith("TEST_COMMAND="))
    command = line.split("=", 1)[1].strip().strip("'")
    assert "python -m pytest" in command
    assert command in (REPO / "README.md").read_text()


@pytest.mark.slow
def test_console_script_end_to_end(tmp_path: Path) -> None:
    exe = shutil.which("irl-vla") or str(Path(sys.executable).parent / "irl-vla")
    env = {"IRL_VLA_OUTPUT_ROOT": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
    res = subprocess.run([exe, "bench", "core", *TINY], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert any(json.loads(line).get("name") == "map_route_centerline_40_blocks" for line in res.stdout.splitlines())
    res = subprocess.run([exe, "no-such-command"], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 2 and "unknown command" in res.stderr


def test_generate_then_preview_through_the_cli(tmp_path, capsys) -> None:
    from tools.cli import main

    sizes = [f"generate.splits.{s}.logs_per_family=1" for s in ("synth_navtrain", "synth_navtest", "synth_navhard")]
    args = [
        f"paths.data_root={tmp_path}",
        "generate.families=[cyclist]",
        "generate.workers=1",
        "generate.progress=false",
    ]
    assert main(["generate", *args, *sizes, "generate.num_log_frames=30"]) == 0
    out = capsys.readouterr().out
    assert '"split": "synth_navhard"' in out and '"logs": 1' in out
    # the training split's stage-2 scenes, one pair per scene (the default VLA trains on them); navhard's: 6
    pairs = {
        split: {len(g["pairs"]) for g in json.loads((tmp_path / split / "two_stage.json").read_text())["groups"]}
        for split in ("synth_navtrain_two_stage", "synth_navhard_two_stage")
    }
    assert pairs["synth_navtrain_two_stage"] == {1} and max(pairs["synth_navhard_two_stage"]) == 6, pairs
    assert main(["preview", f"paths.data_root={tmp_path}", f"out_dir={tmp_path / 'png'}"]) == 0
    pngs = sorted(p.name for p in (tmp_path / "png").glob("*.png"))
    assert len(pngs) == 6 and any(p.endswith("_bev.png") for p in pngs) and any(p.endswith("_lidar.png") for p in pngs)
    assert main(["generate", f"paths.data_root={tmp_path}", "generate.only=[synth_navbad]"]) != 0


def _suites(text: str, where: str) -> list[str]:
    match = re.search(r"suites: ([a-z_, \n]+?)\)", text)
    assert match, f"{where}: no '(... suites: a, b, ...)' list"
    return [s.strip() for s in match.group(1).replace("\n", " ").split(",")]


def test_bench_suites_are_listed_alike_in_readme_cli_and_docs() -> None:
    from tools.run_bench import SUITES

    readme = next(ln for ln in (REPO / "README.md").read_text().splitlines() if ln.startswith("irl-vla bench core "))
    listed = {
        "README": _suites(readme, "README.md"),
        "cli": _suites(COMMANDS["bench"][1], "tools/cli.py"),
        "docs/benchmarks.md": _suites((REPO / "docs" / "benchmarks.md").read_text(), "docs/benchmarks.md"),
        "docs/cli.md": _suites((REPO / "docs" / "cli.md").read_text(), "docs/cli.md"),
    }
    assert all(suites == list(SUITES) for suites in listed.values()), listed


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_lists_only_the_commands_groups_and_explains_its_keys(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    spec = importlib.import_module(COMMANDS[command][0]).COMMAND
    groups = out.split("Config groups (group=option):")[1].split("\n\n")[0] if "Config groups" in out else ""
    shown = {line.split(":")[0].strip() for line in groups.splitlines() if line.strip()}
    assert shown == set(spec.groups())  # its own, as its yaml composes them
    assert shown <= {"paths", "agent", "aggregation", "bench", "model", "train", "recipe", "sim", "experiment"}
    prefix = f"{spec.key}." if spec.key else ""
    for field in dataclasses.fields(spec.schema):
        assert f"  {prefix}{field.name} = " in out  # every key with its default ...
    described = [line for line in out.splitlines() if line.startswith("      ")]
    assert len(described) >= len(dataclasses.fields(spec.schema))  # ... and what it means


def test_help_of_eval_names_its_groups_not_others(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--help"]) == 0
    out = capsys.readouterr().out
    assert "aggregation: epdms | pdms" in out and "agent: " in out and "eval.split = synth_navtest" in out
    assert "bench:" not in out and "model:" not in out
