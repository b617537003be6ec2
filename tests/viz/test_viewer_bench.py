"""``irl-vla bench viewer`` on a hand-made scene source (two scenes), every measurement once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from irl_vla.data.scene import Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.viz import viewer_bench
from tests.fixtures import build_straight_scene, build_t_junction
from tests.viz.views import camera

pytest.importorskip("imageio")


class TwoScenes:
    """A scene source of two straight-driving scenes on the T-junction, with flat-coloured cameras."""

    name = "two"
    tokens = ("a", "b")

    def get_scene(self, token: str, sensors: SensorConfig | None = None) -> Scene:
        scene = replace(build_straight_scene(), map_api=build_t_junction())
        if sensors is None:
            return scene
        current = scene.scene_metadata.num_history_frames - 1
        cams = {name: camera((40, 80, 120)) for name in sensors.cameras_at(current)}
        frames = list(scene.frames)
        frames[current] = replace(frames[current], cameras=cams)
        return replace(scene, frames=frames)


def test_viewer_bench_measures_every_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    cfg = viewer_bench.ViewerBenchConfig(num_scenes=2, num_candidates=3, record_formats=["gif"])
    records = list(viewer_bench.run(cfg, 1, TwoScenes))
    assert [r["name"] for r in records] == ["bev", "frame", "record_gif", "window"]
    for r in records:
        assert r["items"] == 2 and r["frames_per_s"] > 0 and r["cpu_frames_per_s"] > 0
    assert records[2]["bytes_per_frame"] > 0


def test_viewer_bench_config_is_validated() -> None:
    with pytest.raises(ValueError, match="record_formats"):
        viewer_bench.ViewerBenchConfig(record_formats=["avi"])
    with pytest.raises(ValueError, match="num_scenes"):
        viewer_bench.ViewerBenchConfig(num_scenes=0)
