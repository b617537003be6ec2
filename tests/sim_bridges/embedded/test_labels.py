"""Meta-actions read from what the expert did; instructions say where to go, scene descriptions what is there."""

from __future__ import annotations

import dataclasses
import re

import pytest

from irl_vla.data.enums import MetaAction
from irl_vla.data.scene import Frame, Scene, SceneMetadata
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


def _labels(family: str, seeds: range, num_frames: int = 40) -> tuple[set[MetaAction], list[Frame]]:
    actions, frames = set(), []
    for seed in seeds:
        inst = build_scenario(FAMILIES[family], seed)
        recorded = record_log(inst.world, inst.route_ids, inst.route_centerline, log_name="l", num_frames=num_frames)
        actions |= {f.meta_action for f in recorded}
        frames += recorded
    return actions, frames


#: Every navigation instruction the embedded world writes (the route's next manoeuvre, or the lane it needs).
NAVIGATION = re.compile(
    r"Follow the road\.|In \d+ m, (turn (left|right) at|go straight through) the intersection\."
    r"|Turn (left|right) at the intersection\.|Move into the (left|right) lane within \d+ m to follow the route\."
)
SCENE_WORDS = ("light", "vehicle", "pedestrian", "cyclist", "km/h", "works", "give way", "nearest", "obstruct")


def test_labels_match_the_scenario() -> None:
    actions, frames = _labels("route_lane_change", range(3))
    texts = [f.instruction for f in frames]
    assert actions & {MetaAction.CHANGE_LANE_LEFT, MetaAction.CHANGE_LANE_RIGHT}
    assert any("to follow the route" in t for t in texts)
    assert any(("turn left" in t or "turn right" in t) for t in texts)
    actions, _ = _labels("parked_cars", range(3))
    assert actions & {MetaAction.NUDGE_LEFT, MetaAction.NUDGE_RIGHT}
    _, frames = _labels("signalised_intersection", range(3))
    assert any(
        "Traffic light" in f.scene_description and ("red" in f.scene_description or "green" in f.scene_description)
        for f in frames
    )


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_navigation_instructions_hold_no_scene_fact(family: str) -> None:
    """The instruction an agent reads is route guidance only; what is on the road is in the scene description."""
    _, frames = _labels(family, range(2), num_frames=24)
    for frame in frames:
        assert NAVIGATION.fullmatch(frame.instruction), (family, frame.instruction)
        assert not any(w in frame.instruction.lower() for w in SCENE_WORDS), (family, frame.instruction)
        assert frame.scene_description.startswith("Speed limit"), (family, frame.scene_description)
    scene = Scene(
        SceneMetadata("l", frames[3].token, "m", frames[3].token, 4, 0), [dataclasses.replace(f) for f in frames[:4]]
    )
    agent_input = scene.get_agent_input()
    assert agent_input.instruction == frames[3].instruction
    assert frames[3].scene_description not in repr(agent_input)
