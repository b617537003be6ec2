"""Recordings decode to the frames written: MP4, GIF and PNG directories; nothing partial is left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

imageio = pytest.importorskip("imageio.v2")

from irl_vla.envs.view import Viewer  # noqa: E402
from irl_vla.viz.recorder import FrameRecorder, RecordFormat  # noqa: E402
from irl_vla.viz.render import ViewConfig  # noqa: E402
from irl_vla.viz.viewer import RecordingViewer, ViewerConfig, make_viewer  # noqa: E402
from tests.viz.views import junction_view  # noqa: E402


def frames(count: int, height: int = 64, width: int = 96) -> list[np.ndarray]:
    out = []
    for i in range(count):
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        frame[:, : (i + 1) * width // count] = (255, 255, 255)  # a bar growing frame by frame
        out.append(frame)
    return out


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_video_decodes_with_the_frames_written(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"run{suffix}"
    recorder = FrameRecorder(path, fps=4.0)
    written = frames(5)
    for frame in written:
        recorder.write(frame)
    assert not path.exists()  # written beside the target until closed
    assert recorder.close() == path
    decoded = imageio.mimread(path)
    assert len(decoded) == 5
    assert decoded[0].shape[:2] == (64, 96)
    white = [float(np.mean(f[..., :3] > 128)) for f in decoded]
    np.testing.assert_allclose(white, [0.2, 0.4, 0.6, 0.8, 1.0], atol=0.03)  # the content, in order
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial file left


def test_png_directory_holds_one_file_per_frame(tmp_path: Path) -> None:
    recorder = FrameRecorder(tmp_path / "frames", fps=2.0)
    assert recorder.format is RecordFormat.PNG
    for frame in frames(3):
        recorder.write(frame)
    recorder.close()
    files = sorted((tmp_path / "frames").iterdir())
    assert [f.name for f in files] == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    np.testing.assert_array_equal(imageio.imread(files[1]), frames(3)[1])


def test_png_directory_with_frames_of_another_run_is_refused(tmp_path: Path) -> None:
    recorder = FrameRecorder(tmp_path / "frames")
    recorder.write(frames(1)[0])
    recorder.close()
    with pytest.raises(FileExistsError, match="already holds 1 frames"):
        FrameRecorder(tmp_path / "frames")


def test_abort_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "run.mp4"
    recorder = FrameRecorder(path)
    recorder.write(frames(1)[0])
    recorder.abort()
    assert list(tmp_path.iterdir()) == []


def test_bad_frames_and_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.avi"):
        FrameRecorder(tmp_path / "x.avi")
    with pytest.raises(ValueError, match="fps"):
        FrameRecorder(tmp_path / "x.gif", fps=0)
    recorder = FrameRecorder(tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="even sides"):
        recorder.write(np.zeros((63, 96, 3), np.uint8))
    recorder.write(frames(1)[0])
    with pytest.raises(ValueError, match="frame 1 is"):
        recorder.write(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        recorder.write(np.zeros((64, 96, 3), np.float32))
    recorder.abort()
    with pytest.raises(ValueError, match="no frame"):
        FrameRecorder(tmp_path / "y.gif").close()


def test_headless_viewer_records_one_frame_per_step(tmp_path: Path) -> None:
    path = tmp_path / "episode.mp4"
    viewer = make_viewer(ViewerConfig(window=False, record=str(path), record_fps=2.0))
    assert isinstance(viewer, RecordingViewer) and isinstance(viewer, Viewer)
    for step in range(3):
        assert viewer.update(junction_view(step=step, time=0.5 * step)) is True
    assert viewer.close() == path
    decoded = imageio.mimread(path)
    width, height = ViewConfig().size
    assert len(decoded) == 3 and decoded[0].shape == (height, width, 3)


def test_headless_viewer_needs_a_recording() -> None:
    with pytest.raises(ValueError, match="record path"):
        make_viewer(ViewerConfig(window=False))


def test_viewer_settings_load_from_rollout_overrides() -> None:
    from irl_vla.common.config import to_dataclass

    settings = {"window": False, "record": "x.gif", "layout": {"bev": {"pixels_per_meter": 10}, "reward_range": [0, 2]}}
    config = to_dataclass(settings, ViewerConfig, where="rollout.viewer")
    assert config.layout.bev.pixels_per_meter == 10.0 and config.layout.reward_range == (0.0, 2.0)
    assert config.layout.bev.width == ViewConfig().bev.width  # the keys not given keep their defaults
    with pytest.raises(ValueError, match="pixel_per_meter"):
        to_dataclass({"layout": {"bev": {"pixel_per_meter": 10}}}, ViewerConfig, where="rollout.viewer")
    with pytest.raises(ValueError, match="camera_height"):
        to_dataclass({"layout": {"camera_height": 5000}}, ViewerConfig, where="rollout.viewer")
    assert set(RecordingViewer(config).sensor_config.cameras) == {"cam_l0", "cam_f0", "cam_r0"}


def test_headless_viewer_never_pauses_and_draws_no_key_help() -> None:
    viewer = RecordingViewer(ViewerConfig(window=False, start_paused=True))
    assert not viewer.state.paused and not viewer.interactive
    assert viewer.update(junction_view()) is True
    from irl_vla.viz.controls import ViewerState
    from irl_vla.viz.render import render_view

    with_help = render_view(junction_view(), viewer.config.layout, ViewerState(), viewer.timeline)
    assert (viewer.last_frame != with_help).any()  # the status line with the keys is the difference
    np.testing.assert_array_equal(
        viewer.last_frame, render_view(junction_view(), viewer.config.layout, None, viewer.timeline)
    )
