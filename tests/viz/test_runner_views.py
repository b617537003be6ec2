"""The viewer on the closed-loop runner's own views (the tests' fake env): a crash recorded frame by frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irl_vla.agents.constant_velocity import ConstantVelocityAgent
from irl_vla.evaluation.closed_loop import ClosedLoopConfig, ClosedLoopRunner
from irl_vla.viz import palette
from irl_vla.viz.viewer import RecordingViewer, ViewerConfig
from tests.envs.fake_env import FakeEnv

imageio = pytest.importorskip("imageio.v2")


def test_runner_views_record_the_crash(tmp_path: Path) -> None:
    viewer = RecordingViewer(ViewerConfig(window=False, record=str(tmp_path / "crash.gif")))
    runner = ClosedLoopRunner(FakeEnv(), ConstantVelocityAgent(), ClosedLoopConfig(sub_scores=False), viewers=[viewer])
    result = runner.run(["parked"]).results[0]
    assert result.infractions  # the constant-velocity agent runs into the parked car
    frames = imageio.mimread(tmp_path / "crash.gif")
    assert len(frames) == viewer.frames_shown == len(viewer.timeline.times) >= 3
    bev = viewer.config.layout.bev
    last = frames[-1][..., :3]
    crash = result.infractions[0].position
    ego = np.asarray(viewer.timeline.positions[-1])
    row, col = bev.pixel_of(*(crash - ego))  # the ego stands where it crashed: the cross is on it
    patch = last[row - 2 : row + 3, col - 2 : col + 3].astype(int)
    assert (np.abs(patch - palette.INFRACTION).sum(axis=-1) <= 12).any()
    first = frames[0][..., :3]
    assert not (np.abs(first[:, : bev.width].astype(int) - palette.INFRACTION).sum(axis=-1) <= 12).any()
