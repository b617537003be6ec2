"""The reward-report metrics against hand-computed cases, with ties and undefined values counted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from irl_vla.evaluation.reward_report.metrics import (
    SubScoreKind,
    auroc,
    correlations,
    discretise,
    expected_calibration_error,
    pairwise_ranking,
    regret_breakdown,
    reliability_bins,
    sub_score_gaps,
    sub_score_metrics,
    to_jsonable,
    top1_regret,
    worst_disagreements,
)
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore


def test_discretise_levels() -> None:
    v = np.array([0.2, 0.5, 0.74, 0.75, np.nan])
    np.testing.assert_array_equal(discretise(v, SubScoreKind.BINARY), [0, 1, 1, 1, np.nan])
    np.testing.assert_array_equal(discretise(v, SubScoreKind.THREE_LEVEL), [0, 0.5, 0.5, 1, np.nan])
    np.testing.assert_array_equal(discretise(v, SubScoreKind.BOUNDED), v)


def test_auroc_hand_computed_with_ties() -> None:
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4) 1, (0.8>0.1) 1, (0.4=0.4) 1/2, (0.4>0.1) 1 -> 3.5/4
    assert auroc([0.8, 0.4, 0.4, 0.1], [1, 1, 0, 0]) == pytest.approx(0.875)
    assert auroc([0.1, 0.9], [1, 0]) == 0.0
    assert math.isnan(auroc([0.3, 0.4], [1, 1]))  # one class only
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan, 0.4], [1, 0])
    with pytest.raises(ValueError, match="0 or 1"):
        auroc([0.1, 0.4], [0.5, 0])


def test_reliability_bins_and_ece() -> None:
    bins = reliability_bins([0.05, 0.15, 0.95, 1.0, 0.9], [0, 1, 1, 1, 0], n_bins=2)
    assert [b.count for b in bins] == [2, 3]
    assert bins[0].mean_predicted == pytest.approx(0.1) and bins[0].observed == pytest.approx(0.5)
    assert bins[1].mean_predicted == pytest.approx(0.95) and bins[1].observed == pytest.approx(2 / 3)
    # ECE = (2 * 0.4 + 3 * (0.95 - 2/3)) / 5
    assert expected_calibration_error(bins) == pytest.approx((0.8 + 3 * (0.95 - 2 / 3)) / 5)
    empty = reliability_bins([0.1], [1], n_bins=4)
    assert math.isnan(empty[3].observed) and empty[0].count == 1


def test_sub_score_metrics_counts_undefined_ec() -> None:
    sim = np.ones((4, NUM_SUB_SCORES))
    pred = np.full((4, NUM_SUB_SCORES), 0.9)
    sim[:, SubScore.NC] = [1.0, 0.5, 0.0, 1.0]
    pred[:, SubScore.NC] = [0.9, 0.6, 0.2, 0.3]  # nearest levels 1, 0.5, 0, 0.5 -> 3 of 4
    sim[:, SubScore.EC] = [1.0, np.nan, 0.0, np.nan]
    pred[:, SubScore.EC] = [0.8, 0.8, 0.3, 0.1]
    sim[:, SubScore.EP] = [0.5, 1.0, 0.0, 0.2]
    pred[:, SubScore.EP] = [0.4, 1.0, 0.1, 0.2]
    out = {m.name: m for m in sub_score_metrics(pred, sim, n_bins=2)}
    nc = out["NC"]
    assert nc.accuracy == pytest.approx(0.75) and nc.n == 4
    # "== 1" positives: rows 0 (0.9) and 3 (0.3); negatives 0.6, 0.2 -> pairs 1, 1, 0, 1 -> 0.75
    assert nc.auroc == pytest.approx(0.75)
    ec = out["EC"]
    assert (ec.n, ec.n_undefined_simulator) == (2, 2)
    assert ec.accuracy == 1.0 and ec.auroc == 1.0
    ep = out["EP"]
    assert math.isnan(ep.accuracy) and ep.mae == pytest.approx(0.05)
    dac = out["DAC"]  # all simulator values 1: AUROC undefined, with the reason
    assert math.isnan(dac.auroc) and "one class" in dac.undefined["auroc"]


def test_correlations_hand_computed() -> None:
    c = correlations([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])
    assert c.pearson == pytest.approx(0.8)
    assert c.spearman == pytest.approx(0.8)
    assert c.kendall == pytest.approx(4 / 6)  # 5 concordant, 1 discordant of 6
    assert (c.n, c.n_nan, c.n_tied_predicted) == (4, 0, 0)


def test_correlations_ties_and_nan_counted() -> None:
    c = correlations([1.0, 1.0, 2.0, np.nan, 3.0], [0.0, 1.0, 1.0, 5.0, 2.0])
    assert (c.n, c.n_nan, c.n_tied_predicted, c.n_tied_simulator) == (4, 1, 2, 2)
    # tau-b: pairs (a,b) pred tie; (a,c)+ (a,e)+ (b,c) sim tie; (b,e)+ (c,e)+ -> nc=4, nd=0, n1=1, n2=1
    assert c.kendall == pytest.approx(4 / math.sqrt(5 * 5))
    const = correlations([1.0, 1.0], [0.0, 1.0])
    assert math.isnan(const.spearman) and "constant" in const.undefined["all"]


def test_pairwise_ranking_hand_computed() -> None:
    scene = np.array(["a", "a", "a", "b", "b", "c"])
    sim = np.array([0.9, 0.5, 0.5, 0.2, 0.8, 0.7])
    pred = np.array([0.8, 0.6, 0.7, 0.4, 0.4, 0.1])
    r = pairwise_ranking(pred, sim, scene)
    # scene a: (0,1) right, (0,2) right, (1,2) simulator tie; scene b: prediction tie -> 1/2; scene c: no pair
    assert (r.n_pairs, r.n_simulator_ties, r.n_predicted_ties) == (3, 1, 1)
    assert r.accuracy == pytest.approx(2.5 / 3)
    assert r.scene_mean == pytest.approx((1.0 + 0.5) / 2)
    assert (r.n_scenes, r.n_scenes_without_pairs, r.n_nan) == (2, 1, 0)
    wrong = pairwise_ranking(-pred, sim, scene)
    assert wrong.accuracy == pytest.approx(0.5 / 3)


def test_top1_regret_hand_computed() -> None:
    scene = np.array([0, 0, 0, 1, 1, 2, 2])
    sim = np.array([0.9, 0.5, 0.7, 0.2, 0.8, 0.6, np.nan])
    pred = np.array([0.1, 0.9, 0.2, 0.5, 0.5, 0.3, 0.9])
    r = top1_regret(pred, sim, scene)
    # scene 0 picks 0.5 of best 0.9 -> 40; scene 1 ties: mean(0.2, 0.8) = 0.5 of 0.8 -> 30; scene 2 -> 0 (NaN left out)
    np.testing.assert_allclose(r.per_scene, [40.0, 30.0, 0.0])
    assert r.mean == pytest.approx(70 / 3) and r.max == pytest.approx(40.0)
    assert (r.n_scenes_tied_top, r.n_nan) == (1, 1)
    assert r.zero_fraction == pytest.approx(1 / 3)


def test_regret_breakdown_hand_computed() -> None:
    # scene a: the favourite (predicted 0.99) collides, simulator 0 against the best 0.9 -> 90 points, catastrophic;
    # scene b: the favourite fails EC, 0.8 against 0.9 -> 10 points; scene c: the favourite is the best and its EC is
    # undefined (no failure) -> 0. Summed regret 100.
    scene = np.array(["a", "a", "b", "b", "c", "c"])
    sim_epdms = np.array([0.0, 0.9, 0.8, 0.9, 0.95, 0.5])
    pred = np.array([0.99, 0.5, 0.9, 0.6, 0.9, 0.1])
    sub = np.ones((6, NUM_SUB_SCORES))
    sub[0, SubScore.NC] = 0.0
    sub[2, SubScore.EC] = 0.0
    sub[4, SubScore.EC] = np.nan
    sub[5, SubScore.DAC] = 0.0  # not a favourite: not counted
    b = regret_breakdown(pred, sim_epdms, sub, scene)
    assert b.n_scenes == 3 and b.mean == pytest.approx(100 / 3)
    assert b.n_catastrophic == 1 and b.catastrophic_share == pytest.approx(0.9)
    assert b.mean_without_catastrophic == pytest.approx(5.0)
    rows = {f.sub_score: f for f in b.failures}
    assert list(rows) == ["NC", "DAC", "DDC", "TLC", "EC"]
    assert (rows["NC"].n_scenes, rows["NC"].regret_share, rows["NC"].mean_regret) == pytest.approx((1, 0.9, 90))
    assert (rows["EC"].n_scenes, rows["EC"].regret_share, rows["EC"].mean_regret) == pytest.approx((1, 0.1, 10))
    assert rows["EC"].scene_fraction == pytest.approx(1 / 3)
    assert rows["DAC"].n_scenes == 0 and rows["DAC"].regret_share == 0 and math.isnan(rows["DAC"].mean_regret)
    assert (b.no_failure.n_scenes, b.no_failure.regret_share, b.no_failure.mean_regret) == pytest.approx((1, 0, 0))
    assert b.mean == pytest.approx(top1_regret(pred, sim_epdms, scene).mean)


def test_regret_breakdown_counts_a_tied_favourite_by_its_fraction() -> None:
    # two candidates tie for the favourite: one runs a red light (simulator 0, 80 points short of the best), the
    # other is the best; a random tie-break fails TLC half the time, and then loses 80 points
    scene = np.zeros(3, dtype=int)
    sim_epdms = np.array([0.0, 0.8, 0.3])
    pred = np.array([0.7, 0.7, 0.2])
    sub = np.ones((3, NUM_SUB_SCORES))
    sub[0, SubScore.TLC] = 0.0
    b = regret_breakdown(pred, sim_epdms, sub, scene, threshold=30.0)
    tlc = next(f for f in b.failures if f.sub_score == "TLC")
    assert (tlc.n_scenes, tlc.regret_share, tlc.mean_regret) == pytest.approx((0.5, 1.0, 80.0))
    assert b.no_failure.n_scenes == pytest.approx(0.5) and b.no_failure.regret_share == pytest.approx(0.0)
    assert b.mean == pytest.approx(40.0) and b.n_catastrophic == 1
    with pytest.raises(ValueError, match="simulator_sub_scores"):
        regret_breakdown(pred, sim_epdms, sub[:, :4], scene)


def test_worst_disagreements_and_gaps() -> None:
    idx, n_nan = worst_disagreements([0.5, 0.1, np.nan, 0.9], [0.5, 0.9, 0.1, 0.2], 2)
    assert idx.tolist() == [1, 3] and n_nan == 1
    sim = np.ones((2, NUM_SUB_SCORES))
    sim[:, SubScore.EC] = [np.nan, 0.0]
    pred = np.full((2, NUM_SUB_SCORES), 0.75)
    gaps = {g.name: g for g in sub_score_gaps(pred, sim)}
    assert gaps["LK"].gap == pytest.approx(-0.25)
    assert gaps["EC"].gap == pytest.approx(0.75) and (gaps["EC"].n, gaps["EC"].n_undefined) == (1, 1)


def test_to_jsonable_has_no_nan() -> None:
    out = to_jsonable({"a": np.float64("nan"), "b": [np.int64(2), np.array([1.5])], "c": correlations([1, 1], [0, 1])})
    assert out["a"] is None and out["b"] == [2, [1.5]] and out["c"]["spearman"] is None
