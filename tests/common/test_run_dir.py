"""Run directories: one per run even when two start in the same second; ``latest`` replaced atomically."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from irl_vla.common.command import Command
from irl_vla.common.config import RunConfig
from irl_vla.common.run_dir import LATEST, create_run_dir, point_latest

NOW = datetime(2025, 1, 2, 3, 4, 5)


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path: Path) -> None:
    runs = [create_run_dir(tmp_path / "eval" / "split", NOW) for _ in range(3)]
    assert [r.name for r in runs] == ["2025-01-02_03-04-05", "2025-01-02_03-04-05_2", "2025-01-02_03-04-05_3"]
    assert all(r.is_dir() for r in runs)


def test_latest_points_at_the_last_finished_run(tmp_path: Path) -> None:
    first, second = create_run_dir(tmp_path, NOW), create_run_dir(tmp_path, NOW)
    link = point_latest(first)
    assert link == tmp_path / LATEST and os.readlink(link) == first.name  # relative: the tree can move
    point_latest(second)
    assert link.resolve() == second.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, second.name, LATEST]  # no temporary left


def test_latest_never_replaces_a_real_file(tmp_path: Path) -> None:
    (tmp_path / LATEST).write_text("mine")
    with pytest.raises(FileExistsError, match="latest"):
        point_latest(create_run_dir(tmp_path))
    assert (tmp_path / LATEST).read_text() == "mine"


def test_a_run_holds_its_resolved_config_and_prints_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = Command("probe_command", RunConfig, key="probe", split_key="backend")
    cfg = OmegaConf.create({"paths": {"output_root": str(tmp_path)}, "probe": {"backend": "${paths.output_root}"}})
    run = command.start(cfg, RunConfig(backend="sequential"))
    assert run.dir.parent == tmp_path / "probe-command" / "sequential"
    assert yaml.safe_load((run.dir / "config.yaml").read_text())["probe"]["backend"] == str(tmp_path)  # resolved
    (run.dir / "out.txt").write_text("x")
    run.finish([run.dir / "out.txt"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == [f"wrote {run.dir / 'config.yaml'}", f"wrote {run.dir / 'out.txt'}"]
    assert (run.dir.parent / LATEST).resolve() == run.dir.resolve()
