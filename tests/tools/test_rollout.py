"""``irl-vla rollout`` through the CLI on the embedded world (tiny routes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.cli import main
from tools.rollout import rewrite_args

TINY = ["sim.route_length=30", "sim.time_limit=6", "rollout.runner.sub_scores=false", "run.progress=false"]


def test_short_forms_mean_rollout_keys() -> None:
    args = ["viz=true", "record=a.mp4", "routes=[cut_in/0]", "episodes=2", "agent=expert", "agent=constant_velocity"]
    assert rewrite_args(args) == [
        "rollout.viz=true",
        "rollout.record=a.mp4",
        "rollout.routes=[cut_in/0]",
        "rollout.episodes=2",
        "rollout.agent=expert",
        "agent=constant_velocity",  # a real agent option selects its settings group
    ]


def test_rollout_prints_the_table_and_writes_statistics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = [
        "rollout",
        *TINY,
        "routes=[stop_and_go/0,parked_cars/0]",
        "agent=constant_velocity",
        f"rollout.output_dir={out}",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "stop_and_go/0" in printed and "parked_cars/0" in printed and "mean of 2" in printed
    assert f"wrote {out / 'statistics.json'}" in printed
    stats = json.loads((out / "statistics.json").read_text())
    ids = [r["route_id"] for r in stats["_checkpoint"]["records"]]
    assert ids == ["RouteScenario_stop_and_go/0_rep0", "RouteScenario_parked_cars/0_rep0"]
    assert (out / "records" / "stop_and_go_0_rep0.npz").is_file()


def test_rollout_refuses_unknown_routes_and_privileged_agents(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", *TINY, "routes=[nowhere/0]"]) == 2
    assert "no route 'nowhere/0'" in capsys.readouterr().err
    assert main(["rollout", *TINY, "routes=[cut_in/0]", "agent=human"]) == 2
    assert "privileged" in capsys.readouterr().err
