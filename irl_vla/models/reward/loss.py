"""The reward model's training terms: sub-score distillation, the max-margin inverse-RL term, EP ranking.

All terms read the candidates the forward pass scored (``RewardKey.CANDIDATE_INDEX`` into the scene's labelled
candidates) and the simulator's labels of those candidates:

- ``distill_<SUB>``: cross-entropy of the 3-class NC and DDC heads (label v -> class 2v), BCE of the binary
  heads, BCE of the EP logit against the simulator's EP as a soft target (a bounded regression); undefined
  labels (EC without a previous frame) are left out; ``distillation`` is their sum weighted by
  ``RewardLossConfig.sub_scores``.
- ``irl``: maximum-margin IRL. The expert's demonstration must out-score every candidate the simulator rates
  worse by at least ``irl_min_gap`` EPDMS, by a margin proportional to that gap:
  ``mean relu(R(c) - R(expert) + irl_margin * (EPDMS_sim(expert) - EPDMS_sim(c)))``, R the learned reward.
- ``ep_ranking``: within a scene, every pair whose simulator EP differs by more than ``ep_min_gap`` is ranked
  by the predicted EP with margin ``ep_margin``.
- ``score``: squared error of the reward against the simulator's EPDMS.
- ``listwise``: the top of each scene's ranking. The KL divergence from the simulator's softmax over the scored
  candidates (``softmax(EPDMS_sim / T)``) to the model's (``softmax(R / T)``), ``T`` = ``listwise_temperature``.
  Its gradient on a candidate's reward is (model's probability - simulator's) / T, so the candidates the model
  would pick (high predicted reward) that the simulator rates low are pushed down hardest: the hard negatives of
  a best-of-N pick, which ``irl`` (the expert only) and the squared error (every candidate alike) leave alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from irl_vla.labeling.store import CandidateSource
from irl_vla.models.reward.config import RewardLossConfig
from irl_vla.models.reward.heads import TERNARY, HeadKey
from irl_vla.scoring.sub_scores import SubScore


class RewardTarget:
    """Targets of a training sample (shapes without the batch axis), from the label store."""

    CANDIDATES = "candidates"  # (K, T, 3) relative plans [m, m, rad]
    SUB_SCORES = "candidate_sub_scores"  # (K, S) simulator sub-scores (NaN: undefined)
    EPDMS = "candidate_epdms"  # (K,) simulator EPDMS
    SOURCES = "candidate_sources"  # (K,) CandidateSource


class RewardKey:
    """Keys the model adds to its prediction dict beside the heads' (``HeadKey``)."""

    REWARD = "reward"  # (B, K) EPDMS of the expected sub-scores
    CANDIDATE_INDEX = "candidate_index"  # (B, K) which labelled candidates were scored (training forward)


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """``x`` ``(B, K, ...)`` at candidate ``index`` ``(B, Kt)`` -> ``(B, Kt, ...)``."""
    shape = index.shape + x.shape[2:]
    expanded = index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand(shape)
    return torch.gather(x, 1, expanded)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1)


def listwise_kl(reward: Tensor, epdms: Tensor, temperature: float) -> Tensor:
    """Mean over scenes of ``KL(softmax(epdms / T) || softmax(reward / T))`` over each scene's candidates.

    Args:
        reward: ``(B, K)`` the model's reward of the scored candidates.
        epdms: ``(B, K)`` the simulator's EPDMS of the same candidates.
        temperature: ``T`` [EPDMS]: a candidate ``T`` below another has ``1 / e`` of its probability.
    """
    target = F.log_softmax(epdms / temperature, dim=1)  # (B, K)
    predicted = F.log_softmax(reward / temperature, dim=1)
    return (target.exp() * (target - predicted)).sum(dim=1).mean()


def reward_loss(
    predictions: dict[str, Tensor], targets: dict[str, Tensor], cfg: RewardLossConfig, binary: tuple[SubScore, ...]
) -> dict[str, Tensor]:
    """Every term (unweighted) and ``loss``, their weighted sum.

    Args:
        predictions: the training forward's outputs (``HeadKey``, ``RewardKey``).
        targets: the batch's ``RewardTarget`` tensors.
        cfg: the terms' weights.
        binary: the binary sub-scores the model has heads for, in head order.
    """
    index = predictions[RewardKey.CANDIDATE_INDEX].long()
    sub = _gather(targets[RewardTarget.SUB_SCORES].float(), index)  # (B, K, S)
    epdms = _gather(targets[RewardTarget.EPDMS].float(), index)  # (B, K)
    sources = _gather(targets[RewardTarget.SOURCES].long(), index)  # (B, K)
    terms: dict[str, Tensor] = {}
    zero = predictions[HeadKey.EP_LOGIT].sum() * 0.0
    weights = {SubScore.from_name(k): v for k, v in cfg.sub_scores.items()}

    distill = zero
    ternary = predictions[HeadKey.TERNARY_LOGITS]  # (B, K, 2, 3)
    for i, s in enumerate(TERNARY):
        label = sub[..., s]
        defined = torch.isfinite(label)
        cls = torch.round(torch.nan_to_num(label) * 2).long().clamp(0, 2)
        ce = F.cross_entropy(ternary[..., i, :].flatten(0, 1), cls.flatten(), reduction="none").view_as(label)
        terms[f"distill_{s.name}"] = _masked_mean(ce, defined)
    logits = predictions[HeadKey.BINARY_LOGITS]  # (B, K, nb)
    for i, s in enumerate(binary):
        label = sub[..., s]
        defined = torch.isfinite(label)
        bce = F.binary_cross_entropy_with_logits(logits[..., i], torch.nan_to_num(label), reduction="none")
        terms[f"distill_{s.name}"] = _masked_mean(bce, defined)
    ep = sub[..., SubScore.EP]
    ep_bce = F.binary_cross_entropy_with_logits(predictions[HeadKey.EP_LOGIT], ep.clamp(0, 1), reduction="none")
    # minus the target's own entropy, so that a perfect EP prediction scores 0 (the term stays comparable)
    ep_entropy = F.binary_cross_entropy(ep.clamp(1e-6, 1 - 1e-6), ep.clamp(1e-6, 1 - 1e-6), reduction="none")
    terms["distill_EP"] = (ep_bce - ep_entropy).mean()
    for name, value in list(terms.items()):
        distill = distill + weights.get(SubScore.from_name(name.removeprefix("distill_")), 0.0) * value
    terms["distillation"] = distill

    reward = predictions[RewardKey.REWARD]  # (B, K)
    expert = sources == CandidateSource.EXPERT
    has_expert = expert.any(dim=1)  # (B,)
    first = expert.float().argmax(dim=1, keepdim=True)  # (B, 1)
    r_expert = torch.gather(reward, 1, first)  # (B, 1)
    gap = torch.gather(epdms, 1, first) - epdms  # (B, K) simulator EPDMS the candidate loses to the expert
    worse = (gap > cfg.irl_min_gap) & ~expert & has_expert[:, None]
    hinge = F.relu(reward - r_expert + cfg.irl_margin * gap)
    terms["irl"] = _masked_mean(hinge, worse.float())

    ep_pred = predictions[HeadKey.SUB_SCORES][..., SubScore.EP]  # (B, K)
    better = (ep[:, :, None] - ep[:, None, :]) > cfg.ep_min_gap  # (B, K, K): i should out-rank j
    rank = F.relu(cfg.ep_margin - (ep_pred[:, :, None] - ep_pred[:, None, :]))
    terms["ep_ranking"] = _masked_mean(rank, better.float())

    terms["score"] = F.mse_loss(reward, epdms)
    terms["listwise"] = listwise_kl(reward, epdms, cfg.listwise_temperature)
    terms["loss"] = (
        cfg.distillation * distill
        + cfg.irl * terms["irl"]
        + cfg.ep_ranking * terms["ep_ranking"]
        + cfg.score * terms["score"]
        + cfg.listwise * terms["listwise"]
    )
    return terms
