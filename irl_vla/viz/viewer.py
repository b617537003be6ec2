"""The live viewer: shows each closed-loop step in a pygame window, reads keys, and records what it shows.

The only module of the suite that imports pygame. Frames come from ``render_view`` (a pure function); this
module only blits them and turns key presses into ``KeyAction`` (``irl_vla.viz.controls``). With
``SDL_VIDEODRIVER=dummy`` the window is virtual, so a headless machine runs it as well; a viewer that only
records (``RecordingViewer``, ``window: false``) never touches pygame.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from irl_vla.data.sensors import SensorConfig
from irl_vla.envs.view import StepView, Viewer
from irl_vla.viz.cameras import camera_names
from irl_vla.viz.controls import KEY_BINDINGS, KeyAction, ViewerState, apply, consume_step
from irl_vla.viz.recorder import FrameRecorder
from irl_vla.viz.render import ViewConfig, render_view
from irl_vla.viz.timeline import Timeline

#: SDL video drivers that show nothing (no keys can arrive).
HEADLESS_DRIVERS = frozenset({"dummy", "offscreen"})


@dataclass
class ViewerConfig:
    """Settings of the live viewer (``viz.*`` of ``irl-vla rollout``).

    Attributes:
        window: open a window (pygame); False only renders and records.
        record: write the frames to ``*.mp4``, ``*.gif`` or a directory of PNGs (None: no recording).
        record_fps: frames per second of the recording [Hz] (2 plays 0.5 s steps in real time).
        start_paused: start paused (space resumes, n steps).
        min_step_time: show each step at least this long [s] (0: as fast as the run goes).
        pause_poll: how often a paused viewer checks its keys [s].
        title: the window's title.
        cameras: cameras the viewer asks the run to render into each observation (``sensor_config``), besides
            those the agent reads; empty: only the agent's.
        layout: the frame's layout.
    """

    window: bool = True
    record: str | None = None
    record_fps: float = 2.0
    start_paused: bool = False
    min_step_time: float = 0.0
    pause_poll: float = 0.05
    title: str = "irl-vla rollout"
    cameras: list[str] = field(default_factory=lambda: ["cam_l0", "cam_f0", "cam_r0"])
    layout: ViewConfig = field(default_factory=ViewConfig)

    def __post_init__(self) -> None:
        if not self.record_fps > 0:
            raise ValueError(f"ViewerConfig.record_fps: expected > 0, got {self.record_fps}")
        if self.min_step_time < 0:
            raise ValueError(f"ViewerConfig.min_step_time: expected >= 0 [s], got {self.min_step_time}")
        if not self.pause_poll > 0:
            raise ValueError(f"ViewerConfig.pause_poll: expected > 0 [s], got {self.pause_poll}")


class RecordingViewer:
    """Renders each step and records it; no window (the ``Viewer`` for headless runs and tests).

    Args:
        config: the viewer's settings (``window`` is ignored).
    """

    #: whether the frames show the viewer's state and keys (only a window has keys)
    interactive = False

    def __init__(self, config: ViewerConfig | None = None) -> None:
        self.config = config or ViewerConfig(window=False)
        self.state = ViewerState()
        self.recorder = FrameRecorder(self.config.record, self.config.record_fps) if self.config.record else None
        self.frames_shown = 0
        self.last_frame: npt.NDArray[np.uint8] | None = None
        self.timeline = Timeline()

    @property
    def sensor_config(self) -> SensorConfig:
        """The sensors this viewer shows (``cameras`` at every history frame), for the run to merge with the agent's."""
        return SensorConfig(cameras={name: True for name in self.config.cameras})

    def render(self, view: StepView) -> npt.NDArray[np.uint8]:
        """The frame of ``view`` in the current state."""
        state = self.state if self.interactive else None
        return render_view(view, self.config.layout, state, self.timeline)

    def update(self, view: StepView) -> bool:
        """Render and record one step; returns False once the user asked to quit."""
        self.timeline.add(view)
        self.last_frame = self.render(view)
        if self.recorder is not None:
            self.recorder.write(self.last_frame)
        self.frames_shown += 1
        return not self.state.quit

    def close(self) -> Path | None:
        """Finish the recording; returns its path (None without one)."""
        if self.recorder is None:
            return None
        if self.recorder.frames_written == 0:
            self.recorder.abort()
            return None
        return self.recorder.close()


class PygameViewer(RecordingViewer):
    """The live window: shows each step, handles keys (pause, single-step, camera, candidates, quit), records.

    A paused viewer holds ``update`` until the user resumes, steps or quits; toggling candidates or switching
    camera while paused redraws the same step (the recording keeps one frame per step).

    Args:
        config: the viewer's settings.
    """

    interactive = True

    def __init__(self, config: ViewerConfig | None = None) -> None:
        super().__init__(config or ViewerConfig())
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        self._pg = pygame
        try:
            pygame.display.init()
            self._screen = pygame.display.set_mode(self.config.layout.size)
        except pygame.error as e:
            raise RuntimeError(
                f"viewer: no window could be opened ({e}); on a machine without a display run with "
                "SDL_VIDEODRIVER=dummy, or record without a window (viz=false record=<path>)"
            ) from None
        driver = pygame.display.get_driver()
        if self.config.start_paused and driver in HEADLESS_DRIVERS:
            pygame.display.quit()
            raise ValueError(
                f"viewer: start_paused with SDL's {driver!r} video driver would wait forever (no keys reach a "
                "window nobody sees); drop start_paused or run where there is a display"
            )
        pygame.display.set_caption(self.config.title)
        self.state = ViewerState(paused=self.config.start_paused)
        self._last_update = 0.0
        self._num_cameras = 0

    def handle(self, action: KeyAction) -> None:
        """Apply a key's action to the state."""
        self.state = apply(self.state, action, self._num_cameras)

    def poll(self) -> bool:
        """Apply every pending window event; returns whether any changed what is drawn."""
        before = self.state
        for event in self._pg.event.get():
            if event.type == self._pg.QUIT:
                self.handle(KeyAction.QUIT)
            elif event.type == self._pg.KEYDOWN:
                action = KEY_BINDINGS.get(self._pg.key.name(event.key))
                if action is not None:
                    self.handle(action)
        return (self.state.camera, self.state.show_candidates, self.state.paused) != (
            before.camera,
            before.show_candidates,
            before.paused,
        )

    def show(self, frame: npt.NDArray[np.uint8]) -> None:
        """Blit an RGB frame ``(H, W, 3)`` to the window."""
        height, width = frame.shape[:2]
        surface = self._pg.image.frombuffer(np.ascontiguousarray(frame).tobytes(), (width, height), "RGB")
        self._screen.blit(surface, (0, 0))
        self._pg.display.flip()

    def update(self, view: StepView) -> bool:
        """Show one step, then wait while paused; returns False once the user asked to quit."""
        self._num_cameras = len(camera_names(view.cameras))
        self.poll()
        wait = self.config.min_step_time - (time.perf_counter() - self._last_update)
        if wait > 0:
            time.sleep(wait)
        super().update(view)
        assert self.last_frame is not None
        self.show(self.last_frame)
        while not self.state.may_advance:
            if self.poll():
                self.show(self.render(view))
            if not self.state.may_advance:
                time.sleep(self.config.pause_poll)
        self.state = consume_step(self.state)
        self._last_update = time.perf_counter()
        return not self.state.quit

    def close(self) -> Path | None:
        """Finish the recording and close the window."""
        path = super().close()
        self._pg.display.quit()
        return path


def make_viewer(config: ViewerConfig) -> Viewer:
    """The viewer ``config`` asks for: a window (``PygameViewer``) or only a recording (``RecordingViewer``).

    Raises:
        ValueError: when it asks for neither a window nor a recording.
    """
    if config.window:
        return PygameViewer(config)
    if not config.record:
        raise ValueError("viewer: window=false needs a record path (*.mp4, *.gif or a directory of PNGs)")
    return RecordingViewer(config)
