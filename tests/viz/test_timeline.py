"""The episode chart: what it remembers, the running agreement, and where it draws."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from irl_vla.envs.infractions import Infraction, InfractionKind
from irl_vla.scoring.sub_scores import SubScore
from irl_vla.viz import palette
from irl_vla.viz.render import render_view
from irl_vla.viz.timeline import Timeline, render_timeline
from irl_vla.viz.viewer import RecordingViewer, ViewerConfig
from tests.viz.views import EGO, junction_view


def step(k: int, learned: float | None, ep: float | None, route: str = "r/0"):
    scores = None if ep is None else np.ones(len(SubScore))
    if scores is not None:
        scores[SubScore.EP] = ep
    return junction_view(route_id=route, step=k, time=0.5 * k, learned_reward=learned, sub_scores=scores,
                         infractions=[])  # fmt: skip


def test_timeline_keeps_one_episode() -> None:
    timeline = Timeline()
    for k in range(4):
        timeline.add(step(k, 0.2 * k, None if k == 0 else 0.25 * k))
    assert timeline.times == [0.0, 0.5, 1.0, 1.5]
    assert np.isnan(timeline.simulated[0]) and timeline.learned[2] == pytest.approx(0.4)
    timeline.add(step(0, 0.5, 0.5))  # the next episode starts at step 0
    assert timeline.times == [0.0]
    timeline.add(step(1, 0.5, 0.5, route="other/1"))  # another route
    assert timeline.route_id == "other/1" and len(timeline.times) == 1


def test_running_correlation_of_learned_reward_and_simulator() -> None:
    timeline = Timeline()
    ep = [0.2, 0.9, 0.5, 0.7, 0.1]
    for k, e in enumerate(ep):
        timeline.add(step(k + 1, None if k == 2 else 0.1 + 0.5 * e, e))
    expected = np.corrcoef([0.1 + 0.5 * e for i, e in enumerate(ep) if i != 2], [e for i, e in enumerate(ep) if i != 2])
    r, n = timeline.correlation()
    assert n == 4 and r == pytest.approx(expected[0, 1])  # the step without a learned reward is left out
    short = Timeline()
    for k in range(2):
        short.add(step(k + 1, 0.5, 0.5 + 0.1 * k))
    assert short.correlation() == (None, 2)
    constant = Timeline()
    for k in range(4):
        constant.add(step(k + 1, 0.5, 0.2 * k))
    assert constant.correlation() == (None, 4)


def test_chart_draws_both_series_and_the_infractions() -> None:
    timeline = Timeline()
    for k in range(1, 9):
        timeline.add(step(k, 0.9, 0.3))
    view = step(8, 0.9, 0.3)
    view.infractions = [Infraction(InfractionKind.COLLISION_VEHICLE, 2.0, np.zeros(2), "t0")]
    width, height = 400, 84
    chart = render_timeline(timeline, view, width, height, span=30.0)
    left, right, top, bottom = 4, width - 4, 16, height - 3

    def col(t: float) -> int:
        return round(left + t / 30.0 * (right - left))

    def row(v: float) -> int:
        return round(bottom - 4 - v * (bottom - top - 8))

    def has(colour, r: int, c: int) -> bool:
        patch = chart[r - 1 : r + 2, c - 1 : c + 2]
        return bool(np.all(patch == np.asarray(colour, np.uint8), axis=-1).any())

    assert has(palette.PLAN, row(0.9), col(3.0))
    assert has(palette.TEXT, row(timeline.simulated[-1]), col(3.0))  # EPDMS of sub-scores with EP = 0.3
    assert has(palette.INFRACTION, row(0.6), col(2.0))  # a tick across the chart at the collision
    assert not has(palette.INFRACTION, row(0.6), col(3.0))


def test_viewer_charts_the_episode_in_its_frames() -> None:
    viewer = RecordingViewer(ViewerConfig(window=False))
    for k in range(1, 6):
        viewer.update(step(k, 0.2 * k, 0.15 * k))
    assert viewer.timeline.times == [0.5, 1.0, 1.5, 2.0, 2.5]
    layout = viewer.config.layout
    hud = viewer.last_frame[layout.camera_height :, layout.bev.width + layout.bar_width :]
    assert np.all(hud == palette.PLAN, axis=-1).sum() > 40  # the learned-reward bar and the chart's line
    without = RecordingViewer(ViewerConfig(window=False))
    without.update(step(5, 0.2 * 5, 0.15 * 5))
    assert (
        np.all(viewer.last_frame == palette.PLAN, axis=-1).sum()
        > np.all(without.last_frame == palette.PLAN, axis=-1).sum()
    )


def test_viewer_draws_the_ego_trail() -> None:
    viewer = RecordingViewer(ViewerConfig(window=False))
    base = junction_view(infractions=[])  # (an infraction's cross would cover the first position)
    for k in range(4):  # the ego drives 5 m east per step; the last position is the ego itself
        status = replace(base.frame.ego_status, ego_pose=EGO + np.array([5.0 * k, 0.0, 0.0]))
        viewer.update(replace(base, step=k + 1, time=0.5 * (k + 1), frame=replace(base.frame, ego_status=status)))
    assert viewer.timeline.positions[0] == (EGO[0], EGO[1])
    bev = viewer.last_frame[:, : viewer.config.layout.bev.width]
    config = viewer.config.layout.bev
    for back in (10.0, 15.0):  # the positions of earlier steps, behind the ego now
        row, col = config.pixel_of(-back, 0.0)
        assert tuple(bev[row, col]) == palette.TRAIL
    assert not np.all(render_view(base) == palette.TRAIL, axis=-1).any()  # no timeline, no trail
