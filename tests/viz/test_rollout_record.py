"""``irl-vla rollout record=...`` writes the viewer's frames: one per step shown, at the configured rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irl_vla.viz import palette
from tools.cli import main

imageio = pytest.importorskip("imageio.v2")

TINY = ["sim.route_length=30", "sim.time_limit=3", "rollout.runner.sub_scores=false", "run.progress=false"]


@pytest.mark.slow
def test_rollout_records_a_gif_of_every_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, gif = tmp_path / "run", tmp_path / "episode.gif"
    args = ["rollout", *TINY, "routes=[stop_and_go/0]", "agent=constant_velocity", f"rollout.output_dir={out}"]
    assert main([*args, f"record={gif}", "+rollout.viewer.record_fps=4", "+rollout.viewer.layout.bev.width=400"]) == 0
    assert f"wrote {gif}" in capsys.readouterr().out
    steps = len(np.load(next((out / "records").glob("*.npz")))["time"])
    frames = imageio.mimread(gif)
    assert len(frames) == steps + 1 >= 3  # the view of every step, then the episode's end
    assert frames[0].shape[:2] == (720, 400 + 60 + 620)
    assert Image.open(gif).info["duration"] == 250  # 4 frames/s
    record = json.loads(next((out / "records").glob("*.json")).read_text())
    if record["infractions"]:  # the constant-velocity agent runs into the queue: marked in the last frame's BEV
        bev = frames[-1][..., :3][:, :400]
        assert np.all(np.abs(bev.astype(int) - palette.INFRACTION) <= 8, axis=-1).any()
