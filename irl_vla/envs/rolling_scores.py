"""NAVSIM sub-scores of what the ego actually drove, over rolling 4 s windows (the simulator's verdict).

Every 0.5 s frame of an episode can start a window: once the 8 frames of the next 4 s have been driven, the
window's ``Scene`` (4 history frames, the 8 driven frames, the map) is cached exactly as the metric cache does
for a logged scene (PDM-Closed reference included) and the driven 4 s, as a plan relative to the window's first
frame, is scored by the scorer. So a window's sub-scores are what the NAVSIM scorer says of the ego's real
motion from that frame; EP compares it with PDM-Closed's progress from the same state. EC needs two plans of
consecutive frames and stays undefined (NaN; the aggregation drops its weight).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.data.map.map_api import Map
from irl_vla.data.scene import LOG_INTERVAL, Frame, Scene, SceneMetadata
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.scoring.aggregation import EPDMS, AggregationConfig, aggregate
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.pdm_closed import PDMClosedPlanner, plan_scene
from irl_vla.scoring.scene_cache import build_scene_cache
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES

log = logging.getLogger(__name__)


@dataclass
class WindowScore:
    """The sub-scores of one window.

    Attributes:
        start_index: index (in 0.5 s frames since the reset) of the window's first frame.
        start_time: its time since the reset [s].
        sub_scores: ``(n_sub,)`` by ``SubScore``; all NaN when the window could not be scored.
        score: the aggregated score (EPDMS by default), NaN when not scored.
        error: why the window could not be scored, or "".
    """

    start_index: int
    start_time: float
    sub_scores: npt.NDArray[np.float64]
    score: float
    error: str = ""


@dataclass
class RollingScorer:
    """Scores an episode's driven motion window by window as its frames arrive.

    Attributes:
        map_api: the location's map.
        log_name: name used in the windows' scene metadata (the route id).
        num_history_frames: history frames of a window's scene (the current included).
        aggregation: how sub-scores aggregate.
        stride: score every ``stride``-th window (1: every 0.5 s).
    """

    map_api: Map
    log_name: str
    num_history_frames: int = 4
    aggregation: AggregationConfig = field(default_factory=lambda: EPDMS)
    stride: int = 1

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"RollingScorer.stride: expected >= 1, got {self.stride}")
        self.frames: list[Frame] = []
        self._last_index = -1
        self.windows: list[WindowScore] = []
        self.scorer = FastScorer()
        self.planner = PDMClosedPlanner(self.scorer)
        assert DEFAULT_SAMPLING.num_poses is not None
        self.num_future = DEFAULT_SAMPLING.num_poses

    def add(self, frame: Frame, time: float) -> WindowScore | None:
        """Add the frame at ``time`` [s]; returns the window that it completes, if one is scored.

        Only frames at multiples of 0.5 s count; a window needs 12 consecutive ones (a gap starts afresh).
        """
        steps = time / LOG_INTERVAL
        index = round(steps)
        if abs(steps - index) > 1e-6:
            return None
        if self.frames and index != self._last_index + 1:
            self.frames = []  # a gap: windows start again after it
        self.frames.append(frame)
        self._last_index = index
        start = len(self.frames) - 1 - self.num_future
        first = start - (self.num_history_frames - 1)
        start_index = index - self.num_future
        if first < 0 or start_index % self.stride:
            return None
        window = self._score(self.frames[first : start + 1 + self.num_future], start_index)
        self.windows.append(window)
        return window

    def _score(self, frames: list[Frame], start: int) -> WindowScore:
        current = frames[self.num_history_frames - 1]
        meta = SceneMetadata(
            log_name=self.log_name,
            scene_token=current.token,
            map_name=self.map_api.name,
            initial_token=current.token,
            num_history_frames=self.num_history_frames,
            num_future_frames=self.num_future,
        )
        try:
            scene = Scene(meta, frames, self.map_api)
            cache = plan_scene(build_scene_cache(scene), self.planner)
            driven = scene.get_future_trajectory(self.num_future)
            result = self.scorer.score(cache, driven.poses.astype(np.float64)[None], driven.trajectory_sampling)
        except (ValueError, KeyError) as e:
            message = f"window at {start * LOG_INTERVAL:.1f} s ({current.token}): {e}"
            log.warning("rolling sub-scores of %s: %s", self.log_name, message)
            return WindowScore(start, start * LOG_INTERVAL, np.full(NUM_SUB_SCORES, np.nan), float("nan"), message)
        sub = result.sub_scores[0]
        return WindowScore(start, start * LOG_INTERVAL, sub, float(aggregate(sub[None], self.aggregation)[0]))
