"""RWM validation's agreement numbers: the report's metrics, with the values validation always logged."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.evaluation.reward_report.agreement import evaluate
from irl_vla.evaluation.reward_report.candidates import ScoredCandidates
from irl_vla.models.reward.agreement import PAIR_TIE, agreement
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore

#: ``agreement`` on ``fixed_input()`` as the validation's own implementation computed it (before it called the
#: report's metrics); the numbers must not move.
EXPECTED = {
    "spearman": 0.8104064253910257,
    "pearson": 0.8073311403277097,
    "pairwise_accuracy": 0.8238095238095238,
    "top1_regret": 5.625038362311964,
    "acc_NC": 0.7314814814814815,
    "auroc_NC": 0.9353840553330907,
    "acc_DAC": 0.6388888888888888,
    "auroc_DAC": 0.9064433927921369,
    "acc_DDC": 0.6944444444444444,
    "auroc_DDC": 0.8970642883686362,
    "acc_TLC": 0.6111111111111112,
    "auroc_TLC": 0.9428571428571428,
    "acc_EP": 0.3055555555555556,
    "acc_TTC": 0.6481481481481481,
    "auroc_TTC": 0.962426614481409,
    "acc_LK": 0.6481481481481481,
    "auroc_LK": 0.941358024691358,
    "acc_HC": 0.7129629629629629,
    "auroc_HC": 0.9667409884801189,
    "acc_EC": 0.7916666666666666,
    "auroc_EC": 0.9266975308641975,
}


def fixed_input() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """12 scenes x 9 candidates: ternary and binary labels, continuous EP, undefined EC, tied simulator EPDMS."""
    rng = np.random.default_rng(0)
    n, k = 12, 9
    sim_sub = rng.choice([0.0, 0.5, 1.0], size=(n, k, NUM_SUB_SCORES))  # (N, K, S)
    sim_sub[..., SubScore.EP] = rng.random((n, k))
    sim_sub[:, :3, SubScore.EC] = np.nan
    sim = rng.random((n, k))  # (N, K)
    sim[:, 0] = sim[:, 1]
    pred = sim + 0.2 * rng.standard_normal((n, k))
    pred_sub = np.clip(sim_sub + 0.3 * rng.standard_normal((n, k, NUM_SUB_SCORES)), 0, 1)
    return pred, sim, np.nan_to_num(pred_sub, nan=0.5), sim_sub


def test_numbers_on_a_fixed_input_do_not_change() -> None:
    got = agreement(*fixed_input())
    assert got.keys() == EXPECTED.keys()
    for key, value in EXPECTED.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_validation_and_report_agree_on_the_same_candidates() -> None:
    _, sim, pred_sub, sim_sub = fixed_input()
    n, k = sim.shape
    candidates = ScoredCandidates.from_scenes(
        [f"t{i}" for i in range(n)], np.zeros((n, k, 8, 3)), np.full((n, k), "VOCABULARY"), sim_sub, sim, pred_sub
    )
    report = evaluate(candidates)
    got = agreement(candidates.predicted_epdms.reshape(n, k), sim, pred_sub, sim_sub)
    assert got["spearman"] == report.correlations.spearman
    assert got["pearson"] == report.correlations.pearson
    assert got["top1_regret"] == report.regret.mean
    assert got["pairwise_accuracy"] == report.pairwise.accuracy  # no near-ties here: the tolerances agree
    for metrics in report.sub_scores:
        if metrics.name != SubScore.EP.name:
            assert (got[f"acc_{metrics.name}"], got[f"auroc_{metrics.name}"]) == (metrics.accuracy, metrics.auroc)


def test_near_ties_of_float32_labels_are_ties() -> None:
    sim = np.array([[0.9, 0.9 + PAIR_TIE / 2, 0.1]])  # (N, K)
    pred = np.array([[0.2, 0.8, 0.5]])  # of the two pairs that count, one is ordered right
    sub = np.full((1, 3, NUM_SUB_SCORES), 1.0)
    assert agreement(pred, sim, sub, sub)["pairwise_accuracy"] == pytest.approx(0.5)
