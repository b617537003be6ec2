"""Human filter and two-stage weighting on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.scoring.aggregation import EPDMS, aggregate
from irl_vla.scoring.comfort import extended_comfort
from irl_vla.scoring.scene_aggregation import group_score, human_filter, proximity_weights
from irl_vla.scoring.states import StateIndex
from irl_vla.scoring.sub_scores import SubScore


def test_human_filter_forgives_what_the_human_fails_and_the_score_is_recomputed() -> None:
    agent = np.array([1.0, 0.0, 1.0, 1.0, 0.8, 0.0, 1.0, 1.0, 1.0])  # DAC 0, TTC 0
    human = np.array([1.0, 0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])  # the human fails DAC too; EC is not filtered
    filtered = human_filter(agent, human)
    assert filtered[SubScore.DAC] == 1.0
    assert filtered[SubScore.TTC] == 0.0  # the human passed TTC: not forgiven
    assert filtered[SubScore.EC] == 1.0  # unchanged
    assert aggregate(agent, EPDMS) == 0.0
    # v2.2: product and weighted sum recomputed: (5*0.8 + 5*0 + 2 + 2 + 2) / 16
    assert np.isclose(aggregate(filtered, EPDMS), 10.0 / 16.0)


def test_half_scores_of_the_human_are_not_filtered() -> None:
    agent = np.array([0.0, 1, 1, 1, 1, 1, 1, 1, 1])
    human = np.array([0.5, 1, 1, 1, 1, 1, 1, 1, 1])
    assert human_filter(agent, human)[SubScore.NC] == 0.0


def test_proximity_weights_gaussian_and_uniform_fallback() -> None:
    starts = np.array([[0.0, 0.0], [0.3, 0.0], [5.0, 0.0]])
    w = proximity_weights(np.array([0.0, 0.0]), starts)
    expected = np.exp(-np.array([0.0, 0.09, 25.0]) / 0.2)
    np.testing.assert_allclose(w, expected / expected.sum())
    far = proximity_weights(np.array([100.0, 0.0]), starts)
    np.testing.assert_allclose(far, [1 / 3] * 3)


def test_group_score_weights_each_side_by_its_stage_one_score() -> None:
    score = group_score(
        orig=0.8,
        prev=0.6,
        now_scores=np.array([1.0, 0.5]),
        prev_scores=np.array([0.0, 1.0]),
        w_now=np.array([0.5, 0.5]),
        w_prev=np.array([0.25, 0.75]),
    )
    assert np.isclose(score, 0.5 * (0.8 * 0.75 + 0.6 * 0.75))


def test_extended_comfort_pairs_frames_strictly_between_0_and_0_55_s() -> None:
    states = np.zeros((41, len(StateIndex)))
    states[:, StateIndex.VELOCITY_X] = 5.0  # constant speed: both frames agree
    assert extended_comfort(states, states, 0.5, 0.1) == 1.0
    assert extended_comfort(states, states, 0.549, 0.1) == 1.0
    for offset in (0.55, 0.0, -0.5):  # navsim asserts 0 < dt < 0.55, open at 0.55
        with pytest.raises(ValueError, match="less than 0.55 s apart"):
            extended_comfort(states, states, offset, 0.1)
