"""How a learned reward picks its favourite among a scene's candidates: one model or an ensemble, and how cautiously.

Taking the candidate of highest predicted reward among K is a maximum over K noisy estimates: the favourite is
the candidate whose error is most in its favour (the optimiser's curse), so its simulator score falls short of
its predicted one most where the model is unsure. Two remedies, both options of one selection score per
candidate (higher is better), computed from the rewards and expected sub-scores of M reward models:

- **ensemble** (M >= 2 models differing only in their training seed): the members' mean reward, minus ``lcb``
  times their standard deviation (a lower confidence bound; ``lcb = 0``: the mean). Members disagree most where
  the training data say least, which is where one model's favourite is most likely a lucky error.
- **gate** on the multipliers: a candidate whose expected NC, DAC, DDC or TLC (the members' mean;
  ``gate_sub_scores``) is below ``gate`` ranks after every candidate that passes (among themselves they keep the
  order of their score).
  The reward's product of *expected* multipliers lets a candidate with a 10 % chance of a collision score 0.9 of
  its weighted sum; the gate asks for confidence on each hard constraint before progress counts.

The reward itself (what PPO optimises, what the report correlates) stays ``aggregate`` of the expected
sub-scores, the suite's one aggregation function; this module only orders candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore


@dataclass
class SelectionConfig:
    """How the favourite is chosen (``report.selection``, ``agent.selection`` of ``vla_best_of_n``).

    Attributes:
        lcb: the favourite maximises the members' mean reward minus ``lcb`` times their standard deviation
            (``0``: the mean; > 0 needs an ensemble of at least two models).
        gate: candidates whose expected value of any of ``gate_sub_scores`` is below this rank after all others
            (``0``: no gate).
        gate_sub_scores: the sub-scores the gate reads (short names; the multipliers by default).
    """

    lcb: float = 0.0
    gate: float = 0.0
    gate_sub_scores: list[str] = field(default_factory=lambda: ["NC", "DAC", "DDC", "TLC"])

    def __post_init__(self) -> None:
        if not (np.isfinite(self.lcb) and self.lcb >= 0):
            raise ValueError(f"selection.lcb: expected a finite value >= 0, got {self.lcb}")
        if not 0 <= self.gate <= 1:
            raise ValueError(f"selection.gate: expected a probability in [0, 1], got {self.gate}")
        for name in self.gate_sub_scores:
            try:
                SubScore.from_name(name)
            except ValueError as e:
                raise ValueError(f"selection.gate_sub_scores: {e}") from None

    @property
    def is_plain(self) -> bool:
        """Whether the favourite is simply the highest (mean) reward."""
        return self.lcb == 0 and self.gate == 0

    def describe(self, members: int) -> str:
        """The rule in words, e.g. ``mean of 3 - 1 std, gate 0.8 on NC, DAC, DDC, TLC``."""
        what = "reward" if members == 1 else f"mean of {members}"
        if self.lcb:
            what += f" - {self.lcb:g} std"
        if self.gate:
            what += f", gate {self.gate:g} on {', '.join(self.gate_sub_scores)}"
        return what


def selection_scores(
    rewards: npt.ArrayLike, sub_scores: npt.ArrayLike | None, config: SelectionConfig
) -> np.ndarray:
    """The score each candidate is chosen by, from M reward models' predictions.

    Args:
        rewards: ``(M, ..., K)`` each member's reward of each candidate.
        sub_scores: ``(M, ..., K, S)`` each member's expected sub-scores by ``SubScore`` (only the gate reads
            them; ``None`` without a gate).
        config: the rule.

    Returns:
        ``(..., K)`` scores; the favourite of a scene is their argmax over K.

    Raises:
        ValueError: on mismatched shapes, sub-scores missing for a gate, or ``lcb > 0`` with a single member.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim < 2:
        raise ValueError(f"selection_scores: expected rewards (M, ..., K), got {r.shape}")
    if config.gate > 0 and sub_scores is None:
        raise ValueError("selection.gate reads the predicted sub-scores; none were given")
    s = None if sub_scores is None else np.asarray(sub_scores, dtype=np.float64)
    if s is not None and s.shape != (*r.shape, NUM_SUB_SCORES):
        raise ValueError(
            f"selection_scores: rewards (M, ..., K) {r.shape} and sub-scores (M, ..., K, S) {s.shape} disagree"
        )
    if config.lcb > 0 and r.shape[0] < 2:
        raise ValueError(f"selection.lcb = {config.lcb:g} needs an ensemble of at least two reward models, got one")
    score = r.mean(axis=0)
    if config.lcb > 0:
        score = score - config.lcb * r.std(axis=0)
    if config.gate > 0 and s is not None:
        cols = [int(SubScore.from_name(n)) for n in config.gate_sub_scores]
        confident = (s[..., cols].mean(axis=0) >= config.gate).all(axis=-1)  # (..., K)
        finite = score[np.isfinite(score)]
        drop = 1.0 + (float(finite.max() - finite.min()) if finite.size else 0.0)  # below every passing score
        score = np.where(confident, score, score - drop)
    return score


def favourites(rewards: npt.ArrayLike, sub_scores: npt.ArrayLike | None, config: SelectionConfig) -> np.ndarray:
    """The index ``(...)`` of each scene's favourite over its K candidates (the first of equal scores)."""
    return np.argmax(selection_scores(rewards, sub_scores, config), axis=-1)
