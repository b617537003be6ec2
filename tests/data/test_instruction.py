"""What an agent may read: the navigation instruction, never a scene fact; NAVSIM frames get theirs from the command."""

from __future__ import annotations

import dataclasses

import pytest

from irl_vla.data.enums import DrivingCommand
from irl_vla.data.instruction import FOLLOW_ROAD, command_instruction, junction_instruction, lane_instruction
from irl_vla.data.scene import AgentInput, Frame

#: Frame fields that state facts about the scene or its labels: targets or privileged inputs only.
SCENE_FIELDS = {"annotations", "traffic_lights", "scene_description", "meta_action", "roadblock_ids"}


def test_agent_input_has_no_field_for_a_scene_fact() -> None:
    agent_fields = {f.name for f in dataclasses.fields(AgentInput)}
    frame_fields = {f.name for f in dataclasses.fields(Frame)}
    assert frame_fields >= SCENE_FIELDS  # the frame keeps them (targets) ...
    assert not agent_fields & (SCENE_FIELDS | {"map_api", "frames"})  # ... the agent input never has them
    assert agent_fields == {"ego_statuses", "cameras", "lidars", "instruction"}


def test_phrases() -> None:
    assert [command_instruction(c) for c in DrivingCommand] == [
        "Turn left ahead.",
        "Go straight ahead.",
        "Turn right ahead.",
        FOLLOW_ROAD,
    ]
    assert junction_instruction("left", 34.6) == "In 35 m, turn left at the intersection."
    assert junction_instruction("right", -2.0) == "Turn right at the intersection."
    assert junction_instruction("straight", -2.0) == FOLLOW_ROAD
    assert lane_instruction("left", 80.2) == "Move into the left lane within 80 m to follow the route."
    with pytest.raises(ValueError, match="turn must be"):
        junction_instruction("u-turn", 3.0)
    with pytest.raises(ValueError, match="side must be"):
        lane_instruction("up", 3.0)


def test_an_openscene_frame_without_suite_fields_gets_the_instruction_of_its_command() -> None:
    import numpy as np

    from irl_vla.data.sensors import NAVSIM_CAMERA_NAMES, CameraCalibration
    from sim_bridges.navsim.openscene import SUITE_KEY, FrameContext, frame_from_dict, frame_to_dict
    from tests.fixtures import build_straight_scene

    turn = "In 20 m, turn left at the intersection."
    frame = dataclasses.replace(build_straight_scene().current_frame, instruction=turn, traffic_lights=[])
    calibration = CameraCalibration(np.eye(3), np.zeros(3), np.eye(3))
    ctx = FrameContext("log", "scene", "loc", 0, {n: (f"{n}.jpg", calibration) for n in NAVSIM_CAMERA_NAMES}, "l.pcd")
    d = frame_to_dict(frame, ctx)
    assert frame_from_dict(d, "x").instruction == frame.instruction  # an exported embedded frame keeps its own
    del d[SUITE_KEY]  # real OpenScene data
    read = frame_from_dict(d, "x")
    assert read.instruction == command_instruction(frame.ego_status.command) and read.scene_description == ""
