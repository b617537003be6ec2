"""Selection rules: the favourite of an ensemble by its mean or a lower confidence bound, and the multipliers' gate."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.models.reward.selection import SelectionConfig, favourites, selection_scores
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore


def sure(m: int, k: int) -> np.ndarray:
    """Sub-scores ``(M, 1, K, S)`` every member is sure of (all 1)."""
    return np.ones((m, 1, k, NUM_SUB_SCORES))


def test_one_model_plain_is_its_reward_argmax() -> None:
    rewards = np.array([[[0.2, 0.9, 0.5]]])  # (M=1, N=1, K=3)
    np.testing.assert_allclose(selection_scores(rewards, None, SelectionConfig()), rewards[0])
    assert favourites(rewards, sure(1, 3), SelectionConfig()).tolist() == [1]


def test_ensemble_mean_and_lower_confidence_bound() -> None:
    # candidate 0: members agree on 0.80; candidate 1: mean 0.85 but they disagree (0.6 / 1.1: one member's luck)
    rewards = np.array([[[0.80, 0.60]], [[0.80, 1.10]]])  # (M=2, N=1, K=2)
    assert favourites(rewards, sure(2, 2), SelectionConfig()).tolist() == [1]  # the mean takes the lucky one
    scores = selection_scores(rewards, sure(2, 2), SelectionConfig(lcb=1.0))
    np.testing.assert_allclose(scores, [[0.80, 0.85 - 0.25]])  # std over members (population): 0 and 0.25
    assert favourites(rewards, sure(2, 2), SelectionConfig(lcb=1.0)).tolist() == [0]


def test_gate_ranks_unsure_multipliers_last_keeping_their_order() -> None:
    rewards = np.array([[[0.95, 0.70, 0.90, 0.60]]])  # (M=1, N=1, K=4)
    subs = sure(1, 4)
    subs[0, 0, 0, SubScore.NC] = 0.7  # the favourite by reward is unsure of a collision
    subs[0, 0, 2, SubScore.TLC] = 0.85  # candidate 2 of a red light
    cfg = SelectionConfig(gate=0.9)
    assert favourites(rewards, subs, cfg).tolist() == [1]
    order = np.argsort(-selection_scores(rewards, subs, cfg)[0])
    assert order.tolist() == [1, 3, 0, 2]  # the passing ones by reward, then the failing ones by reward
    wide = rewards * 100  # any range of rewards: the failing ones still rank last
    assert np.argsort(-selection_scores(wide, subs, cfg)[0]).tolist() == [1, 3, 0, 2]
    # EP and the weighted terms are not gated; a gate on other sub-scores reads those
    assert favourites(rewards, subs, SelectionConfig(gate=0.9, gate_sub_scores=["DAC"])).tolist() == [0]


def test_gate_reads_the_members_mean() -> None:
    rewards = np.array([[[0.9, 0.5]], [[0.9, 0.5]]])
    subs = sure(2, 2)
    subs[0, 0, 0, SubScore.DAC] = 0.7  # mean 0.85 < 0.9: gated; one member alone at 0.7 would not decide it
    assert favourites(rewards, subs, SelectionConfig(gate=0.9)).tolist() == [1]
    assert favourites(rewards, subs, SelectionConfig(gate=0.8)).tolist() == [0]


def test_bad_settings_and_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="selection.lcb"):
        SelectionConfig(lcb=-1)
    with pytest.raises(ValueError, match="selection.gate"):
        SelectionConfig(gate=1.5)
    with pytest.raises(ValueError, match="gate_sub_scores"):
        SelectionConfig(gate_sub_scores=["XX"])
    with pytest.raises(ValueError, match="at least two"):
        selection_scores(np.zeros((1, 1, 3)), None, SelectionConfig(lcb=1))
    with pytest.raises(ValueError, match="sub-scores"):
        selection_scores(np.zeros((1, 1, 3)), None, SelectionConfig(gate=0.5))
    with pytest.raises(ValueError, match="disagree"):
        selection_scores(np.zeros((2, 1, 3)), np.zeros((2, 1, 4, NUM_SUB_SCORES)), SelectionConfig())


def test_describe() -> None:
    assert SelectionConfig().describe(1) == "reward"
    assert SelectionConfig(lcb=1, gate=0.8).describe(3) == "mean of 3 - 1 std, gate 0.8 on NC, DAC, DDC, TLC"
