"""Results as JSON in the CARLA leaderboard's statistics layout (``_checkpoint.records`` and ``global_record``).

Each route's record carries ``route_id`` (``RouteScenario_<route>_rep<k>``), ``status``, ``num_infractions``,
``infractions`` (the leaderboard's twelve keys, each a list of messages), ``scores`` (``score_route`` = RC,
``score_penalty`` = P, ``score_composed`` = DS) and ``meta`` (``route_length`` [m], ``duration_game`` [s],
``duration_system`` [s]). The global record holds the means and standard deviations of the three scores and
the infractions per km; ``values`` / ``labels`` list them as the leaderboard prints them. The suite's own
values (Bench2Drive success rate, efficiency, comfort, rolling sub-scores, the learned reward's agreement with
the simulator) are under ``irl_vla`` in each record and at the top level, where leaderboard tools ignore them.
"""

from __future__ import annotations

import os
from typing import Any

from irl_vla.common.io import write_json
from irl_vla.envs.driving_score import GlobalScore, RouteResult, global_score
from irl_vla.envs.infractions import STATISTICS_INFRACTION_KEYS

#: The leaderboard's labels of ``values``, in order.
LABELS: tuple[str, ...] = (
    "Avg. driving score",
    "Avg. route completion",
    "Avg. infraction penalty",
    "Collisions with pedestrians",
    "Collisions with vehicles",
    "Collisions with layout",
    "Red lights infractions",
    "Stop sign infractions",
    "Off-road infractions",
    "Route deviations",
    "Route timeouts",
    "Agent blocked",
    "Yield emergency vehicles infractions",
    "Scenario timeouts",
    "Min speed infractions",
)
_LABEL_KEYS: tuple[str, ...] = (
    "collisions_pedestrian",
    "collisions_vehicle",
    "collisions_layout",
    "red_light",
    "stop_infraction",
    "outside_route_lanes",
    "route_dev",
    "route_timeout",
    "vehicle_blocked",
    "yield_emergency_vehicle_infractions",
    "scenario_timeouts",
    "min_speed_infractions",
)


def leaderboard_route_id(result: RouteResult) -> str:
    """``RouteScenario_<route>_rep<k>``."""
    return f"RouteScenario_{result.route_id}_rep{result.repetition}"


def route_record(result: RouteResult, index: int) -> dict[str, Any]:
    """One entry of ``_checkpoint.records``."""
    infractions: dict[str, list[str]] = {key: [] for key in STATISTICS_INFRACTION_KEYS}
    for event in result.infractions:
        infractions[event.kind.statistics_key].append(event.describe())
    return {
        "index": index,
        "route_id": leaderboard_route_id(result),
        "status": result.status,
        "num_infractions": len(result.infractions),
        "infractions": infractions,
        "scores": {
            "score_route": result.route_completion,
            "score_penalty": result.penalty,
            "score_composed": result.driving_score,
        },
        "meta": {
            "route_length": result.route_length,
            "duration_game": result.duration_game,
            "duration_system": result.duration_system,
        },
        "irl_vla": {
            "termination": None if result.termination is None else result.termination.value,
            "success": result.success,
            "efficiency": result.efficiency,
            "comfort": result.comfort,
            "checkpoint_ratios": list(result.checkpoint_ratios),
            **result.extra,
        },
    }


def global_record(score: GlobalScore, results: list[RouteResult]) -> dict[str, Any]:
    """``_checkpoint.global_record``."""
    return {
        "index": -1,
        "route_id": -1,
        "status": "Completed" if all(r.route_completion >= 100.0 for r in results) else "Failed",
        "infractions": dict(score.infractions_per_km),
        "scores_mean": {
            "score_route": score.route_completion,
            "score_penalty": score.penalty,
            "score_composed": score.driving_score,
        },
        "scores_std_dev": {
            "score_route": score.route_completion_std,
            "score_penalty": score.penalty_std,
            "score_composed": score.driving_score_std,
        },
        "meta": {
            "total_length": sum(r.route_length for r in results),
            "duration_game": sum(r.duration_game for r in results),
            "duration_system": sum(r.duration_system for r in results),
            "exceptions": [[leaderboard_route_id(r), r.status] for r in results if r.status.startswith("Failed")],
        },
    }


def statistics(results: list[RouteResult], expected_routes: int | None = None) -> dict[str, Any]:
    """The whole statistics document of a set of route results."""
    score = global_score(results, expected_routes)
    values = [score.driving_score, score.route_completion, score.penalty]
    values += [score.infractions_per_km[key] for key in _LABEL_KEYS]
    return {
        "_checkpoint": {
            "global_record": global_record(score, results),
            "progress": [len(results), score.num_routes],
            "records": [route_record(r, i) for i, r in enumerate(results)],
        },
        "entry_status": "Finished" if len(results) == score.num_routes else "Started",
        "eligible": True,
        "values": [f"{v:.3f}" for v in values],
        "labels": list(LABELS),
        "irl_vla": {
            "success_rate": score.success_rate,
            "efficiency": score.efficiency,
            "comfort": score.comfort,
        },
    }


def write_statistics(
    path: str | os.PathLike[str], results: list[RouteResult], expected_routes: int | None = None
) -> dict[str, Any]:
    """Write ``statistics(results)`` to ``path`` atomically; returns the document."""
    document = statistics(results, expected_routes)
    write_json(path, document, indent=2)
    return document


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(results: list[RouteResult], expected_routes: int | None = None) -> str:
    """The driving-score table: one row per route and a mean row (DS, RC, penalty, infractions, status)."""
    header = ["route", "rep", "DS", "RC [%]", "penalty", "infractions", "EPDMS", "reward r", "status"]
    rows = []
    for r in results:
        corr = r.extra.get("reward_vs_simulator", {}).get("pearson")
        epdms = r.extra.get("epdms_mean")
        rows.append(
            [
                r.route_id,
                str(r.repetition),
                _fmt(r.driving_score),
                _fmt(r.route_completion),
                _fmt(r.penalty, 3),
                str(len(r.infractions)),
                _fmt(None if epdms is None else 100 * epdms),
                _fmt(corr, 2),
                r.status,
            ]
        )
    score = global_score(results, expected_routes)
    rows.append(
        [
            f"mean of {score.num_routes}",
            "",
            _fmt(score.driving_score),
            _fmt(score.route_completion),
            _fmt(score.penalty, 3),
            str(sum(len(r.infractions) for r in results)),
            "",
            "",
            f"success {100 * score.success_rate:.0f} %, efficiency {_fmt(score.efficiency, 0)} %, "
            f"comfort {100 * score.comfort:.0f} %",
        ]
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, lines[1])
    return "\n".join(lines)
