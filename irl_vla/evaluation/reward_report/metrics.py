"""Agreement of a learned reward with the simulator: pure functions over arrays.

Inputs are flat over candidates: predicted and simulator sub-scores ``(N, S)`` (columns by ``SubScore``), their
EPDMS ``(N,)`` and the scene of each candidate ``(N,)``. Nothing is dropped silently: every function counts the
rows it could not use (an undefined EC, a NaN score) and the ties it met, and returns those counts beside the
metric. A metric that is undefined on its input (AUROC with one class only, a correlation of a constant) is
``NaN`` with the reason in ``undefined``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore

FloatArray = npt.NDArray[np.float64]

#: Simulator EPDMS values closer than this count as a tie (not ranked) [score units, 0..1].
TIE_TOLERANCE = 1e-9
#: EPDMS points per score unit (regret is reported in points, as the leaderboards quote EPDMS).
POINTS = 100.0


class SubScoreKind(Enum):
    """What values a sub-score takes, which decides how its prediction is judged."""

    BINARY = "binary"  # {0, 1}: accuracy at 0.5, AUROC, reliability of P(1)
    THREE_LEVEL = "three_level"  # {0, 0.5, 1}: accuracy of the nearest level; AUROC and reliability of "== 1"
    BOUNDED = "bounded"  # [0, 1]: mean absolute error and correlation only


SUB_SCORE_KINDS: dict[SubScore, SubScoreKind] = {
    SubScore.NC: SubScoreKind.THREE_LEVEL,
    SubScore.DAC: SubScoreKind.BINARY,
    SubScore.DDC: SubScoreKind.THREE_LEVEL,
    SubScore.TLC: SubScoreKind.BINARY,
    SubScore.EP: SubScoreKind.BOUNDED,
    SubScore.TTC: SubScoreKind.BINARY,
    SubScore.LK: SubScoreKind.BINARY,
    SubScore.HC: SubScoreKind.BINARY,
    SubScore.EC: SubScoreKind.BINARY,
}


def _as_1d(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
    return a


def _same_length(**arrays: np.ndarray) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays of different lengths: {lengths}")
    return next(iter(lengths.values()))


# --------------------------------------------------------------------------------------------- per sub-score
def discretise(values: npt.ArrayLike, kind: SubScoreKind) -> FloatArray:
    """Predicted expectations to the nearest value the simulator can give (``NaN`` stays ``NaN``).

    Binary: 1 where ``>= 0.5``; three-level: the nearest of {0, 0.5, 1} (ties go up); bounded: unchanged.
    """
    v = np.asarray(values, dtype=np.float64)
    if kind is SubScoreKind.BINARY:
        return np.where(np.isnan(v), np.nan, (v >= 0.5).astype(np.float64))
    if kind is SubScoreKind.THREE_LEVEL:
        return np.where(np.isnan(v), np.nan, np.clip(np.floor(v * 2.0 + 0.5) / 2.0, 0.0, 1.0))
    return v


def auroc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` in {0, 1} (Mann-Whitney, tied scores count 1/2).

    Returns ``NaN`` when one class is absent. Raises on NaN input (callers count and remove undefined rows).
    """
    s, y = _as_1d(scores, "auroc scores"), _as_1d(labels, "auroc labels")
    _same_length(scores=s, labels=y)
    if np.isnan(s).any() or np.isnan(y).any():
        raise ValueError("auroc: NaN in scores or labels (remove undefined rows first and count them)")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"auroc: labels must be 0 or 1, got {sorted(set(y.tolist()) - {0.0, 1.0})[:5]}")
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = stats.rankdata(s)  # average ranks: each tie between a positive and a negative counts 1/2
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


@dataclass
class ReliabilityBin:
    """One bin of a reliability diagram: predictions in ``[lo, hi)`` (the last bin includes 1).

    Attributes:
        lo: lower edge of the predicted probability.
        hi: upper edge.
        count: predictions in the bin.
        mean_predicted: their mean predicted probability (``NaN`` when empty).
        observed: the fraction of them whose label is 1 (``NaN`` when empty).
    """

    lo: float
    hi: float
    count: int
    mean_predicted: float
    observed: float


def reliability_bins(probs: npt.ArrayLike, labels: npt.ArrayLike, n_bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins of predicted probability with the observed frequency of label 1 in each."""
    p, y = _as_1d(probs, "reliability probs"), _as_1d(labels, "reliability labels")
    _same_length(probs=p, labels=y)
    if n_bins < 1:
        raise ValueError(f"reliability_bins: n_bins must be >= 1, got {n_bins}")
    if np.isnan(p).any() or np.isnan(y).any():
        raise ValueError("reliability_bins: NaN in probs or labels (remove undefined rows first and count them)")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, np.clip(p, 0.0, 1.0), side="right") - 1, 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        sel = index == b
        n = int(sel.sum())
        mean_p = float(p[sel].mean()) if n else float("nan")
        observed = float(y[sel].mean()) if n else float("nan")
        out.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), n, mean_p, observed))
    return out


def expected_calibration_error(bins: list[ReliabilityBin]) -> float:
    """Count-weighted mean of ``|mean_predicted - observed|`` over the non-empty bins (``NaN`` if all are empty)."""
    total = sum(b.count for b in bins)
    if total == 0:
        return float("nan")
    return float(sum(b.count * abs(b.mean_predicted - b.observed) for b in bins if b.count) / total)


@dataclass
class SubScoreMetrics:
    """How well one sub-score is predicted.

    Attributes:
        name: the sub-score's short name.
        kind: ``SubScoreKind`` value.
        n: candidates judged (both values defined).
        n_undefined_simulator: candidates left out because the simulator's value is undefined (EC).
        n_undefined_predicted: candidates left out because the prediction is NaN.
        accuracy: fraction whose discretised prediction equals the simulator's value (``NaN`` for EP).
        mae: mean absolute error of the prediction.
        mean_predicted: mean prediction over the judged candidates.
        mean_simulator: mean simulator value over them.
        auroc: of the prediction for "simulator value == 1" (binary and three-level); ``NaN`` when undefined.
        ece: expected calibration error of P(value == 1) (binary and three-level).
        reliability: the reliability diagram's bins.
        undefined: why a metric is ``NaN`` (metric -> reason).
    """

    name: str
    kind: str
    n: int
    n_undefined_simulator: int
    n_undefined_predicted: int
    accuracy: float
    mae: float
    mean_predicted: float
    mean_simulator: float
    auroc: float
    ece: float
    reliability: list[ReliabilityBin] = field(default_factory=list)
    undefined: dict[str, str] = field(default_factory=dict)


def sub_score_metrics(predicted: npt.ArrayLike, simulator: npt.ArrayLike, n_bins: int = 10) -> list[SubScoreMetrics]:
    """Per sub-score metrics of predicted ``(N, S)`` against simulator ``(N, S)`` sub-scores, in ``SubScore`` order.

    For three-level sub-scores (NC, DDC) AUROC and calibration treat "== 1" (no violation at all) as the positive
    class and the prediction (the expected value) as its score.
    """
    pred, sim = np.asarray(predicted, dtype=np.float64), np.asarray(simulator, dtype=np.float64)
    if pred.shape != sim.shape or pred.ndim != 2 or pred.shape[1] != NUM_SUB_SCORES:
        raise ValueError(f"sub_score_metrics: expected two (N, {NUM_SUB_SCORES}) arrays, got {pred.shape}, {sim.shape}")
    out = []
    for sub in SubScore:
        kind = SUB_SCORE_KINDS[sub]
        p, s = pred[:, sub], sim[:, sub]
        sim_nan, pred_nan = np.isnan(s), np.isnan(p) & ~np.isnan(s)
        ok = ~(sim_nan | pred_nan)
        p, s = p[ok], s[ok]
        undefined: dict[str, str] = {}
        nan = float("nan")
        if len(s) == 0:
            undefined["all"] = "no candidate with both values defined"
        accuracy = float(np.mean(discretise(p, kind) == s)) if len(s) and kind is not SubScoreKind.BOUNDED else nan
        area, ece, bins = nan, nan, []
        if kind is not SubScoreKind.BOUNDED and len(s):
            positive = (s == 1.0).astype(np.float64)
            area = auroc(p, positive)
            if np.isnan(area):
                undefined["auroc"] = f"only one class in the simulator's values (all {'1' if positive[0] else '< 1'})"
            bins = reliability_bins(p, positive, n_bins)
            ece = expected_calibration_error(bins)
        out.append(
            SubScoreMetrics(
                name=sub.name,
                kind=kind.value,
                n=int(ok.sum()),
                n_undefined_simulator=int(sim_nan.sum()),
                n_undefined_predicted=int(pred_nan.sum()),
                accuracy=accuracy,
                mae=float(np.mean(np.abs(p - s))) if len(s) else nan,
                mean_predicted=float(p.mean()) if len(s) else nan,
                mean_simulator=float(s.mean()) if len(s) else nan,
                auroc=area,
                ece=ece,
                reliability=bins,
                undefined=undefined,
            )
        )
    return out


# ---------------------------------------------------------------------------------------------- EPDMS agreement
@dataclass
class Correlations:
    """Correlation of predicted with simulator EPDMS over candidates.

    Attributes:
        n: pairs used.
        n_nan: pairs left out because either value is NaN.
        n_tied_predicted: candidates whose predicted value equals another's (handled by average ranks / tau-b).
        n_tied_simulator: the same for the simulator's values.
        pearson: linear correlation.
        spearman: rank correlation (average ranks for ties).
        kendall: Kendall's tau-b (corrected for ties on both sides).
        undefined: why a value is ``NaN``.
    """

    n: int
    n_nan: int
    n_tied_predicted: int
    n_tied_simulator: int
    pearson: float
    spearman: float
    kendall: float
    undefined: dict[str, str] = field(default_factory=dict)


def _n_tied(x: FloatArray) -> int:
    """Values equal to at least one other value."""
    _, counts = np.unique(x, return_counts=True)
    return int(counts[counts > 1].sum())


def correlations(predicted: npt.ArrayLike, simulator: npt.ArrayLike) -> Correlations:
    """Pearson, Spearman and Kendall (tau-b) of predicted against simulator EPDMS ``(N,)``."""
    p, s = _as_1d(predicted, "predicted"), _as_1d(simulator, "simulator")
    _same_length(predicted=p, simulator=s)
    ok = ~(np.isnan(p) | np.isnan(s))
    p, s = p[ok], s[ok]
    nan = float("nan")
    undefined: dict[str, str] = {}
    if len(p) < 2:
        undefined["all"] = f"{len(p)} defined pair(s); at least 2 are needed"
    elif np.ptp(p) == 0 or np.ptp(s) == 0:
        undefined["all"] = f"{'predicted' if np.ptp(p) == 0 else 'simulator'} EPDMS is constant"
    values = (nan, nan, nan)
    if not undefined:
        values = (
            float(stats.pearsonr(p, s).statistic),
            float(stats.spearmanr(p, s).statistic),
            float(stats.kendalltau(p, s, variant="b").statistic),
        )
    return Correlations(int(ok.sum()), int((~ok).sum()), _n_tied(p), _n_tied(s), *values, undefined=undefined)


def _groups(scene_ids: npt.ArrayLike) -> list[np.ndarray]:
    """Row indices of each scene, scenes in order of first appearance."""
    ids = np.asarray(scene_ids)
    if ids.ndim != 1:
        raise ValueError(f"scene_ids: expected a 1-D array, got shape {ids.shape}")
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first)
    return [np.flatnonzero(inverse == g) for g in order]


@dataclass
class PairwiseRanking:
    """Within-scene pairwise ranking accuracy.

    Over every pair of candidates of one scene whose simulator EPDMS differ, the fraction the prediction orders
    the same way; a pair the prediction ties counts 1/2.

    Attributes:
        accuracy: over all such pairs of all scenes (micro average).
        scene_mean: mean of the per-scene accuracies (scenes with no such pair left out, counted below).
        n_pairs: pairs judged.
        n_simulator_ties: pairs left out because the simulator's EPDMS are equal (within ``TIE_TOLERANCE``).
        n_predicted_ties: judged pairs the prediction ties (each counted 1/2).
        n_nan: candidates left out because either EPDMS is NaN.
        n_scenes: scenes with at least one judged pair.
        n_scenes_without_pairs: scenes with none (one candidate, or all tied).
    """

    accuracy: float
    scene_mean: float
    n_pairs: int
    n_simulator_ties: int
    n_predicted_ties: int
    n_nan: int
    n_scenes: int
    n_scenes_without_pairs: int


def pairwise_ranking(
    predicted: npt.ArrayLike, simulator: npt.ArrayLike, scene_ids: npt.ArrayLike, tolerance: float = TIE_TOLERANCE
) -> PairwiseRanking:
    """Within-scene pairwise ranking accuracy of predicted ``(N,)`` against simulator ``(N,)`` EPDMS."""
    p, s = _as_1d(predicted, "predicted"), _as_1d(simulator, "simulator")
    ids = np.asarray(scene_ids)
    _same_length(predicted=p, simulator=s, scene_ids=ids)
    ok = ~(np.isnan(p) | np.isnan(s))
    correct, pairs, sim_ties, pred_ties, per_scene, empty = 0.0, 0, 0, 0, [], 0
    for rows in _groups(ids[ok]):
        ps, ss = p[ok][rows], s[ok][rows]
        upper = np.triu_indices(len(rows), k=1)
        ds = (ss[:, None] - ss[None, :])[upper]
        dp = (ps[:, None] - ps[None, :])[upper]
        judged = np.abs(ds) > tolerance
        sim_ties += int((~judged).sum())
        ds, dp = ds[judged], dp[judged]
        if len(ds) == 0:
            empty += 1
            continue
        tied = dp == 0
        hits = float(np.sum(np.sign(dp) == np.sign(ds))) + 0.5 * float(tied.sum())
        correct += hits
        pairs += len(ds)
        pred_ties += int(tied.sum())
        per_scene.append(hits / len(ds))
    return PairwiseRanking(
        accuracy=correct / pairs if pairs else float("nan"),
        scene_mean=float(np.mean(per_scene)) if per_scene else float("nan"),
        n_pairs=pairs,
        n_simulator_ties=sim_ties,
        n_predicted_ties=pred_ties,
        n_nan=int((~ok).sum()),
        n_scenes=len(per_scene),
        n_scenes_without_pairs=empty,
    )


@dataclass
class Regret:
    """Top-1 regret: per scene, the simulator EPDMS of the best candidate minus that of the predicted favourite.

    In EPDMS points (0..100). Where several candidates tie for the highest prediction, the regret is the mean over
    them (the expected regret of a random tie-break), and the scene is counted in ``n_scenes_tied_top``.

    Attributes:
        mean: mean regret over scenes [points].
        median: median regret [points].
        max: largest regret [points].
        zero_fraction: fraction of scenes where the favourite is (one of) the best.
        n_scenes: scenes judged.
        n_scenes_tied_top: scenes whose highest prediction is tied.
        n_nan: candidates left out because either EPDMS is NaN.
        per_scene: regret of each judged scene, in order of first appearance [points].
    """

    mean: float
    median: float
    max: float
    zero_fraction: float
    n_scenes: int
    n_scenes_tied_top: int
    n_nan: int
    per_scene: list[float] = field(default_factory=list)


def _favourites(
    predicted: npt.ArrayLike, simulator: npt.ArrayLike, scene_ids: npt.ArrayLike
) -> tuple[list[tuple[np.ndarray, FloatArray]], int]:
    """Per scene (in order of first appearance), the rows of its favourites and each one's regret [points].

    Rows index the inputs; a scene has several favourites where its highest prediction is tied. Candidates with a
    NaN EPDMS are left out; their count is returned.
    """
    p, s = _as_1d(predicted, "predicted"), _as_1d(simulator, "simulator")
    ids = np.asarray(scene_ids)
    _same_length(predicted=p, simulator=s, scene_ids=ids)
    ok = np.flatnonzero(~(np.isnan(p) | np.isnan(s)))
    out = []
    for rows in _groups(ids[ok]):
        rows = ok[rows]
        ps, ss = p[rows], s[rows]
        top = ps == ps.max()
        out.append((rows[top], POINTS * (ss.max() - ss[top])))
    return out, int(len(p) - len(ok))


def top1_regret(predicted: npt.ArrayLike, simulator: npt.ArrayLike, scene_ids: npt.ArrayLike) -> Regret:
    """Top-1 regret of choosing, in each scene, the candidate of highest predicted EPDMS."""
    favourites, n_nan = _favourites(predicted, simulator, scene_ids)
    r = np.asarray([float(regret.mean()) for _, regret in favourites])
    tied = sum(len(rows) > 1 for rows, _ in favourites)
    nan = float("nan")
    return Regret(
        mean=float(r.mean()) if len(r) else nan,
        median=float(np.median(r)) if len(r) else nan,
        max=float(r.max()) if len(r) else nan,
        zero_fraction=float(np.mean(r <= TIE_TOLERANCE * POINTS)) if len(r) else nan,
        n_scenes=len(r),
        n_scenes_tied_top=tied,
        n_nan=n_nan,
        per_scene=[float(x) for x in r],
    )


#: A scene whose regret is above this many EPDMS points has a catastrophic favourite (one that fails a multiplier).
CATASTROPHIC_REGRET = 50.0

#: The failures a favourite is checked for: the simulator's sub-score below the bound (NC and DDC below 1, the
#: binary DAC, TLC and EC at 0). An undefined EC is no failure.
FAVOURITE_FAILURES: dict[SubScore, tuple[float, str]] = {
    SubScore.NC: (1.0, "NC < 1 (an at-fault collision)"),
    SubScore.DAC: (0.5, "DAC = 0 (off the drivable area)"),
    SubScore.DDC: (1.0, "DDC < 1 (against the driving direction)"),
    SubScore.TLC: (0.5, "TLC = 0 (through a red light)"),
    SubScore.EC: (0.5, "EC = 0 (extended comfort failed)"),
}


@dataclass
class FavouriteFailure:
    """The scenes whose favourite fails one sub-score, and their part of the regret.

    With a tied top prediction, a scene counts by the fraction of its favourites that fail (the expectation of a
    random tie-break), so ``n_scenes`` can be fractional.

    Attributes:
        sub_score: the sub-score's short name.
        condition: the failure, in words.
        n_scenes: scenes whose favourite fails it.
        scene_fraction: their fraction of the judged scenes.
        regret_share: their part of the summed regret (0..1; NaN when the regret is 0 everywhere).
        mean_regret: their mean regret [points].
    """

    sub_score: str
    condition: str
    n_scenes: float
    scene_fraction: float
    regret_share: float
    mean_regret: float


@dataclass
class RegretBreakdown:
    """Where the top-1 regret comes from: catastrophic scenes and the failures of the favourites.

    Attributes:
        threshold: a scene's regret above this is catastrophic [points].
        n_scenes: scenes judged.
        mean: the mean regret (``Regret.mean``) [points].
        n_catastrophic: scenes above ``threshold``.
        catastrophic_share: their part of the summed regret (0..1).
        mean_without_catastrophic: the mean regret of the other scenes [points].
        failures: one row per ``FAVOURITE_FAILURES`` entry, in ``SubScore`` order; rows overlap (a favourite can
            fail several).
        no_failure: the scenes whose favourite fails none of them (their regret is lost progress, TTC, LK, HC).
    """

    threshold: float
    n_scenes: int
    mean: float
    n_catastrophic: int
    catastrophic_share: float
    mean_without_catastrophic: float
    failures: list[FavouriteFailure]
    no_failure: FavouriteFailure


def regret_breakdown(
    predicted: npt.ArrayLike,
    simulator_epdms: npt.ArrayLike,
    simulator_sub_scores: npt.ArrayLike,
    scene_ids: npt.ArrayLike,
    threshold: float = CATASTROPHIC_REGRET,
) -> RegretBreakdown:
    """Break the top-1 regret of ``predicted`` ``(N,)`` down by catastrophic scenes and the favourites' failures.

    Args:
        predicted: what each scene's favourite maximises ``(N,)``.
        simulator_epdms: the simulator's EPDMS ``(N,)`` [0..1].
        simulator_sub_scores: the simulator's sub-scores ``(N, S)`` by ``SubScore`` (NaN: undefined).
        scene_ids: the scene of each candidate ``(N,)``.
        threshold: a scene's regret above this is catastrophic [points].
    """
    sub = np.asarray(simulator_sub_scores, dtype=np.float64)
    if sub.shape != (len(np.asarray(scene_ids)), NUM_SUB_SCORES):
        raise ValueError(
            f"regret_breakdown: simulator_sub_scores {sub.shape}, expected (N={len(np.asarray(scene_ids))}, "
            f"{NUM_SUB_SCORES})"
        )
    favourites, _ = _favourites(predicted, simulator_epdms, scene_ids)
    per_scene = np.asarray([float(regret.mean()) for _, regret in favourites])
    n = len(per_scene)
    total = float(per_scene.sum())
    nan = float("nan")

    def row(sub_score: str, condition: str, fails: list[FloatArray]) -> FavouriteFailure:
        # fails[i]: 1.0 where favourite j of scene i fails; a scene counts by the fraction, its regret by the mean.
        count = float(sum(f.mean() for f in fails))
        part = float(sum((f * regret).mean() for f, (_, regret) in zip(fails, favourites, strict=True)))
        return FavouriteFailure(
            sub_score=sub_score,
            condition=condition,
            n_scenes=count,
            scene_fraction=count / n if n else nan,
            regret_share=part / total if total > 0 else nan,
            mean_regret=part / count if count > 0 else nan,
        )

    failed_any = [np.zeros(len(rows)) for rows, _ in favourites]
    failures = []
    for score, (bound, condition) in FAVOURITE_FAILURES.items():
        fails = [(sub[rows, score] < bound).astype(np.float64) for rows, _ in favourites]  # NaN < bound is False
        failed_any = [np.maximum(a, f) for a, f in zip(failed_any, fails, strict=True)]
        failures.append(row(score.name, condition, fails))
    catastrophic = per_scene > threshold
    return RegretBreakdown(
        threshold=threshold,
        n_scenes=n,
        mean=float(per_scene.mean()) if n else nan,
        n_catastrophic=int(catastrophic.sum()),
        catastrophic_share=float(per_scene[catastrophic].sum()) / total if total > 0 else nan,
        mean_without_catastrophic=float(per_scene[~catastrophic].mean()) if (~catastrophic).any() else nan,
        failures=failures,
        no_failure=row("-", "none of them", [1.0 - a for a in failed_any]),
    )


def worst_disagreements(predicted: npt.ArrayLike, simulator: npt.ArrayLike, n: int) -> tuple[np.ndarray, int]:
    """Indices of the ``n`` candidates of largest ``|predicted - simulator|`` EPDMS, largest first.

    Returns the indices and the number of candidates left out because either value is NaN. Equal gaps keep
    index order (a stable sort).
    """
    p, s = _as_1d(predicted, "predicted"), _as_1d(simulator, "simulator")
    _same_length(predicted=p, simulator=s)
    ok = np.flatnonzero(~(np.isnan(p) | np.isnan(s)))
    gap = np.abs(p[ok] - s[ok])
    order = np.argsort(-gap, kind="stable")
    return ok[order[: max(n, 0)]], int(len(p) - len(ok))


@dataclass
class SubScoreGap:
    """Mean predicted minus mean simulator value of one sub-score (positive: the reward model is optimistic).

    Attributes:
        name: the sub-score's short name.
        mean_predicted: over the candidates where both are defined.
        mean_simulator: over the same candidates.
        gap: ``mean_predicted - mean_simulator``.
        n: candidates used.
        n_undefined: candidates left out (either value undefined).
    """

    name: str
    mean_predicted: float
    mean_simulator: float
    gap: float
    n: int
    n_undefined: int


def sub_score_gaps(predicted: npt.ArrayLike, simulator: npt.ArrayLike) -> list[SubScoreGap]:
    """Per sub-score optimism of the prediction, in ``SubScore`` order (the reward-hacking signature)."""
    pred, sim = np.asarray(predicted, dtype=np.float64), np.asarray(simulator, dtype=np.float64)
    if pred.shape != sim.shape or pred.ndim != 2 or pred.shape[1] != NUM_SUB_SCORES:
        raise ValueError(f"sub_score_gaps: expected two (N, {NUM_SUB_SCORES}) arrays, got {pred.shape}, {sim.shape}")
    out = []
    for sub in SubScore:
        ok = ~(np.isnan(pred[:, sub]) | np.isnan(sim[:, sub]))
        mp = float(pred[ok, sub].mean()) if ok.any() else float("nan")
        ms = float(sim[ok, sub].mean()) if ok.any() else float("nan")
        out.append(SubScoreGap(sub.name, mp, ms, mp - ms, int(ok.sum()), int((~ok).sum())))
    return out


def to_jsonable(value: Any) -> Any:
    """Dataclasses, numpy scalars and arrays as JSON values; non-finite floats as ``None`` (JSON has no NaN)."""
    if hasattr(value, "__dataclass_fields__"):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
