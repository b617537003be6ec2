"""The "Writing your own agent" example of ``docs/agents.md`` runs as written and plans from its camera."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from irl_vla.agents import registry
from irl_vla.data.enums import DrivingCommand, SE2Index
from irl_vla.data.scene import AgentInput, EgoStatus, one_hot_command
from irl_vla.data.sensors import Camera, CameraCalibration

DOC = Path(__file__).resolve().parents[2] / "docs" / "agents.md"


def _input(brightness: int) -> AgentInput:
    status = EgoStatus(np.zeros(3), np.array([4.0, 0.0]), np.zeros(2), one_hot_command(DrivingCommand.STRAIGHT))
    calibration = CameraCalibration(np.eye(3), np.zeros(3), np.eye(3))
    camera = Camera(calibration, np.full((144, 256, 3), brightness, np.uint8))
    return AgentInput([status] * 4, [{}, {}, {}, {"cam_f0": camera}], [None] * 4)


def test_the_documented_agent_registers_and_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    monkeypatch.setattr(registry, "AGENTS", dict(registry.AGENTS))
    exec(compile(blocks[0], str(DOC), "exec"), {"__name__": "docs_example"})
    agent = registry.make_agent({"name": "cautious"})
    assert agent.get_sensor_config().cameras == {"cam_f0": [3]} and not registry.AGENTS["cautious"].privileged
    bright, dark = agent.compute_trajectory(_input(200)), agent.compute_trajectory(_input(20))
    assert bright.poses[-1, SE2Index.X] == pytest.approx(16.0) and dark.poses[-1, SE2Index.X] == pytest.approx(8.0)
