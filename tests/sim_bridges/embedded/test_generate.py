"""Generated splits: manifest, determinism (bytes and images), resume, and clear errors on bad shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irl_vla.common.io import DataFormatError
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.split import SceneLoader, SplitManifest
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.embedded.render.rig import RigConfig
from sim_bridges.embedded.render.sensors import SensorRenderer

SPEC = SplitSpec(logs_per_family=1, frame_interval=6)


def config(root: Path) -> GenerateConfig:
    return GenerateConfig(
        data_root=str(root), families=["lead_vehicle", "merge"], num_log_frames=20, workers=1, progress=False
    )


def test_split_is_deterministic_complete_and_loadable(tmp_path: Path) -> None:
    a = generate_split("synth_navtest", SPEC, config(tmp_path / "a"))
    b = generate_split("synth_navtest", SPEC, config(tmp_path / "b"))
    assert a.counts()["logs"] == 2 and a.counts()["scenes"] == 2 * 2 and a.rejected == 0
    assert a.tokens == b.tokens and [e.sha256 for e in a.logs] == [e.sha256 for e in b.logs]
    assert SplitManifest.read(tmp_path / "a" / "synth_navtest").tokens == a.tokens
    loader = SceneLoader(tmp_path / "a" / "synth_navtest")
    scene = loader.get_scene(a.tokens[-1])
    assert scene.map_api is not None and len(scene.frames) == 14
    assert scene.current_frame.instruction and scene.current_frame.meta_action is not None
    rig = RigConfig(width=48, height=32)
    images = []
    for root in ("a", "b"):
        s = SceneLoader(tmp_path / root / "synth_navtest").get_scene(a.tokens[0])
        SensorRenderer(rig).attach(s, SensorConfig(cameras={"cam_f0": [3]}, lidar_pc=[3]))
        images.append((s.current_frame.cameras["cam_f0"].image, s.current_frame.lidar.lidar_pc))
    assert np.array_equal(images[0][0], images[1][0]) and np.array_equal(images[0][1], images[1][1])
    with pytest.raises(KeyError, match="unknown scene token"):
        loader.get_scene("feedfacefeedface")


def test_rerun_fills_only_what_is_missing_and_bad_shards_are_named(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    first = generate_split("synth_navtest", SPEC, cfg)
    logs = sorted((tmp_path / "synth_navtest" / "logs").iterdir())
    kept, removed = logs
    kept_mtime, removed_bytes = kept.stat().st_mtime_ns, removed.read_bytes()
    removed.unlink()
    calls = []
    again = generate_split("synth_navtest", SPEC, cfg, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (1, 2)  # one log was already there
    assert kept.stat().st_mtime_ns == kept_mtime and removed.read_bytes() == removed_bytes
    assert again.tokens == first.tokens
    loader = SceneLoader(tmp_path / "synth_navtest")
    token = loader.manifest.logs[1].scene_tokens[0]
    removed.write_bytes(removed_bytes[:100])
    with pytest.raises(DataFormatError, match=removed.name):
        loader.get_scene(token)
    removed.unlink()
    with pytest.raises(FileNotFoundError, match=removed.name):
        SceneLoader(tmp_path / "synth_navtest").get_scene(token)
    with pytest.raises(FileNotFoundError, match="generate the split first"):
        SceneLoader(tmp_path / "synth_navhard")
