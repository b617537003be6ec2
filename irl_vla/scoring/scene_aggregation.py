"""From per-scene scores to split scores: human filter, two-frame comfort pairs, one- and two-stage averages.

``reference/navsim.md`` §1.9-1.12. Pure functions on arrays; the evaluator feeds them.
"""

from __future__ import annotations

import warnings

import numpy as np

from irl_vla.scoring.states import FloatArray
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore

#: Sub-scores the human false-positive filter may forgive (not EC).
FILTERED = (
    SubScore.NC,
    SubScore.DAC,
    SubScore.DDC,
    SubScore.TLC,
    SubScore.EP,
    SubScore.TTC,
    SubScore.LK,
    SubScore.HC,
)
#: Variance of the Gaussian proximity weights of stage-2 scenes [m^2].
PROXIMITY_SIGMA2 = 0.1


def human_filter(agent: FloatArray, human: FloatArray) -> FloatArray:
    """Set the agent's sub-score to 1 wherever the human's is exactly 0 (v2.2 semantics).

    Args:
        agent: agent sub-scores ``(..., n_sub)``.
        human: the human's sub-scores in the same scene ``(n_sub,)``.

    Returns:
        Filtered sub-scores ``(..., n_sub)``; aggregate them again for the filtered score (the v2.2 fix).
    """
    out = np.array(agent, dtype=np.float64, copy=True)
    for sub in FILTERED:
        if human[sub] == 0.0:
            out[..., sub] = 1.0
    return out


def proximity_weights(endpoint: FloatArray, starts: FloatArray, sigma2: float = PROXIMITY_SIGMA2) -> FloatArray:
    """Weights of stage-2 scenes by how close their start is to the stage-1 plan's endpoint.

    Args:
        endpoint: global (x, y) of the last pose of the submitted stage-1 plan ``(2,)``.
        starts: initial rear-axle (x, y) of each stage-2 scene ``(M, 2)``.
        sigma2: variance of the Gaussian [m^2].

    Returns:
        Normalised weights ``(M,)``; uniform when all are (numerically) zero or undefined.
    """
    d2 = np.sum((np.asarray(starts, dtype=np.float64) - endpoint) ** 2, axis=-1)
    w = np.exp(-d2 / (2.0 * sigma2))
    total = w.sum()
    if not np.isfinite(total) or np.isclose(total, 0.0):
        return np.full(len(w), 1.0 / len(w))
    return w / total


def group_score(
    orig: float, prev: float, now_scores: FloatArray, prev_scores: FloatArray, w_now: FloatArray, w_prev: FloatArray
) -> float:
    """Two-stage score of a group: ``1/2 [S1(orig) sum_j w_j S2(now_j) + S1(prev) sum_j w_j S2(prev_j)]``."""
    return 0.5 * (orig * float(np.dot(w_now, now_scores)) + prev * float(np.dot(w_prev, prev_scores)))


def mean_defined(rows: list[FloatArray], width: int = NUM_SUB_SCORES) -> FloatArray:
    """Column means of ``rows`` (each ``(width,)``) over their defined (non-NaN) entries; NaN where none is."""
    if not rows:
        return np.full(width, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column (an EC no scene defines) stays NaN
        return np.nanmean(np.stack(rows), axis=0)
