"""Scored candidates: one candidate set with the simulator's and a reward model's sub-scores, flat over candidates.

The label store keeps candidates per scene ``(N, K, ...)``; the report's metrics read them flat ``(M, ...)`` with
``M = N * K`` and the scene token of each row. The predicted EPDMS is the one aggregation function
(``irl_vla.scoring.aggregation.aggregate``) over the predicted sub-scores, with EC dropped on the rows where the
simulator's EC is undefined (no previous frame), so that both EPDMS average the same terms; how well EC itself is
predicted is reported per sub-score. A scene's favourite (top-1 regret) is the candidate of highest ``selection``
score: the predicted EPDMS unless a selection rule (``irl_vla.models.reward.selection``: an ensemble's lower
confidence bound, a gate on the multipliers) gives another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import SE2Index
from irl_vla.scoring.aggregation import EPDMS, AggregationConfig, aggregate
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore


def predicted_epdms(
    predicted: npt.ArrayLike, simulator: npt.ArrayLike, aggregation: AggregationConfig = EPDMS
) -> np.ndarray:
    """EPDMS ``(...)`` of predicted sub-scores ``(..., S)``, EC dropped where the simulator's EC is undefined."""
    pred = np.array(predicted, dtype=np.float64)
    sim = np.asarray(simulator, dtype=np.float64)
    if pred.shape != sim.shape:
        raise ValueError(f"predicted_epdms: predicted {pred.shape} and simulator {sim.shape} differ")
    pred[..., SubScore.EC] = np.where(np.isnan(sim[..., SubScore.EC]), np.nan, pred[..., SubScore.EC])
    return np.asarray(aggregate(pred, aggregation))


@dataclass
class ScoredCandidates:
    """Candidates of several scenes, flat over candidates (``M`` rows).

    Attributes:
        tokens: scene token of each candidate ``(M,)``.
        poses: relative plans ``(M, T, 3)`` by ``SE2Index`` [m, m, rad] in their scene's rear-axle frame.
        sources: where each candidate came from ``(M,)`` (``CandidateSource`` names, e.g. ``EXPERT``).
        simulator: the simulator's sub-scores ``(M, S)`` by ``SubScore`` (NaN: undefined, EC only).
        simulator_epdms: their EPDMS ``(M,)``.
        predicted: the reward model's sub-scores ``(M, S)`` (expected values; probabilities for binary ones).
        predicted_epdms: their EPDMS ``(M,)`` (``predicted_epdms``).
        selection: what the favourite of a scene maximises ``(M,)`` (``None``: ``predicted_epdms``).
    """

    tokens: np.ndarray
    poses: np.ndarray
    sources: np.ndarray
    simulator: np.ndarray
    simulator_epdms: np.ndarray
    predicted: np.ndarray
    predicted_epdms: np.ndarray
    selection: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = len(self.tokens)
        want = {
            "poses": (self.poses.ndim == 3 and self.poses.shape[0] == m and self.poses.shape[2] == len(SE2Index)),
            "sources": self.sources.shape == (m,),
            "simulator": self.simulator.shape == (m, NUM_SUB_SCORES),
            "simulator_epdms": self.simulator_epdms.shape == (m,),
            "predicted": self.predicted.shape == (m, NUM_SUB_SCORES),
            "predicted_epdms": self.predicted_epdms.shape == (m,),
            "selection": self.selection is None or self.selection.shape == (m,),
        }
        bad = [name for name, ok in want.items() if not ok]
        if bad:
            shapes = {name: getattr(self, name).shape for name in bad}
            raise ValueError(f"ScoredCandidates: {m} tokens but {shapes} (expected M = {m} rows)")

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def selection_score(self) -> np.ndarray:
        """What a scene's favourite maximises ``(M,)``: ``selection``, or the predicted EPDMS without a rule."""
        return self.predicted_epdms if self.selection is None else self.selection

    @property
    def num_scenes(self) -> int:
        """Distinct scenes."""
        return len(np.unique(self.tokens))

    @classmethod
    def from_scenes(
        cls,
        tokens: npt.ArrayLike,
        candidates: npt.ArrayLike,
        sources: npt.ArrayLike,
        simulator: npt.ArrayLike,
        simulator_epdms: npt.ArrayLike,
        predicted: npt.ArrayLike,
        aggregation: AggregationConfig = EPDMS,
        selection: npt.ArrayLike | None = None,
    ) -> ScoredCandidates:
        """Flatten per-scene arrays: tokens ``(N,)``, candidates ``(N, K, T, 3)``, sources ``(N, K)`` (names),
        sub-scores ``(N, K, S)``, simulator EPDMS ``(N, K)``, predicted sub-scores ``(N, K, S)`` and the selection
        scores ``(N, K)`` (``None``: the predicted EPDMS).
        """  # noqa: D205
        tok = np.asarray(tokens, dtype=str)
        cand = np.asarray(candidates, dtype=np.float64)
        if cand.ndim != 4 or cand.shape[0] != len(tok):
            raise ValueError(f"ScoredCandidates.from_scenes: candidates {cand.shape}, expected (N={len(tok)}, K, T, 3)")
        n, k = cand.shape[:2]
        sim = np.asarray(simulator, dtype=np.float64)
        pred = np.asarray(predicted, dtype=np.float64)
        for name, a in (("simulator", sim), ("predicted", pred)):
            if a.shape != (n, k, NUM_SUB_SCORES):
                raise ValueError(f"ScoredCandidates.from_scenes: {name} {a.shape}, expected {(n, k, NUM_SUB_SCORES)}")
        flat_sim = sim.reshape(n * k, NUM_SUB_SCORES)
        flat_pred = pred.reshape(n * k, NUM_SUB_SCORES)
        return cls(
            tokens=np.repeat(tok, k),
            poses=cand.reshape(n * k, *cand.shape[2:]),
            sources=np.asarray(sources, dtype=str).reshape(n * k),
            simulator=flat_sim,
            simulator_epdms=np.asarray(simulator_epdms, dtype=np.float64).reshape(n * k),
            predicted=flat_pred,
            predicted_epdms=predicted_epdms(flat_pred, flat_sim, aggregation),
            selection=None if selection is None else np.asarray(selection, dtype=np.float64).reshape(n * k),
        )

    def select(self, rows: npt.ArrayLike) -> ScoredCandidates:
        """The candidates of ``rows`` (indices or a boolean mask)."""
        r = np.asarray(rows)
        return ScoredCandidates(
            self.tokens[r],
            self.poses[r],
            self.sources[r],
            self.simulator[r],
            self.simulator_epdms[r],
            self.predicted[r],
            self.predicted_epdms[r],
            None if self.selection is None else self.selection[r],
        )
