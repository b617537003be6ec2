"""``SceneFilter``: how scenes are cut out of logs and which ones are kept."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SceneFilter:
    """Windowing and selection of scenes (NAVSIM ``SceneFilter``).

    Attributes:
        num_history_frames: frames up to and including the current one.
        num_future_frames: frames after the current one.
        frame_interval: step between consecutive windows [frames]; ``None`` = non-overlapping windows.
        has_route: keep only scenes whose current frame has route roadblock ids.
        max_scenes: keep at most this many scenes (``None`` = all).
        log_names: keep only these logs (``None`` = all).
        tokens: keep only these scene tokens (``None`` = all).
    """

    num_history_frames: int = 4
    num_future_frames: int = 10
    frame_interval: int | None = None
    has_route: bool = True
    max_scenes: int | None = None
    log_names: list[str] | None = None
    tokens: list[str] | None = None

    def __post_init__(self) -> None:
        if self.num_history_frames < 1:
            raise ValueError(f"SceneFilter.num_history_frames: expected >= 1, got {self.num_history_frames}")
        if self.num_future_frames < 0:
            raise ValueError(f"SceneFilter.num_future_frames: expected >= 0, got {self.num_future_frames}")
        if self.frame_interval is not None and self.frame_interval < 1:
            raise ValueError(f"SceneFilter.frame_interval: expected >= 1 or None, got {self.frame_interval}")
        if self.max_scenes is not None and self.max_scenes < 1:
            raise ValueError(f"SceneFilter.max_scenes: expected >= 1 or None, got {self.max_scenes}")

    @property
    def num_frames(self) -> int:
        """Frames per scene window."""
        return self.num_history_frames + self.num_future_frames

    @property
    def window_step(self) -> int:
        """Step between consecutive windows [frames]."""
        return self.num_frames if self.frame_interval is None else self.frame_interval

    def window_starts(self, num_log_frames: int) -> range:
        """Start indices of the scene windows in a log of ``num_log_frames`` frames."""
        return range(0, max(0, num_log_frames - self.num_frames + 1), self.window_step)

    def keeps(self, log_name: str, token: str) -> bool:
        """Whether a scene of ``log_name`` with current-frame ``token`` passes the name/token filters."""
        if self.log_names is not None and log_name not in self.log_names:
            return False
        return self.tokens is None or token in self.tokens
