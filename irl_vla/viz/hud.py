"""The head-up display, and the colour bar of the candidates' rewards.

The HUD shows speed, command, instruction, meta-action, the learned reward beside the simulator's sub-scores,
route completion, infractions as they happen, and the viewer's state.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from irl_vla.envs.view import StepView
from irl_vla.scoring.sub_scores import SubScore
from irl_vla.viz import palette
from irl_vla.viz.controls import HELP, ViewerState
from irl_vla.viz.text import draw_text, wrap
from irl_vla.viz.timeline import Timeline, render_timeline, window_score

RECENT = 2.0  # an infraction this recent is marked new [s]
MAX_INFRACTIONS = 6  # infraction lines shown (newest first)
SIZE = 15  # body text [px]
LINE = 20  # line height [px]
CHART_HEIGHT = 84  # the episode chart [px]


def _bar(draw: ImageDraw.ImageDraw, x: float, y: float, w: float, h: float, value: float, fill: tuple) -> None:
    """A horizontal bar filled to ``value`` in [0, 1] (NaN: empty)."""
    draw.rectangle((x, y, x + w, y + h), outline=palette.TEXT_DIM)
    if np.isfinite(value):
        draw.rectangle((x + 1, y + 1, x + 1 + (w - 2) * float(np.clip(value, 0, 1)), y + h - 1), fill=fill)


def _score_colour(value: float) -> tuple[int, int, int]:
    if not np.isfinite(value):
        return palette.TEXT_DIM
    return palette.TEXT_OK if value >= 0.999 else (palette.TEXT_ALERT if value <= 0.001 else (240, 200, 80))


def render_hud(
    view: StepView, width: int, height: int, state: ViewerState | None = None, timeline: Timeline | None = None
) -> npt.NDArray[np.uint8]:
    """The HUD panel ``(height, width, 3)`` of ``view``.

    Args:
        view: the step shown.
        width: panel width [px].
        height: panel height [px].
        state: the viewer's state (adds the pause, candidates and keys line).
        timeline: the episode so far (adds the chart of learned reward against the simulator's EPDMS).
    """
    image = Image.new("RGB", (width, height), palette.PANEL)
    draw = ImageDraw.Draw(image)
    x, y = 12, 8
    frame = view.frame
    draw_text(image, (x, y), f"{view.route_id}   t {view.time:5.1f} s   step {view.step}", 17, palette.TEXT)
    y += LINE + 6
    kmh = view.speed * 3.6
    meta = view.meta_action.value if view.meta_action is not None else "-"
    draw_text(
        image,
        (x, y),
        f"speed {view.speed:4.1f} m/s ({kmh:3.0f} km/h)   command {view.command.name.lower()}   meta-action {meta}",
        SIZE,
        palette.TEXT,
    )
    y += LINE
    for line in wrap(f"instruction: {view.instruction or frame.instruction or '-'}", width - 2 * x, SIZE)[:2]:
        draw_text(image, (x, y), line, SIZE, palette.TEXT)
        y += LINE
    y += 4
    # Learned reward beside the simulator's verdicts.
    label_w = 170
    bar_w = width - 2 * x - label_w - 60
    rows = [
        ("learned reward", view.learned_reward, palette.PLAN),
        ("simulator EPDMS (4 s)", window_score(view.sub_scores), palette.TEXT),
        ("route completion", view.route_completion / 100.0, palette.ROUTE_LINE),
        ("infraction penalty", view.penalty, palette.TEXT_OK if view.penalty >= 0.999 else palette.TEXT_ALERT),
    ]
    for label, value, colour in rows:
        v = float("nan") if value is None else float(value)
        draw_text(image, (x, y), label, SIZE, palette.TEXT)
        _bar(draw, x + label_w, y + 2, bar_w, LINE - 6, v, colour)
        text = "-" if not np.isfinite(v) else (f"{100 * v:.1f} %" if label == "route completion" else f"{v:.3f}")
        draw_text(image, (x + label_w + bar_w + 8, y), text, SIZE, palette.TEXT)
        y += LINE
    y += 4
    draw_text(image, (x, y), "simulator sub-scores (rolling 4 s)", 13, palette.TEXT_DIM)
    y += LINE - 2
    scores = np.full(len(SubScore), np.nan) if view.sub_scores is None else np.asarray(view.sub_scores, float)
    cell = (width - 2 * x) / len(SubScore)
    for s in SubScore:
        cx = x + s * cell
        value = float(scores[s])
        draw_text(image, (cx + cell / 2, y), s.name, 13, palette.TEXT, "mt")
        _bar(draw, cx + 4, y + 17, cell - 8, 8, value, _score_colour(value))
        shown = "-" if not np.isfinite(value) else f"{value:.2f}"
        draw_text(image, (cx + cell / 2, y + 28), shown, 13, _score_colour(value), "mt")
    y += 50
    if timeline is not None:
        chart = render_timeline(timeline, view, width - 2 * x + 8, CHART_HEIGHT)
        image.paste(Image.fromarray(chart), (x - 4, y))
        y += CHART_HEIGHT + 6
    draw_text(image, (x, y), f"infractions ({len(view.infractions)})", 13, palette.TEXT_DIM)
    y += LINE - 2
    room = max(1, int((height - LINE - y) // (LINE - 3)))
    for event in reversed(view.infractions[-min(MAX_INFRACTIONS, room) :]):
        new = view.time - event.time <= RECENT
        text = ("NEW  " if new else "     ") + event.describe()
        draw_text(image, (x, y), text, 13, palette.TEXT_ALERT if new else palette.TEXT)
        y += LINE - 3
    if not view.infractions:
        draw_text(image, (x, y), "none", 13, palette.TEXT_OK)
    status = []
    if view.termination:
        status.append(f"episode ended: {view.termination}")
    if state is not None:
        status.append("PAUSED" if state.paused else "running")
        status.append("candidates on" if state.show_candidates else "candidates off")
        status.append(HELP)
    if status:
        draw_text(image, (x, height - LINE), "   ".join(status), 13, palette.TEXT_DIM)
    return np.asarray(image)


def render_colour_bar(
    width: int,
    height: int,
    value_range: tuple[float, float],
    title: str,
    marks: npt.ArrayLike = (),
    plan_value: float | None = None,
) -> npt.NDArray[np.uint8]:
    """A vertical colour bar ``(height, width, 3)`` of the candidates' colour map, high at the top.

    Args:
        width: panel width [px].
        height: panel height [px].
        value_range: (low, high) values at the bar's ends.
        title: what the colours mean.
        marks: values to tick beside the bar (the candidates').
        plan_value: the executed plan's value, ticked in the plan's colour.
    """
    image = Image.new("RGB", (width, height), palette.PANEL)
    draw = ImageDraw.Draw(image)
    top, bottom = 44, height - 24
    left, right = 8, min(width - 30, 26)
    low, high = value_range
    values = np.linspace(high, low, bottom - top)  # (R,) top row first
    colours = palette.reward_colours(values, value_range)  # (R, 3)
    strip = np.repeat(colours[:, None, :], right - left, axis=1)  # (R, W, 3)
    image.paste(Image.fromarray(strip), (left, top))
    for i, line in enumerate(wrap(title, width - 4, 12)[:2]):
        draw_text(image, (width / 2, 6 + 15 * i), line, 12, palette.TEXT, "mt")
    draw_text(image, (right + 3, top), f"{high:g}", 12, palette.TEXT, "lm")
    draw_text(image, (right + 3, bottom), f"{low:g}", 12, palette.TEXT, "lm")

    def row(value: float) -> float:
        return top + (high - float(np.clip(value, low, high))) / (high - low) * (bottom - top - 1)

    for value in np.asarray(marks, dtype=np.float64).ravel():
        if np.isfinite(value):
            draw.line((left - 6, row(value), left - 1, row(value)), fill=palette.TEXT, width=1)
    if plan_value is not None and np.isfinite(plan_value):
        r = row(plan_value)
        draw.polygon([(right + 1, r), (right + 8, r - 5), (right + 8, r + 5)], fill=palette.PLAN)
    return np.asarray(image)
