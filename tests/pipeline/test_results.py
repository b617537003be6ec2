"""The pipeline's results table from evaluation summaries and the reward report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from irl_vla.pipeline.results import ROWS, collect, markdown
from irl_vla.pipeline.steps import HARD, TEST, Layout

SUBS = ("NC", "DAC", "DDC", "TLC", "EP", "TTC", "LK", "HC", "EC")


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _fill(layout: Layout, hard_scenes: int = 6) -> None:
    """Summaries of every row (EPDMS 0.1 x row index) and a report with two policies."""
    for i, (_, folder, agent) in enumerate(ROWS.values()):
        one = {
            "mode": "one_stage",
            "epdms": 0.1 * i,
            "sub_scores": dict.fromkeys(SUBS, 0.5),
            "num_scenes": 4,
            "num_failed": 0,
        }
        _write(layout.eval_dir(TEST, folder) / agent / "summary.json", one)
        two = {
            "mode": "two_stage",
            "epdms": 0.1 * i if hard_scenes else math.nan,
            "epdms_stage_one": 0.7,
            "epdms_stage_two": 0.6,
            "sub_scores_stage_one": dict.fromkeys(SUBS, 0.9),
            "sub_scores_stage_two": dict.fromkeys(SUBS, 0.8),
            "num_scenes": hard_scenes,
            "num_failed": 0,
        }
        _write(layout.eval_dir(HARD, folder) / agent / "summary.json", two)
    shift = [
        {"label": n, "source": n, "headline": {"mean_predicted_epdms": p, "mean_simulator_epdms": 0.5}}
        for n, p in (("il", 0.6), ("policy", 0.7))
    ]
    _write(layout.report / "report.json", {"settings": {"split": TEST}, "distribution_shift": shift})


def test_table_has_every_row_two_stage_pairs_and_learned_reward(tmp_path: Path) -> None:
    layout = Layout(tmp_path, tmp_path / "data")
    _fill(layout)
    results = collect(layout)
    assert list(results["splits"][TEST]) == list(ROWS)
    assert results["splits"][HARD]["expert"]["sub_scores"]["NC"] == [0.9, 0.8]
    assert results["learned_reward"]["stage3"]["learned_reward"] == 0.7
    text = markdown(
        {
            **results,
            "experiment": "x",
            "report": "r.html",
            "submissions": ["s.pkl"],
            "steps": [{"name": "il", "status": "ran", "wall_s": 2.0}],
            "wall_s": 3.0,
        }
    )
    assert "| stage 3 (PPO) | 60.0 | 50.0 |" in text and text.rstrip().endswith("| this run of the pipeline | | 3.0 |")
    assert "| expert | 30.0 | 90.0 / 80.0 |" in text
    assert "| stage 1 (VLA) | 40.0 |" in text and "| 60.0 | 50.0 |" in text


def test_an_evaluation_that_scored_nothing_is_refused(tmp_path: Path) -> None:
    layout = Layout(tmp_path, tmp_path / "data")
    _fill(layout, hard_scenes=0)
    with pytest.raises(ValueError, match=r"constant_velocity/summary.json: EPDMS nan over 0 scenes"):
        collect(layout)
