"""``irl-vla eval`` end to end on a tiny generated split: reports, NAVSIM columns, failures reported."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from irl_vla.scoring.aggregation import EPDMS, PDMS, aggregate
from irl_vla.scoring.sub_scores import SubScore
from tools.cli import main


def _generate(root: Path, families: str, logs: int, frames: int) -> None:
    args = [
        f"paths.data_root={root}",
        f"generate.families=[{families}]",
        "generate.only=[synth_navtest]",
        f"generate.splits.synth_navtest.logs_per_family={logs}",
        f"generate.num_log_frames={frames}",
        "generate.workers=1",
        "generate.progress=false",
    ]
    assert main(["generate", *args]) == 0


def _eval(root: Path, *extra: str) -> dict[str, dict]:
    args = [f"paths.data_root={root}", f"paths.output_root={root / 'out'}", "eval.workers=1", "eval.progress=false"]
    assert main(["eval", *args, *extra]) == 0
    out = root / "out" / "eval" / "synth_navtest" / "latest"
    return {a.name: json.loads((a / "summary.json").read_text()) for a in out.iterdir() if a.is_dir()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    _generate(root, "lead_vehicle", 1, 20)
    return root


def test_eval_writes_navsim_columns_and_summaries(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summaries = _eval(tiny)
    printed = capsys.readouterr().out
    assert "EPDMS" in printed and "pdm_closed" in printed
    rows = list(csv.DictReader((tiny / "out/eval/synth_navtest/latest/human/scores.csv").open()))
    assert len(SubScore) == 9 and {s.navsim_name for s in SubScore} <= set(rows[0])  # every NAVSIM column
    assert rows[-1]["token"] == "average_all_frames"
    human = summaries["human"]
    assert human["num_failed"] == 0 and human["num_scenes"] == len(rows) - 1
    assert human["sub_scores"]["NC"] == 1.0 and human["sub_scores"]["DAC"] == 1.0
    assert all(s["num_failed"] == 0 for s in summaries.values())  # incl. PDM-Closed one frame earlier (EC)
    assert human["epdms"] > 0.8 and summaries["pdm_closed"]["epdms"] > 0.8


def test_a_corrupt_cache_is_rebuilt_not_scored_as_a_failure(tiny: Path) -> None:
    first = _eval(tiny)
    cache_dir = tiny / "metric_cache" / "synth_navtest"
    rows = list(csv.DictReader((tiny / "out/eval/synth_navtest/latest/human/scores.csv").open()))
    victim = cache_dir / f"{rows[0]['token']}.npz"  # a scored scene, not a previous-frame window
    victim.write_bytes(b"not a cache")
    summaries = _eval(tiny)
    assert all(s["num_failed"] == 0 for s in summaries.values())
    assert {a: s["epdms"] for a, s in summaries.items()} == {a: s["epdms"] for a, s in first.items()}
    assert victim.read_bytes()[:2] == b"PK"  # rebuilt (an .npz is a zip archive)


def test_each_eval_keeps_its_own_run_directory(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs write two timestamped directories (never the same files); ``latest`` points at the last."""
    runs = tiny / "out" / "eval" / "synth_navtest"
    before = set(runs.glob("20*")) if runs.is_dir() else set()
    _eval(tiny, "eval.agents=[constant_velocity]")
    first = capsys.readouterr().out
    _eval(tiny, "eval.agents=[constant_velocity]", "eval.max_scenes=1")
    second = capsys.readouterr().out
    new = sorted(set(runs.glob("20*")) - before)
    assert len(new) == 2
    assert (runs / "latest").resolve() == new[1].resolve()
    for out, run in ((first, new[0]), (second, new[1])):
        wrote = [Path(line.removeprefix("wrote ")) for line in out.splitlines() if line.startswith("wrote ")]
        assert wrote[0] == run / "config.yaml" and all(p.is_file() for p in wrote)
        assert {p.name for p in wrote} == {"config.yaml", "scores.csv", "summary.json"}
        assert all(p.is_relative_to(run) for p in wrote)  # everything this run wrote is in its directory
    rows = [list(csv.DictReader((run / "constant_velocity" / "scores.csv").open())) for run in new]
    assert len(rows[0]) > len(rows[1]) == 2  # the first run's scores were not overwritten by the second's


def test_max_scenes_spreads_over_the_split_not_its_head(tmp_path: Path) -> None:
    """A split's head is its first family's logs: ``eval.max_scenes`` takes scenes from its start to its end."""
    _generate(tmp_path, "lead_vehicle,parked_cars", 1, 20)
    scores = tmp_path / "out/eval/synth_navtest/latest/constant_velocity/scores.csv"
    _eval(tmp_path, "eval.agents=[constant_velocity]")
    every = [r["token"] for r in csv.DictReader(scores.open())][:-1]
    _eval(tmp_path, "eval.agents=[constant_velocity]", "eval.max_scenes=3")
    some = [r["token"] for r in csv.DictReader(scores.open())][:-1]
    assert len(every) > 3
    assert some == [every[0], every[round((len(every) - 1) / 2)], every[-1]]  # not every[:3]


def test_eval_aggregates_with_the_aggregation_group(tiny: Path) -> None:
    _eval(tiny, "eval.agents=[constant_velocity]", "aggregation=pdms")
    out = tiny / "out" / "eval" / "synth_navtest" / "latest" / "constant_velocity"
    assert json.loads((out / "summary.json").read_text())["aggregation"] == "pdms"
    rows = list(csv.DictReader((out / "scores.csv").open()))[:-1]
    sub = np.array([[float(r[s.navsim_name] or "nan") for s in SubScore] for r in rows])
    np.testing.assert_allclose([float(r["score"]) for r in rows], aggregate(sub, PDMS), atol=1e-6)
    assert not np.allclose(aggregate(sub, PDMS), aggregate(sub, EPDMS))  # the group made a difference


@pytest.mark.slow
def test_baselines_rank_as_expected(tmp_path: Path) -> None:
    """Over families where holding speed goes wrong, the expert and PDM-Closed beat constant velocity."""
    _generate(tmp_path, "parked_cars,route_lane_change,stop_and_go,signalised_intersection", 2, 24)
    s = _eval(tmp_path)
    cv, human, pdm = (s[a]["epdms"] for a in ("constant_velocity", "human", "pdm_closed"))
    assert human > cv + 0.1 and pdm > cv + 0.1


def test_unknown_agent_or_scorer_fails_before_any_caching(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _generate(tmp_path, "lead_vehicle", 1, 16)
    base = [f"paths.data_root={tmp_path}", f"paths.output_root={tmp_path / 'out'}", "eval.progress=false"]
    assert main(["eval", *base, "eval.agents=[nobody]"]) != 0
    assert "unknown agent 'nobody'" in capsys.readouterr().err
    assert main(["eval", *base, "eval.scorer=slowest"]) != 0
    assert "EvalConfig.scorer" in capsys.readouterr().err
    assert not (tmp_path / "metric_cache").exists()


def test_two_stage_eval_on_re_simulated_stage_two_scenes(tmp_path: Path) -> None:
    """``generate`` writes synth_navhard and its stage-2 scenes; ``eval`` then scores it in two stages."""
    args = [
        f"paths.data_root={tmp_path}",
        "generate.families=[cut_in]",
        "generate.only=[synth_navhard]",
        "generate.splits.synth_navhard.logs_per_family=1",
        "generate.num_log_frames=25",
        "generate.two_stage.pairs_per_group=2",
        "generate.workers=1",
        "generate.progress=false",
    ]
    assert main(["generate", *args]) == 0
    assert main(["eval", f"paths.data_root={tmp_path}", f"paths.output_root={tmp_path / 'out'}",
                 "eval.split=synth_navhard", "eval.agents=[human,constant_velocity]", "eval.workers=1",
                 "eval.progress=false"]) == 0  # fmt: skip
    out = tmp_path / "out" / "eval" / "synth_navhard" / "latest"
    human = json.loads((out / "human" / "summary.json").read_text())
    assert human["mode"] == "two_stage" and human["num_groups"] == 1 and human["num_failed"] == 0
    assert human["num_scenes"] == 2 + 2 * 2  # orig and prev, then two (now, prev) pairs
    rows = list(csv.DictReader((out / "human" / "scores.csv").open()))
    summary_rows = [f"extended_pdm_score_{s}" for s in ("stage_one", "stage_two", "combined")]
    assert [r["token"] for r in rows[-3:]] == summary_rows
    assert {f"{s.navsim_name}_stage_one" for s in SubScore} <= set(rows[0])
    assert {f"{s.navsim_name}_stage_two" for s in SubScore} <= set(rows[0])
    assert [len(r["token"]) for r in rows[:-3]] == [16, 16, 17, 17, 17, 17]  # a row per token: real, then synthetic
    assert (out / "human" / "groups.csv").is_file()
    assert human["epdms"] > 0.5 and human["sub_scores_stage_two"]["NC"] == 1.0
