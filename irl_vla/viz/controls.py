"""What the viewer's keys do, as a pure state machine (the window only turns key presses into ``KeyAction``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class KeyAction(str, Enum):
    """What a key asks for."""

    PAUSE = "pause"  # pause or resume
    STEP = "step"  # advance one step while paused (and stay paused)
    NEXT_CAMERA = "next_camera"  # all cameras -> each camera in turn -> all cameras
    TOGGLE_CANDIDATES = "toggle_candidates"  # show or hide the K candidates
    QUIT = "quit"  # stop the episode and close


#: Key names (as pygame names them, ``pygame.key.name``) and the action of each.
KEY_BINDINGS: dict[str, KeyAction] = {
    "space": KeyAction.PAUSE,
    "p": KeyAction.PAUSE,
    "n": KeyAction.STEP,
    "right": KeyAction.STEP,
    "c": KeyAction.NEXT_CAMERA,
    "k": KeyAction.TOGGLE_CANDIDATES,
    "q": KeyAction.QUIT,
    "escape": KeyAction.QUIT,
}

HELP = "space pause | n step | c camera | k candidates | q quit"


@dataclass(frozen=True)
class ViewerState:
    """What the user has chosen.

    Attributes:
        paused: the episode waits for the user.
        step_pending: the user asked for one more step while paused.
        camera: index of the camera shown alone, or None for all cameras.
        show_candidates: draw the K candidates.
        quit: the user asked to stop.
    """

    paused: bool = False
    step_pending: bool = False
    camera: int | None = None
    show_candidates: bool = True
    quit: bool = False

    @property
    def may_advance(self) -> bool:
        """Whether the episode may take its next step."""
        return self.quit or not self.paused or self.step_pending

    def camera_name(self, names: list[str]) -> str | None:
        """The camera shown alone among ``names`` (None: all; an index past the rig shows all)."""
        return names[self.camera] if self.camera is not None and self.camera < len(names) else None


def apply(state: ViewerState, action: KeyAction, num_cameras: int) -> ViewerState:
    """The state after ``action``, with ``num_cameras`` cameras to cycle through."""
    if action is KeyAction.PAUSE:
        return replace(state, paused=not state.paused, step_pending=False)
    if action is KeyAction.STEP:
        return replace(state, paused=True, step_pending=state.paused)  # the first press only pauses
    if action is KeyAction.NEXT_CAMERA:
        nxt = 0 if state.camera is None else state.camera + 1
        return replace(state, camera=nxt if nxt < num_cameras else None)
    if action is KeyAction.TOGGLE_CANDIDATES:
        return replace(state, show_candidates=not state.show_candidates)
    return replace(state, quit=True)


def consume_step(state: ViewerState) -> ViewerState:
    """The state once a pending single step has been taken."""
    return replace(state, step_pending=False)
