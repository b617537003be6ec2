"""NAVSIM sub-scores of the driven motion over rolling 4 s windows."""

from __future__ import annotations

import dataclasses

import numpy as np

from irl_vla.envs.rolling_scores import RollingScorer
from irl_vla.scoring.sub_scores import SubScore
from tests.fixtures import build_straight_scene, build_t_junction


def test_windows_of_a_straight_drive_score_well_from_the_first_full_history() -> None:
    frames = build_straight_scene().frames  # 14 frames, 10 m/s along the lane
    scorer = RollingScorer(build_t_junction(), "straight")
    windows = [w for i, f in enumerate(frames) if (w := scorer.add(f, 0.5 * i)) is not None]
    assert [w.start_index for w in windows] == [3, 4, 5]  # 4 history frames, then 8 driven ones
    for w in windows:
        assert w.error == ""
        for sub in (SubScore.NC, SubScore.DAC, SubScore.DDC, SubScore.TLC, SubScore.TTC, SubScore.LK, SubScore.HC):
            assert w.sub_scores[sub] == 1.0, sub.name
        assert 0.8 < w.sub_scores[SubScore.EP] <= 1.0 and np.isnan(w.sub_scores[SubScore.EC])
        assert 0.9 < w.score <= 1.0


def test_gaps_strides_and_unscorable_windows() -> None:
    frames = build_straight_scene().frames
    one_second = RollingScorer(build_t_junction(), "coarse")
    assert [one_second.add(f, 1.0 * i) for i, f in enumerate(frames)] == [None] * len(frames)  # never consecutive
    strided = RollingScorer(build_t_junction(), "strided", stride=2)
    assert [w.start_index for i, f in enumerate(frames) if (w := strided.add(f, 0.5 * i))] == [4]
    lost = [dataclasses.replace(f, roadblock_ids=[]) for f in frames]  # no route: the scene cannot be cached
    broken = RollingScorer(build_t_junction(), "lost")
    windows = [w for i, f in enumerate(lost) if (w := broken.add(f, 0.5 * i)) is not None]
    assert len(windows) == 3 and all(np.isnan(w.score) and "no route" in w.error for w in windows)
