"""Evaluation outputs: per-token CSV with NAVSIM's column names, ``summary.json`` and a printed table."""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from irl_vla.common.io import atomic_open, write_json
from irl_vla.evaluation.open_loop import GroupResult, SceneResult
from irl_vla.scoring.sub_scores import SubScore


def _fmt(x: float) -> str:
    return "" if not np.isfinite(x) else f"{x:.6f}"


def _mean(rows: list[np.ndarray]) -> np.ndarray:
    """Column means ignoring NaN (an EC that no scene defines stays NaN)."""
    if not rows:
        return np.full(len(SubScore), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(rows), axis=0)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    """Write a CSV atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_open(path) as f:
        f.write(buf.getvalue())


def write_one_stage(results: list[SceneResult], out_dir: str | os.PathLike[str], meta: dict[str, Any]) -> dict:
    """Write ``scores.csv`` (one row per token, then ``average_all_frames``) and ``summary.json``."""
    out = Path(out_dir)
    columns = ["token", "valid", *(s.navsim_name for s in SubScore), "score", "error"]
    valid = [r for r in results if r.valid]
    mean_sub = _mean([r.sub_scores for r in valid])
    mean_score = float(np.mean([r.score for r in valid])) if valid else float("nan")
    rows: list[list[object]] = [
        [r.token, r.valid, *(_fmt(v) for v in r.sub_scores), _fmt(r.score), r.error] for r in results
    ]
    rows.append(["average_all_frames", len(valid) == len(results), *(_fmt(v) for v in mean_sub), _fmt(mean_score), ""])
    _write_csv(out / "scores.csv", columns, rows)
    summary = {
        **meta,
        "mode": "one_stage",
        "epdms": mean_score,
        "sub_scores": {s.name: float(mean_sub[s]) for s in SubScore},
        "num_scenes": len(results),
        "num_valid": len(valid),
        "num_failed": len(results) - len(valid),
        "failed": [{"token": r.token, "error": r.error} for r in results if not r.valid],
    }
    write_json(out / "summary.json", summary)
    return summary


def write_two_stage(groups: list[GroupResult], out_dir: str | os.PathLike[str], meta: dict[str, Any]) -> dict:
    """Write ``scores.csv`` (a row per group, ``<metric>_stage_one/_two``), ``scenes.csv`` and ``summary.json``."""
    out = Path(out_dir)
    names = [s.navsim_name for s in SubScore]
    columns = ["token", "valid", *(f"{n}_stage_one" for n in names), *(f"{n}_stage_two" for n in names), "score"]
    valid = [g for g in groups if g.valid]
    rows: list[list[object]] = [
        [g.token, g.valid, *map(_fmt, g.stage_one), *map(_fmt, g.stage_two), _fmt(g.score)] for g in groups
    ]
    one, two = _mean([g.stage_one for g in valid]), _mean([g.stage_two for g in valid])
    combined = float(np.mean([g.score for g in valid])) if valid else float("nan")
    rows.append(
        ["extended_pdm_score_combined", len(valid) == len(groups), *map(_fmt, one), *map(_fmt, two), _fmt(combined)]
    )
    _write_csv(out / "scores.csv", columns, rows)
    scene_rows: list[list[object]] = [
        [g.token, r.token, r.valid, *map(_fmt, r.sub_scores), _fmt(r.score), r.error] for g in groups for r in g.scenes
    ]
    _write_csv(out / "scenes.csv", ["group", "token", "valid", *names, "score", "error"], scene_rows)
    summary = {
        **meta,
        "mode": "two_stage",
        "epdms": combined,
        "sub_scores_stage_one": {s.name: float(one[s]) for s in SubScore},
        "sub_scores_stage_two": {s.name: float(two[s]) for s in SubScore},
        "num_groups": len(groups),
        "num_valid": len(valid),
        "num_failed": len(groups) - len(valid),
        "num_scenes": sum(len(g.scenes) for g in groups),
        "failed": [
            {"group": g.token, "token": r.token, "error": r.error} for g in groups for r in g.scenes if not r.valid
        ],
    }
    write_json(out / "summary.json", summary)
    return summary


def format_table(summaries: list[dict]) -> str:
    """A text table of summaries (one row per agent/split), sub-scores and EPDMS in percent."""
    head = ["agent", "split", "mode", *(s.name for s in SubScore), "EPDMS", "valid/total"]
    rows = []
    for s in summaries:
        subs = s.get("sub_scores") or s.get("sub_scores_stage_one", {})
        if s["mode"] == "two_stage":  # show the stage-2 side, the harder one, after the combined score
            subs = s["sub_scores_stage_two"]
        total = s.get("num_scenes") if s["mode"] == "one_stage" else s.get("num_groups")
        rows.append(
            [
                s["agent"],
                s["split"],
                s["mode"],
                *(f"{100 * subs[n.name]:.1f}" if np.isfinite(subs[n.name]) else "-" for n in SubScore),
                f"{100 * s['epdms']:.1f}",
                f"{s['num_valid']}/{total}",
            ]
        )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    return "\n".join(lines)
