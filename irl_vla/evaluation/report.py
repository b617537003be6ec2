"""Evaluation outputs: per-token CSVs in NAVSIM's layouts, ``summary.json`` and a printed table.

One stage: ``scores.csv`` has a row per token (``token, valid, <metric>..., score``) and an
``average_all_frames`` row. Two stages: ``scores.csv`` has NAVSIM's two-stage layout, a row per token with its
sub-scores under ``<metric>_stage_one`` (real scenes) or ``<metric>_stage_two`` (stage-2 scenes), then the three
summary rows ``extended_pdm_score_stage_one``, ``extended_pdm_score_stage_two`` and
``extended_pdm_score_combined``, each with its ``score``; ``groups.csv`` has a row per group.

A failed scene (``valid = False``, its error in the ``error`` column that follows NAVSIM's columns) scores
``FAILED_SCORE`` (0) in every score and average; the sub-score columns of summary rows are means over the valid
scenes. Summaries also give the EPDMS over the valid scenes (or groups) alone, labelled ``valid_only``.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from irl_vla.common.io import atomic_open, write_json
from irl_vla.evaluation.open_loop import GroupResult, SceneResult
from irl_vla.scoring.scene_aggregation import mean_defined
from irl_vla.scoring.sub_scores import SubScore

#: NAVSIM's summary rows of a two-stage CSV, in order.
STAGE_ONE_ROW = "extended_pdm_score_stage_one"
STAGE_TWO_ROW = "extended_pdm_score_stage_two"
COMBINED_ROW = "extended_pdm_score_combined"
#: NAVSIM's summary row of a one-stage CSV.
AVERAGE_ROW = "average_all_frames"
_NAMES = [s.navsim_name for s in SubScore]


def _fmt(x: float) -> str:
    return "" if not np.isfinite(x) else f"{x:.6f}"


def _blank() -> list[str]:
    return [""] * len(SubScore)


def _average(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    """Write a CSV atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_open(path) as f:
        f.write(buf.getvalue())


def _failures(results: list[SceneResult], group: str | None = None) -> list[dict[str, str]]:
    return [
        {**({"group": group} if group is not None else {}), "token": r.token, "error": r.error}
        for r in results
        if not r.valid
    ]


def write_one_stage(results: list[SceneResult], out_dir: str | os.PathLike[str], meta: dict[str, Any]) -> dict:
    """Write ``scores.csv`` (a row per token, then ``average_all_frames``) and ``summary.json``."""
    out = Path(out_dir)
    columns = ["token", "valid", *_NAMES, "score", "error"]
    valid = [r for r in results if r.valid]
    mean_sub = mean_defined([r.sub_scores for r in valid])
    epdms = _average([r.split_score for r in results])
    rows: list[list[object]] = [
        [r.token, r.valid, *(_fmt(v) for v in r.sub_scores), _fmt(r.split_score), r.error] for r in results
    ]
    rows.append([AVERAGE_ROW, len(valid) == len(results), *(_fmt(v) for v in mean_sub), _fmt(epdms), ""])
    _write_csv(out / "scores.csv", columns, rows)
    summary = {
        **meta,
        "mode": "one_stage",
        "epdms": epdms,
        "epdms_valid_only": _average([r.score for r in valid]),
        "sub_scores": {s.name: float(mean_sub[s]) for s in SubScore},
        "num_scenes": len(results),
        "num_valid": len(valid),
        "num_failed": len(results) - len(valid),
        "failed": _failures(results),
    }
    write_json(out / "summary.json", summary)
    return summary


def write_two_stage(groups: list[GroupResult], out_dir: str | os.PathLike[str], meta: dict[str, Any]) -> dict:
    """Write ``scores.csv`` (NAVSIM's two-stage layout), ``groups.csv`` (a row per group) and ``summary.json``."""
    out = Path(out_dir)
    stage_cols = [*(f"{n}_stage_one" for n in _NAMES), *(f"{n}_stage_two" for n in _NAMES)]
    valid = [g for g in groups if g.valid]
    all_valid = len(valid) == len(groups)
    one, two = mean_defined([g.stage_one for g in groups]), mean_defined([g.stage_two for g in groups])
    score_one = _average([g.stage_one_score for g in groups])
    score_two = _average([g.stage_two_score for g in groups])
    combined = _average([g.score for g in groups])

    def row(r: SceneResult, stage_one: bool) -> list[object]:
        sub = [_fmt(v) for v in r.sub_scores]
        cols = [*sub, *_blank()] if stage_one else [*_blank(), *sub]
        return [r.token, r.valid, *cols, _fmt(r.split_score), r.error]

    rows: list[list[object]] = [row(r, True) for g in groups for r in g.stage_one_scenes]
    rows += [row(r, False) for g in groups for r in g.stage_two_scenes]
    rows += [
        [STAGE_ONE_ROW, all_valid, *map(_fmt, one), *_blank(), _fmt(score_one), ""],
        [STAGE_TWO_ROW, all_valid, *_blank(), *map(_fmt, two), _fmt(score_two), ""],
        [COMBINED_ROW, all_valid, *map(_fmt, one), *map(_fmt, two), _fmt(combined), ""],
    ]
    _write_csv(out / "scores.csv", ["token", "valid", *stage_cols, "score", "error"], rows)
    group_rows: list[list[object]] = [
        [
            g.token,
            g.valid,
            *map(_fmt, g.stage_one),
            *map(_fmt, g.stage_two),
            _fmt(g.stage_one_score),
            _fmt(g.stage_two_score),
            _fmt(g.score),
        ]
        for g in groups
    ]
    _write_csv(
        out / "groups.csv",
        ["group", "valid", *stage_cols, "score_stage_one", "score_stage_two", "score"],
        group_rows,
    )
    scenes = [r for g in groups for r in g.scenes]
    summary = {
        **meta,
        "mode": "two_stage",
        "epdms": combined,
        "epdms_stage_one": score_one,
        "epdms_stage_two": score_two,
        "epdms_valid_only": _average([g.score for g in valid]),
        "sub_scores_stage_one": {s.name: float(one[s]) for s in SubScore},
        "sub_scores_stage_two": {s.name: float(two[s]) for s in SubScore},
        "num_groups": len(groups),
        "num_valid": len(valid),
        "num_failed": len(groups) - len(valid),
        "num_scenes": len(scenes),
        "num_failed_scenes": sum(not r.valid for r in scenes),
        "failed": [f for g in groups for f in _failures(g.scenes, g.token)],
    }
    write_json(out / "summary.json", summary)
    return summary


def _pct(x: float) -> str:
    return f"{100 * x:.1f}" if np.isfinite(x) else "-"


def format_table(summaries: list[dict]) -> str:
    """A text table of summaries, sub-scores and EPDMS in percent.

    A one-stage agent has one row (stage ``all``); a two-stage agent has NAVSIM's three: stages ``1`` and ``2``
    (that stage's sub-scores and EPDMS) and ``combined`` (the reported EPDMS). Failed scenes count
    as 0 in ``EPDMS``; ``EPDMS valid only`` leaves them out; ``failed`` counts them.
    """
    head = ["agent", "split", "mode", "stage", *(s.name for s in SubScore), "EPDMS", "EPDMS valid only", "failed"]
    rows = []
    for s in summaries:
        two = s["mode"] == "two_stage"
        failed = s["num_failed_scenes"] if two else s["num_failed"]
        tail = [_pct(s["epdms"]), _pct(s["epdms_valid_only"]), f"{failed}/{s['num_scenes']}"]
        if not two:
            subs = s["sub_scores"]
            rows.append(
                [s["agent"], s["split"], s["mode"], "all", *(_pct(subs[n.name]) for n in SubScore), *tail]
            )
            continue
        for label, key, score in (("1", "one", "epdms_stage_one"), ("2", "two", "epdms_stage_two")):
            subs = s[f"sub_scores_stage_{key}"]
            first = [s["agent"], s["split"], s["mode"]] if key == "one" else ["", "", ""]
            rows.append([*first, label, *(_pct(subs[n.name]) for n in SubScore), _pct(s[score]), "", ""])
        rows.append(["", "", "", "combined", *([""] * len(SubScore)), *tail])
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    return "\n".join(lines)
