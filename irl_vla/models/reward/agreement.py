"""How well a reward model agrees with the simulator on labelled candidates (validation and reports).

Every function takes the predictions and the simulator's labels of N scenes with K candidates each:
``pred_epdms`` / ``sim_epdms`` ``(N, K)``, ``pred_sub`` / ``sim_sub`` ``(N, K, S)`` (NaN: undefined label).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from irl_vla.models.reward.heads import TERNARY, TERNARY_VALUES
from irl_vla.scoring.sub_scores import SubScore

#: Pairs whose simulator EPDMS differ by at most this are ties, left out of the pairwise accuracy.
PAIR_TIE = 1e-6


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (Mann-Whitney, ties averaged).

    NaN when only one class is present.
    """
    scores, labels = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels).ravel().astype(bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def pairwise_accuracy(pred: np.ndarray, sim: np.ndarray, tie: float = PAIR_TIE) -> float:
    """Within each scene, the fraction of candidate pairs the prediction orders as the simulator does.

    Pairs the simulator ties (within ``tie``) are left out; a predicted tie counts as half right.
    """
    right, total = 0.0, 0
    for p, s in zip(np.asarray(pred, np.float64), np.asarray(sim, np.float64), strict=True):
        ds = s[:, None] - s[None, :]  # (K, K)
        dp = p[:, None] - p[None, :]
        upper = np.triu(np.ones_like(ds, dtype=bool), 1) & (np.abs(ds) > tie)
        agree = np.sign(ds) * np.sign(dp)
        right += float(((agree > 0) + 0.5 * (agree == 0))[upper].sum())
        total += int(upper.sum())
    return right / total if total else float("nan")


def top1_regret(pred: np.ndarray, sim: np.ndarray) -> float:
    """Simulator EPDMS of each scene's best candidate minus that of the predicted favourite, mean [points, 0-100]."""
    sim = np.asarray(sim, np.float64)
    chosen = sim[np.arange(len(sim)), np.asarray(pred).argmax(axis=1)]
    return float(100.0 * (sim.max(axis=1) - chosen).mean())


def sub_score_agreement(pred_sub: np.ndarray, sim_sub: np.ndarray) -> dict[str, float]:
    """Per sub-score accuracy ``acc_<SUB>`` and ``auroc_<SUB>``, over the defined labels only.

    Accuracy: the prediction rounded to the nearest value equals the label (EP: within 0.1). AUROC (binary and
    ternary sub-scores): of the prediction for "label == 1".
    """
    out: dict[str, float] = {}
    values = np.asarray(TERNARY_VALUES)
    for sub in SubScore:
        p, s = np.asarray(pred_sub[..., sub], np.float64).ravel(), np.asarray(sim_sub[..., sub], np.float64).ravel()
        defined = np.isfinite(s) & np.isfinite(p)
        if not defined.any():
            continue
        p, s = p[defined], s[defined]
        if sub == SubScore.EP:
            out["acc_EP"] = float((np.abs(p - s) <= 0.1).mean())
            continue
        if sub in TERNARY:
            rounded = values[np.abs(p[:, None] - values[None]).argmin(axis=1)]
        else:
            rounded = (p >= 0.5).astype(np.float64)
        out[f"acc_{sub.name}"] = float((rounded == s).mean())
        out[f"auroc_{sub.name}"] = auroc(p, s == 1.0)
    return out


def agreement(pred_epdms: np.ndarray, sim_epdms: np.ndarray, pred_sub: np.ndarray, sim_sub: np.ndarray) -> dict:
    """The headline numbers of agreement with the simulator.

    Spearman and Pearson of EPDMS over all candidates, within-scene pairwise accuracy, top-1 regret, and per
    sub-score accuracy and AUROC.
    """
    p, s = np.asarray(pred_epdms, np.float64), np.asarray(sim_epdms, np.float64)
    out = {
        "spearman": float(stats.spearmanr(p.ravel(), s.ravel()).statistic),
        "pearson": float(stats.pearsonr(p.ravel(), s.ravel()).statistic),
        "pairwise_accuracy": pairwise_accuracy(p, s),
        "top1_regret": top1_regret(p, s),
    }
    out.update(sub_score_agreement(pred_sub, sim_sub))
    return out
