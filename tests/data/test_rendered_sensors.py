"""Sensors through the embedded scene source: rendered on load, exactly what was asked, cached on disk."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from irl_vla.data.rendered_sensors import RenderedSensors
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.split import SceneLoader
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.embedded.render.sensors import SensorRenderer


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sensors")
    cfg = GenerateConfig(data_root=str(root), families=["lead_vehicle"], num_log_frames=18, workers=1, progress=False)
    generate_split("synth_navtest", SplitSpec(logs_per_family=1, frame_interval=4), cfg)
    return root / "synth_navtest"


class _Counting:
    """A renderer that counts what it draws."""

    def __init__(self) -> None:
        self.inner = SensorRenderer()
        self.calibrations = self.inner.calibrations
        self.cameras = 0
        self.lidars = 0

    def render_cameras(self, frame, map_api, names=None):  # type: ignore[no-untyped-def]
        self.cameras += len(names)
        return self.inner.render_cameras(frame, map_api, names)

    def render_lidar(self, frame, map_api):  # type: ignore[no-untyped-def]
        self.lidars += 1
        return self.inner.render_lidar(frame, map_api)


def test_a_scene_gets_exactly_the_sensors_asked_for(split: Path) -> None:
    loader = SceneLoader(split, renderer=RenderedSensors(SensorRenderer))
    token = loader.tokens[-1]
    sensors = SensorConfig(cameras={"cam_f0": [3], "cam_l0": True}, lidar_pc=[2])
    scene = loader.get_scene(token, sensors)
    inputs = scene.get_agent_input()
    assert [sorted(c) for c in inputs.cameras] == [["cam_l0"]] * 3 + [["cam_f0", "cam_l0"]]
    assert [lidar is not None for lidar in inputs.lidars] == [False, False, True, False]
    image = inputs.cameras[3]["cam_f0"].image
    assert image is not None and image.shape[2] == 3 and image.std() > 5  # a picture, not a blank
    assert all(f.cameras == {} and f.lidar is None for f in scene.frames[4:])  # the future stays unseen
    assert not loader.get_scene(token).current_frame.cameras  # asked for nothing: nothing attached
    previous = loader.get_previous_scene(token, sensors)
    assert previous is not None and "cam_f0" in previous.current_frame.cameras
    assert not np.array_equal(previous.current_frame.cameras["cam_f0"].image, image)  # its own frame


def test_sensors_without_a_renderer_or_outside_the_rig_are_refused(split: Path) -> None:
    token = SceneLoader(split).tokens[0]
    with pytest.raises(ValueError, match=f"scene {token} asked for sensors, but this loader renders none"):
        SceneLoader(split).get_scene(token, SensorConfig(cameras={"cam_f0": True}))
    loader = SceneLoader(split, renderer=RenderedSensors(SensorRenderer))
    with pytest.raises(ValueError, match=r"cameras \['cam_b0'\] are not in the renderer's rig"):
        loader.get_scene(token, SensorConfig(cameras={"cam_b0": True}))


def test_the_sensor_cache_serves_the_same_pixels_and_repairs_a_corrupt_file(split: Path, tmp_path: Path) -> None:
    counting = _Counting()
    sensors = RenderedSensors(lambda: counting, tmp_path / "cache", fingerprint="rig-a")
    loader = SceneLoader(split, renderer=sensors)
    token = loader.tokens[0]
    config = SensorConfig(cameras={"cam_f0": True}, lidar_pc=[3])
    first = loader.get_scene(token, config)
    assert (counting.cameras, counting.lidars) == (4, 1)
    second = loader.get_scene(token, config)
    assert (counting.cameras, counting.lidars) == (4, 1)  # all from the cache
    for a, b in zip(first.frames[:4], second.frames[:4], strict=True):
        np.testing.assert_array_equal(a.cameras["cam_f0"].image, b.cameras["cam_f0"].image)  # lossless
    np.testing.assert_array_equal(first.current_frame.lidar.lidar_pc, second.current_frame.lidar.lidar_pc)
    victim = next((tmp_path / "cache").rglob("cam_f0.png"))
    victim.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match=f"{victim}: unreadable cached sensor"):
        loader.get_scene(token, config)
    assert counting.cameras == 5 and victim.stat().st_size > 100  # rendered again and replaced
    other = RenderedSensors(lambda: counting, tmp_path / "cache", fingerprint="rig-b")
    SceneLoader(split, renderer=other).get_scene(token, SensorConfig(cameras={"cam_f0": [3]}))
    assert counting.cameras == 6  # another renderer never reads rig-a's images


def test_a_loader_with_a_renderer_pickles_without_it(split: Path) -> None:
    sensors = RenderedSensors(SensorRenderer)
    loader = SceneLoader(split, renderer=sensors)
    loader.get_scene(loader.tokens[0], SensorConfig(cameras={"cam_f0": [3]}))
    assert sensors._renderer is not None
    copy = pickle.loads(pickle.dumps(sensors))
    assert copy._renderer is None and copy.make_renderer is SensorRenderer
