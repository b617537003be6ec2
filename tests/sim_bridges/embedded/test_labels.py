"""Meta-actions read from what the expert did; instructions say where to go and what is ahead."""

from __future__ import annotations

import pytest

from irl_vla.data.enums import MetaAction
from scenarios.registry import load_families
from sim_bridges.embedded.labels import EgoTrace, meta_action
from sim_bridges.embedded.recorder import record_log
from sim_bridges.embedded.scenario_world import build_scenario

FAMILIES = load_families()


def steps(speeds: list[float], shift: float = 0.0, turn: str = "") -> list[EgoTrace]:
    return [
        EgoTrace(round(0.1 * i, 9), v, shift if i > 5 else 0.0, turn if i > 5 else "") for i, v in enumerate(speeds)
    ]


@pytest.mark.parametrize(
    ("trace", "expected"),
    [
        (steps([8.0] * 31), MetaAction.KEEP_LANE),
        (steps([max(0.0, 8.0 - 0.3 * i) for i in range(31)]), MetaAction.STOP),
        (steps([0.0] * 31), MetaAction.STOP),
        (steps([8.0 - 0.1 * i for i in range(31)]), MetaAction.SLOW_DOWN),
        (steps([3.0 + 0.1 * i for i in range(31)]), MetaAction.ACCELERATE),
        (steps([8.0] * 31, shift=3.5), MetaAction.CHANGE_LANE_LEFT),
        (steps([8.0] * 31, shift=-3.5), MetaAction.CHANGE_LANE_RIGHT),
        (steps([8.0] * 31, shift=1.2), MetaAction.NUDGE_LEFT),
        (steps([6.0] * 31, turn="left"), MetaAction.TURN_LEFT),
        (steps([6.0] * 31, turn="right"), MetaAction.TURN_RIGHT),
    ],
)
def test_meta_action_rules(trace: list[EgoTrace], expected: MetaAction) -> None:
    assert meta_action(trace, 0.0) is expected


def _labels(family: str, seeds: range) -> tuple[set[MetaAction], list[str]]:
    actions, texts = set(), []
    for seed in seeds:
        inst = build_scenario(FAMILIES[family], seed)
        frames = record_log(inst.world, inst.route_ids, inst.route_centerline, log_name="l", num_frames=40)
        actions |= {f.meta_action for f in frames}
        texts += [f.instruction for f in frames]
    return actions, texts


def test_labels_match_the_scenario() -> None:
    actions, texts = _labels("route_lane_change", range(3))
    assert actions & {MetaAction.CHANGE_LANE_LEFT, MetaAction.CHANGE_LANE_RIGHT}
    assert any("to follow the route" in t for t in texts)
    assert any(("turn left" in t or "turn right" in t) for t in texts)
    actions, texts = _labels("parked_cars", range(3))
    assert actions & {MetaAction.NUDGE_LEFT, MetaAction.NUDGE_RIGHT}
    actions, texts = _labels("signalised_intersection", range(3))
    assert any("Traffic light" in t and ("red" in t or "green" in t) for t in texts)
    assert all(t.startswith(("In ", "Turn", "Follow", "Move", "Pass")) for t in texts)
