"""The pipeline's results: one table of every policy and baseline on each evaluation split.

Rows: constant velocity, the ego-status MLP, PDM-Closed, the expert, stage 1, stage 1 + best-of-N and stage 3;
columns: EPDMS and every sub-score from ``irl-vla eval``'s ``summary.json``, and the learned reward (the reward
model's mean EPDMS of the policy's own candidates on held-out scenes, from the reward report) beside the
simulator's EPDMS of those candidates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from irl_vla.common.io import atomic_open, read_json, write_json
from irl_vla.pipeline.runner import StepResult
from irl_vla.pipeline.steps import BASELINES, EVAL_SPLITS, POLICY_ROWS, Layout
from irl_vla.scoring.aggregation import EPDMS

#: Table rows in order: row -> (label, eval folder, agent summary folder).
ROWS: dict[str, tuple[str, str, str]] = {
    "constant_velocity": ("constant velocity", "baselines", "constant_velocity"),
    "ego_mlp": ("ego-status MLP", "ego_mlp", POLICY_ROWS["ego_mlp"]),
    "pdm_closed": ("PDM-Closed", "baselines", "pdm_closed"),
    "expert": ("expert", "baselines", "human"),
    "stage1": ("stage 1 (VLA)", "stage1", POLICY_ROWS["stage1"]),
    "stage1_best_of_n": ("stage 1 + best-of-N", "stage1_best_of_n", POLICY_ROWS["stage1_best_of_n"]),
    "stage3": ("stage 3 (PPO)", "stage3", POLICY_ROWS["stage3"]),
}
assert {a for _, f, a in ROWS.values() if f == "baselines"} == set(BASELINES)
#: The rows whose own candidates the reward report scores, in the order of ``report.policies``.
REPORT_ROWS = ("stage1", "stage3")
#: Files the pipeline writes at the end, in the experiment folder.
RESULTS_JSON, RESULTS_MD = "results.json", "results.md"


def collect(layout: Layout) -> dict[str, Any]:
    """Every row's EPDMS and sub-scores per split, and the learned reward of the report's policies.

    Raises:
        FileNotFoundError: naming a missing ``summary.json`` or ``report.json``.
    """
    splits: dict[str, Any] = {}
    for split in EVAL_SPLITS:
        rows = {}
        for row, (label, folder, agent) in ROWS.items():
            rows[row] = {"label": label, **_row(layout.eval_dir(split, folder) / agent / "summary.json")}
        splits[split] = rows
    report = read_json(layout.report / "report.json")
    shift = report.get("distribution_shift", [])
    if len(shift) != len(REPORT_ROWS):
        raise ValueError(
            f"{layout.report / 'report.json'}: distribution_shift has {len(shift)} policies, expected "
            f"{len(REPORT_ROWS)} (stage 1 and stage 3)"
        )
    learned = {
        row: {
            "learned_reward": entry["headline"]["mean_predicted_epdms"],
            "simulator_epdms": entry["headline"]["mean_simulator_epdms"],
            "source": entry.get("source"),
        }
        for row, entry in zip(REPORT_ROWS, shift, strict=True)
    }
    return {"splits": splits, "learned_reward": learned, "report_split": report.get("settings", {}).get("split")}


def _row(path: Path) -> dict[str, Any]:
    """EPDMS and sub-scores of one ``summary.json``; two-stage: each sub-score as [stage one, stage two].

    Raises:
        ValueError: naming the file when it scored no scene or its EPDMS is undefined.
    """
    summary = read_json(path)
    epdms = summary.get("epdms")
    if not summary.get("num_scenes") or epdms is None or not math.isfinite(epdms):
        raise ValueError(
            f"{path}: EPDMS {epdms} over {summary.get('num_scenes')} scenes; the evaluation scored nothing "
            "(a split too small for its settings?)"
        )
    if summary.get("mode") == "two_stage":
        one, two = summary["sub_scores_stage_one"], summary["sub_scores_stage_two"]
        subs: dict[str, Any] = {n: [one[n], two[n]] for n in one}
        extra = {"epdms_stage_one": summary["epdms_stage_one"], "epdms_stage_two": summary["epdms_stage_two"]}
    else:
        subs, extra = summary["sub_scores"], {}
    return {
        "mode": summary.get("mode"),
        "epdms": epdms,
        **extra,
        "sub_scores": subs,
        "num_scenes": summary["num_scenes"],
        "num_failed": summary.get("num_failed", 0),
    }


def _f(x: Any) -> str:
    """A score in [0, 1] as points with one decimal (``-`` when undefined); a pair as ``stage one / stage two``."""
    if isinstance(x, list):
        return " / ".join(_f(v) for v in x)
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * float(x):.1f}"


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown: a table per split, the learned reward, the report, submissions and step times."""
    names = [*EPDMS.multiplicative, *EPDMS.weights]  # NC DAC DDC TLC EP TTC LK HC EC
    lines = [f"# Pipeline results: experiment `{results['experiment']}`", ""]
    learned = results["learned_reward"]
    for split, rows in results["splits"].items():
        two_stage = any(r.get("mode") == "two_stage" for r in rows.values())
        note = " (two-stage EPDMS; sub-scores: stage one / stage two)" if two_stage else ""
        lines += [f"## {split}: scores in points{note}", ""]
        header = ["policy", "EPDMS", *names, "learned reward", "simulator EPDMS of its candidates"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row, r in rows.items():
            extra = learned.get(row, {})
            cells = [
                r["label"],
                _f(r["epdms"]),
                *(_f(r["sub_scores"].get(n)) for n in names),
                _f(extra.get("learned_reward")),
                _f(extra.get("simulator_epdms")),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        f"Learned reward: the reward model's mean EPDMS of the policy's own sampled candidates on "
        f"{results.get('report_split')} (held-out scenes of the reward report), beside the simulator's EPDMS of the "
        "same candidates; rows without it were not sampled by the report.",
        "",
        f"Reward report: `{results['report']}`",
        "",
        "Submissions of the final policy (stage 3):",
        *(f"- `{p}`" for p in results["submissions"]),
        "",
        "## Step wall times",
        "",
        "| step | status | wall [s] |",
        "|---|---|---|",
        *(f"| {s['name']} | {s['status']} | {s['wall_s']:.1f} |" for s in results["steps"]),
        f"| all steps | | {sum(s['wall_s'] for s in results['steps']):.1f} |",
        f"| this run of the pipeline | | {results['wall_s']:.1f} |",
        "",
    ]
    return "\n".join(lines)


def write_results(
    layout: Layout, experiment: str, steps: Sequence[StepResult], submissions: Sequence[Path], wall_s: float
) -> tuple[dict[str, Any], list[Path]]:
    """Write ``results.json`` and ``results.md`` into the experiment folder; the results and the two paths."""
    results = {
        "experiment": experiment,
        **collect(layout),
        "report": str(layout.report / "report.html"),
        "submissions": [str(p) for p in submissions],
        "steps": [{"name": s.name, "status": s.status, "wall_s": s.wall_s, "log": str(s.log)} for s in steps],
        "wall_s": wall_s,
    }
    json_path, md_path = layout.work / RESULTS_JSON, layout.work / RESULTS_MD
    write_json(json_path, results)
    with atomic_open(md_path) as f:
        f.write(markdown(results))
    return results, [json_path, md_path]
