"""The window's keys, on synthetic pygame events (SDL's dummy video driver: no display needed)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from irl_vla.viz import palette
from irl_vla.viz.controls import KeyAction, ViewerState, apply, consume_step
from irl_vla.viz.viewer import PygameViewer, ViewerConfig
from tests.test_layering import _modules, imported_modules
from tests.viz.views import junction_view


@pytest.fixture
def viewer(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    v = PygameViewer(ViewerConfig(pause_poll=0.01))
    yield v
    v.close()


def press(viewer: PygameViewer, *keys: str) -> None:
    pg = viewer._pg
    for key in keys:
        pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.key.key_code(key)))


def test_key_actions_as_a_state_machine() -> None:
    state = ViewerState()
    assert state.may_advance
    paused = apply(state, KeyAction.PAUSE, 3)
    assert paused.paused and not paused.may_advance
    stepped = apply(paused, KeyAction.STEP, 3)
    assert stepped.paused and stepped.may_advance
    assert not consume_step(stepped).may_advance
    assert apply(state, KeyAction.STEP, 3) == ViewerState(paused=True)  # a step key while running pauses
    assert not apply(paused, KeyAction.PAUSE, 3).paused
    cams = [state]
    for _ in range(4):
        cams.append(apply(cams[-1], KeyAction.NEXT_CAMERA, 3))
    assert [s.camera for s in cams] == [None, 0, 1, 2, None]
    assert apply(state, KeyAction.NEXT_CAMERA, 0).camera is None
    assert not apply(state, KeyAction.TOGGLE_CANDIDATES, 3).show_candidates
    quit_ = apply(paused, KeyAction.QUIT, 3)
    assert quit_.quit and quit_.may_advance


def test_running_viewer_shows_each_step_and_quits_on_q(viewer: PygameViewer) -> None:
    assert viewer.update(junction_view()) is True
    frame = viewer._pg.surfarray.array3d(viewer._screen).transpose(1, 0, 2)  # (H, W, 3) of the window
    np.testing.assert_array_equal(frame, viewer.last_frame)
    press(viewer, "q")
    assert viewer.update(junction_view(step=4)) is False


def test_closing_the_window_quits(viewer: PygameViewer) -> None:
    viewer._pg.event.post(viewer._pg.event.Event(viewer._pg.QUIT))
    assert viewer.update(junction_view()) is False


def test_pause_holds_the_step_until_a_single_step(viewer: PygameViewer) -> None:
    press(viewer, "space", "n")  # pause, then one step: this update returns at once
    assert viewer.update(junction_view()) is True
    assert viewer.state.paused and not viewer.state.step_pending
    timer = threading.Timer(0.3, press, (viewer, "n"))
    timer.start()
    start = time.perf_counter()
    assert viewer.update(junction_view(step=4)) is True  # held until the timer's step key
    assert time.perf_counter() - start >= 0.25
    assert viewer.frames_shown == 2 and viewer.state.paused
    timer = threading.Timer(0.2, press, (viewer, "space"))
    timer.start()
    assert viewer.update(junction_view(step=5)) is True  # resumed
    assert not viewer.state.paused
    timer = threading.Timer(0.1, press, (viewer, "space", "q"))  # quitting a paused viewer releases it
    press(viewer, "space")
    timer.start()
    assert viewer.update(junction_view(step=6)) is False


def test_keys_switch_camera_and_toggle_candidates(viewer: PygameViewer) -> None:
    candidate = tuple(palette.reward_colours(0.9))
    bev = slice(0, viewer.config.layout.bev.width)  # the colour bar beside the BEV holds every reward colour
    viewer.update(junction_view())
    assert np.all(viewer.last_frame[:, bev] == candidate, axis=-1).any()
    press(viewer, "k", "c", "c")
    viewer.update(junction_view())
    assert viewer.state.camera == 1 and not viewer.state.show_candidates
    assert not np.all(viewer.last_frame[:, bev] == candidate, axis=-1).any()
    assert not np.all(viewer.last_frame == (200, 0, 0), axis=-1).any()  # cam_l0 is hidden
    assert np.all(viewer.last_frame == (0, 200, 0), axis=-1).any()  # cam_f0 alone


def test_window_viewer_records_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    viewer = PygameViewer(ViewerConfig(record=str(tmp_path / "frames")))
    for step in range(2):
        viewer.update(junction_view(step=step))
    assert viewer.close() == tmp_path / "frames"
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) == 2


def test_only_the_viz_package_imports_pygame() -> None:
    modules = _modules("irl_vla") + _modules("sim_bridges") + _modules("tools")
    assert len(modules) > 50
    users = []
    for module, path in modules:
        text = path.read_text()
        if "pygame" in text and any(n.split(".")[0] == "pygame" for n in imported_modules(text, module)):
            users.append(module)
    assert users == ["irl_vla.viz.viewer"]


def test_a_window_that_cannot_open_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "no_such_driver")
    with pytest.raises(RuntimeError, match="SDL_VIDEODRIVER=dummy"):
        PygameViewer(ViewerConfig())


def test_starting_paused_without_a_display_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with pytest.raises(ValueError, match="start_paused"):
        PygameViewer(ViewerConfig(start_paused=True))
