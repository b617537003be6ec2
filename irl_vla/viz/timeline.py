"""The episode so far as a chart of the learned reward against the simulator's verdict.

Step by step: the learned reward of each executed plan beside the simulator's EPDMS of its rolling 4 s window,
with the infractions marked, and how well the two agree (Pearson r).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from irl_vla.data.enums import XY
from irl_vla.envs.view import StepView
from irl_vla.scoring.aggregation import aggregate
from irl_vla.viz import palette
from irl_vla.viz.text import draw_text

MIN_PAIRS = 3  # steps with both values before a correlation is shown
PAD = 4  # space between the chart's frame and the values 0 and 1 [px]
GRID = (64, 66, 74)  # the lines at 0.5 and 1


def window_score(sub_scores: npt.ArrayLike | None) -> float | None:
    """The simulator's EPDMS of a rolling window's sub-scores (the suite's one aggregation), None before one."""
    if sub_scores is None:
        return None
    try:
        return float(aggregate(np.asarray(sub_scores, dtype=np.float64)))
    except ValueError:  # NaN in a required sub-score: no full window yet
        return None


@dataclass
class Timeline:
    """What a viewer remembers of the episode it shows (one entry per step; a new episode starts it afresh).

    Attributes:
        route_id: the episode's route.
        times: simulated time of each step [s].
        learned: the learned reward of each step's executed plan (NaN without one).
        simulated: the simulator's EPDMS of each step's rolling window (NaN before the first full window).
        positions: the ego's global rear-axle position at each step (x [m], y [m]): the BEV draws its trail.
    """

    route_id: str = ""
    times: list[float] = field(default_factory=list)
    learned: list[float] = field(default_factory=list)
    simulated: list[float] = field(default_factory=list)
    positions: list[tuple[float, float]] = field(default_factory=list)

    def add(self, view: StepView) -> None:
        """Append a step; a different route, step 0 or time running backwards starts a new episode."""
        if view.route_id != self.route_id or view.step == 0 or (self.times and view.time < self.times[-1]):
            self.route_id, self.times, self.learned, self.simulated, self.positions = view.route_id, [], [], [], []
        score = window_score(view.sub_scores)
        self.times.append(float(view.time))
        self.learned.append(math.nan if view.learned_reward is None else float(view.learned_reward))
        self.simulated.append(math.nan if score is None else score)
        x, y = view.frame.ego_status.ego_pose[XY]
        self.positions.append((float(x), float(y)))

    def correlation(self) -> tuple[float | None, int]:
        """Pearson r of learned reward and simulator EPDMS over the steps holding both, and their count.

        r is None with fewer than ``MIN_PAIRS`` such steps or when either series is constant.
        """
        a, b = np.asarray(self.learned), np.asarray(self.simulated)
        ok = np.isfinite(a) & np.isfinite(b)
        n = int(ok.sum())
        if n < MIN_PAIRS or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
            return None, n
        return float(np.corrcoef(a[ok], b[ok])[0, 1]), n


def _polyline(draw: ImageDraw.ImageDraw, cols: npt.NDArray, rows: npt.NDArray, fill: tuple, width: int) -> None:
    """A line through the finite points, broken where a value is missing."""
    finite = np.isfinite(rows)
    start = None
    for i in range(len(rows) + 1):
        if i < len(rows) and finite[i]:
            start = i if start is None else start
            continue
        if start is not None:
            seg = [(float(cols[j]), float(rows[j])) for j in range(start, i)]
            if len(seg) == 1:
                c, r = seg[0]
                draw.ellipse((c - 1.5, r - 1.5, c + 1.5, r + 1.5), fill=fill)
            else:
                draw.line(seg, fill=fill, width=width)
            start = None


def render_timeline(
    timeline: Timeline, view: StepView, width: int, height: int, span: float = 30.0
) -> npt.NDArray[np.uint8]:
    """The chart ``(height, width, 3)`` of the last ``span`` seconds [s] of the episode, values 0 (bottom) to 1.

    Args:
        timeline: the episode so far.
        view: the step shown (its infractions are marked as red ticks).
        width: chart width [px].
        height: chart height [px].
        span: time shown [s].
    """
    image = Image.new("RGB", (width, height), palette.PANEL)
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 4, width - 4, 16, height - 3
    draw.rectangle((left, top, right, bottom), outline=palette.TEXT_DIM)
    r, n = timeline.correlation()
    legend = f"r = {r:+.2f} over {n} steps" if r is not None else f"r: - ({n} steps with both)"
    draw_text(image, (left, 1), "learned reward", 12, palette.PLAN)
    draw_text(image, (left + 100, 1), "simulator EPDMS (4 s)", 12, palette.TEXT)
    draw_text(image, (right, 1), legend, 12, palette.TEXT_DIM, "ra")
    if not timeline.times:
        return np.asarray(image)
    end = max(timeline.times[-1], span)
    times = np.asarray(timeline.times)

    def col(t: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return left + (np.asarray(t, dtype=np.float64) - (end - span)) / span * (right - left)

    def row(v: npt.ArrayLike) -> npt.NDArray[np.float64]:  # 0 and 1 lie inside the frame, not on it
        return bottom - PAD - np.clip(np.asarray(v, dtype=np.float64), 0.0, 1.0) * (bottom - top - 2 * PAD)

    for grid in (0.5, 1.0):
        draw.line((left + 1, float(row(grid)), right - 1, float(row(grid))), fill=GRID, width=1)

    for event in view.infractions:
        if end - span <= event.time <= end:
            c = float(col(event.time))
            draw.line((c, top, c, bottom), fill=palette.INFRACTION, width=2)
    shown = times >= end - span
    _polyline(draw, col(times[shown]), row(np.asarray(timeline.simulated)[shown]), palette.TEXT, 2)
    _polyline(draw, col(times[shown]), row(np.asarray(timeline.learned)[shown]), palette.PLAN, 2)
    return np.asarray(image)
