"""Every agreement metric of one reward model on one candidate set, and the issue's targets checked against them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from irl_vla.evaluation.reward_report.candidates import ScoredCandidates
from irl_vla.evaluation.reward_report.metrics import (
    Correlations,
    PairwiseRanking,
    Regret,
    RegretBreakdown,
    SubScoreGap,
    SubScoreMetrics,
    correlations,
    pairwise_ranking,
    regret_breakdown,
    sub_score_gaps,
    sub_score_metrics,
    top1_regret,
    worst_disagreements,
)
from irl_vla.scoring.sub_scores import SubScore

#: Source name of the logged expert's trajectory among the candidates (``CandidateSource.EXPERT``).
EXPERT_SOURCE = "EXPERT"


@dataclass(frozen=True)
class Target:
    """One target on held-out scenes: ``metric`` compared with ``threshold``.

    Attributes:
        name: what is measured (shown in the report).
        threshold: the value to reach.
        higher_is_better: met when the value is ``>=`` (else ``<=``) the threshold.
    """

    name: str
    threshold: float
    higher_is_better: bool = True


#: The issue's targets on held-out ``synth_navtest``.
TARGETS: dict[str, Target] = {
    "spearman": Target("Spearman(predicted EPDMS, simulator EPDMS)", 0.85),
    "auroc_NC": Target("AUROC of NC", 0.9),
    "auroc_DAC": Target("AUROC of DAC", 0.9),
    "pairwise": Target("within-scene pairwise ranking accuracy", 0.85),
    "regret": Target("top-1 regret [EPDMS points]", 3.0, higher_is_better=False),
}


@dataclass
class TargetCheck:
    """A target and where the measured value stands.

    Attributes:
        key: the target's key in ``TARGETS``.
        name: what is measured.
        threshold: the value to reach.
        value: the measured value (``NaN`` when undefined).
        met: whether it is reached (``False`` when undefined).
        margin: by how much it is passed (positive) or missed (negative), in the metric's units.
    """

    key: str
    name: str
    threshold: float
    value: float
    met: bool
    margin: float


@dataclass
class Disagreement:
    """A candidate where predicted and simulator EPDMS differ most.

    Attributes:
        row: its row in the candidate set.
        token: its scene.
        source: where it came from.
        predicted_epdms: the reward model's EPDMS.
        simulator_epdms: the simulator's.
        predicted: predicted sub-scores by ``SubScore`` name.
        simulator: simulator sub-scores by name (``NaN``: undefined).
    """

    row: int
    token: str
    source: str
    predicted_epdms: float
    simulator_epdms: float
    predicted: dict[str, float]
    simulator: dict[str, float]


@dataclass
class ExpertRank:
    """Where the reward model puts the logged expert among its scene's candidates (what the IRL term trains).

    Attributes:
        n_scenes: scenes holding an expert candidate.
        top1_fraction: fraction of them where the expert has the highest predicted EPDMS (ties count).
        mean_percentile: mean fraction of the scene's other candidates predicted strictly below the expert.
    """

    n_scenes: int
    top1_fraction: float
    mean_percentile: float


@dataclass
class RewardAgreement:
    """All metrics of one reward model on one candidate set (see ``evaluate``).

    Attributes:
        n_candidates: candidates.
        n_scenes: scenes.
        sources: candidates per source name.
        sub_scores: per sub-score accuracy, AUROC, calibration.
        correlations: predicted vs simulator EPDMS.
        pairwise: within-scene pairwise ranking accuracy.
        regret: top-1 regret.
        regret_breakdown: where the regret comes from (catastrophic scenes, the favourites' failures).
        gaps: per sub-score mean predicted minus mean simulator.
        mean_predicted_epdms: over all candidates (``NaN`` rows left out).
        mean_simulator_epdms: over all candidates.
        expert: where the expert ranks (``None`` without expert candidates).
        worst: the largest disagreements, largest first.
        n_worst_nan: candidates the worst list could not consider (NaN EPDMS).
        targets: the issue's targets checked.
    """

    n_candidates: int
    n_scenes: int
    sources: dict[str, int]
    sub_scores: list[SubScoreMetrics]
    correlations: Correlations
    pairwise: PairwiseRanking
    regret: Regret
    gaps: list[SubScoreGap]
    mean_predicted_epdms: float
    mean_simulator_epdms: float
    expert: ExpertRank | None
    worst: list[Disagreement] = field(default_factory=list)
    n_worst_nan: int = 0
    targets: list[TargetCheck] = field(default_factory=list)
    regret_breakdown: RegretBreakdown | None = None

    def headline(self) -> dict[str, float]:
        """The numbers the targets and the ablation table compare."""
        auroc = {m.name: m.auroc for m in self.sub_scores}
        return {
            "spearman": self.correlations.spearman,
            "pearson": self.correlations.pearson,
            "kendall": self.correlations.kendall,
            "auroc_NC": auroc["NC"],
            "auroc_DAC": auroc["DAC"],
            "pairwise": self.pairwise.accuracy,
            "regret": self.regret.mean,
            "mean_predicted_epdms": self.mean_predicted_epdms,
            "mean_simulator_epdms": self.mean_simulator_epdms,
            "expert_top1": float("nan") if self.expert is None else self.expert.top1_fraction,
        }


def check_targets(headline: dict[str, float]) -> list[TargetCheck]:
    """Each of ``TARGETS`` against the measured ``headline``."""
    out = []
    for key, target in TARGETS.items():
        value = float(headline[key])
        margin = value - target.threshold if target.higher_is_better else target.threshold - value
        out.append(TargetCheck(key, target.name, target.threshold, value, bool(margin >= 0), margin))
    return out


def expert_rank(candidates: ScoredCandidates) -> ExpertRank | None:
    """Where the expert's predicted EPDMS ranks in its scene; ``None`` when no candidate is the expert's."""
    is_expert = candidates.sources == EXPERT_SOURCE
    if not is_expert.any():
        return None
    top, percentile = [], []
    for row in np.flatnonzero(is_expert):
        scene = np.flatnonzero(candidates.tokens == candidates.tokens[row])
        others = candidates.predicted_epdms[scene[scene != row]]
        value = candidates.predicted_epdms[row]
        top.append(bool(len(others) == 0 or value >= np.nanmax(others)))
        percentile.append(float(np.mean(others < value)) if len(others) else 1.0)
    return ExpertRank(len(top), float(np.mean(top)), float(np.mean(percentile)))


def evaluate(candidates: ScoredCandidates, n_worst: int = 8, n_bins: int = 10) -> RewardAgreement:
    """Every agreement metric of the reward model's predictions on ``candidates``.

    Args:
        candidates: the candidate set with both sets of sub-scores.
        n_worst: how many of the largest disagreements to list.
        n_bins: bins of the reliability diagrams.
    """
    c = candidates
    names, counts = np.unique(c.sources, return_counts=True)
    worst_rows, n_nan = worst_disagreements(c.predicted_epdms, c.simulator_epdms, n_worst)
    worst = [
        Disagreement(
            row=int(r),
            token=str(c.tokens[r]),
            source=str(c.sources[r]),
            predicted_epdms=float(c.predicted_epdms[r]),
            simulator_epdms=float(c.simulator_epdms[r]),
            predicted={s.name: float(v) for s, v in zip(SubScore, c.predicted[r], strict=True)},
            simulator={s.name: float(v) for s, v in zip(SubScore, c.simulator[r], strict=True)},
        )
        for r in worst_rows
    ]
    agreement = RewardAgreement(
        n_candidates=len(c),
        n_scenes=c.num_scenes,
        sources={str(n): int(k) for n, k in zip(names, counts, strict=True)},
        sub_scores=sub_score_metrics(c.predicted, c.simulator, n_bins),
        correlations=correlations(c.predicted_epdms, c.simulator_epdms),
        pairwise=pairwise_ranking(c.predicted_epdms, c.simulator_epdms, c.tokens),
        regret=top1_regret(c.selection_score, c.simulator_epdms, c.tokens),
        gaps=sub_score_gaps(c.predicted, c.simulator),
        mean_predicted_epdms=_nanmean(c.predicted_epdms),
        mean_simulator_epdms=_nanmean(c.simulator_epdms),
        expert=expert_rank(c),
        worst=worst,
        n_worst_nan=n_nan,
        regret_breakdown=regret_breakdown(c.selection_score, c.simulator_epdms, c.simulator, c.tokens),
    )
    agreement.targets = check_targets(agreement.headline())
    return agreement


def _nanmean(x: np.ndarray) -> float:
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else float("nan")
