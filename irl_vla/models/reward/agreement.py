"""How well a reward model agrees with the simulator on labelled candidates, as RWM validation logs it.

The metrics are the reward report's (``irl_vla.evaluation.reward_report.metrics``, the reference): this module
lays N scenes of K candidates flat, runs them, and names the numbers validation logs, so a validation log and a
report on the same candidates give the same values. Inputs: ``pred_epdms`` / ``sim_epdms`` ``(N, K)``,
``pred_sub`` / ``sim_sub`` ``(N, K, S)`` (NaN: undefined label).
"""

from __future__ import annotations

import numpy as np

from irl_vla.evaluation.reward_report.metrics import (
    SubScoreKind,
    correlations,
    pairwise_ranking,
    sub_score_metrics,
    top1_regret,
)
from irl_vla.scoring.sub_scores import SubScore

#: EP counts as predicted right within this of the simulator's value (``acc_EP``; the report gives its MAE).
EP_TOLERANCE = 0.1
#: Pairs whose simulator EPDMS differ by at most this are ties, left out of the pairwise accuracy. Validation has
#: always used this (float32 labels a few ulps apart are one quality); the report's tolerance is ``TIE_TOLERANCE``.
PAIR_TIE = 1e-6


def agreement(pred_epdms: np.ndarray, sim_epdms: np.ndarray, pred_sub: np.ndarray, sim_sub: np.ndarray) -> dict:
    """The headline numbers of agreement with the simulator.

    Spearman and Pearson of EPDMS over all candidates, within-scene pairwise accuracy (micro average), mean top-1
    regret [EPDMS points], and per sub-score ``acc_<SUB>`` and ``auroc_<SUB>`` over its defined labels (a
    sub-score with none is left out; EP has ``acc_EP`` within ``EP_TOLERANCE`` and no AUROC).
    """
    p, s = np.asarray(pred_epdms, np.float64), np.asarray(sim_epdms, np.float64)
    scenes = np.repeat(np.arange(p.shape[0]), p.shape[1])  # (N * K,) the scene of each candidate
    corr = correlations(p.ravel(), s.ravel())
    out = {
        "spearman": corr.spearman,
        "pearson": corr.pearson,
        "pairwise_accuracy": pairwise_ranking(p.ravel(), s.ravel(), scenes, PAIR_TIE).accuracy,
        "top1_regret": top1_regret(p.ravel(), s.ravel(), scenes).mean,
    }
    n_sub = len(SubScore)
    flat_pred = np.asarray(pred_sub, np.float64).reshape(-1, n_sub)  # (N * K, S)
    flat_sim = np.asarray(sim_sub, np.float64).reshape(-1, n_sub)
    for sub, metrics in zip(SubScore, sub_score_metrics(flat_pred, flat_sim), strict=True):
        if metrics.n == 0:
            continue
        if metrics.kind == SubScoreKind.BOUNDED.value:
            pe, se = flat_pred[:, sub], flat_sim[:, sub]
            ok = np.isfinite(pe) & np.isfinite(se)
            out[f"acc_{sub.name}"] = float((np.abs(pe[ok] - se[ok]) <= EP_TOLERANCE).mean())
            continue
        out[f"acc_{sub.name}"] = metrics.accuracy
        out[f"auroc_{sub.name}"] = metrics.auroc
    return out
