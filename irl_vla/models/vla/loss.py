"""The imitation loss of the VLA: planning terms plus auxiliary 3D, map, meta-action and language terms.

- ``trajectory_cls``: per-anchor sigmoid focal loss; the anchor nearest the expert (mean xy distance over the
  poses; each scene's own anchors when they are bent along the road) is the positive.
- ``trajectory_reg``: L1 of the winning anchor's mode to the expert [m, m, rad] (heading difference wrapped).
- ``agent_class`` / ``agent_box``: object tokens matched one-to-one to the annotated boxes (Hungarian matching on
  class probability and centre distance); matched tokens learn the box's class and state, the rest the
  no-object class.
- ``bev_semantic``: cross-entropy of the BEV semantic map, the target pooled to the prediction's grid (the
  highest class in a block wins, as in the target's painting order), each class weighted by
  ``bev_class_weights`` (a weighted mean over the cells).
- ``meta_action``: cross-entropy of the meta-action from the meta tokens (unlabelled samples ignored).
- ``lm``: next-token cross-entropy of the LM target text (scene description and meta-action).
- ``route``: L1 of the route head's centreline poses against the target [m, m, rad] (heading difference
  wrapped), over the points the route reaches; with ``route_squared`` the mean squared error instead.

Each term is returned unweighted; ``loss`` is their sum weighted by ``LossConfig`` (a term of weight 0 is
neither computed nor required).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from irl_vla.data.enums import SE2Index
from irl_vla.data.features.targets import IGNORE_INDEX, AgentStateIndex
from irl_vla.models.vla.config import LossConfig, TargetKey
from irl_vla.models.vla.reasoning3d import NO_OBJECT, NUM_OBJECT_CLASSES

_XY = [SE2Index.X, SE2Index.Y]


def wrap_angle(angle: Tensor) -> Tensor:
    """Angles wrapped to ``[-pi, pi)`` [rad]."""
    return torch.remainder(angle + torch.pi, 2 * torch.pi) - torch.pi


def pose_l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean L1 over poses ``(..., T, 3)`` with the heading difference wrapped."""
    diff = pred - target
    diff = torch.cat([diff[..., _XY], wrap_angle(diff[..., SE2Index.HEADING : SE2Index.HEADING + 1])], dim=-1)
    return diff.abs().mean()


def winning_anchor(anchors: Tensor, trajectory: Tensor) -> Tensor:
    """Index ``(B,)`` of the anchor nearest each expert trajectory ``(B, T, 3)`` (mean xy L2).

    ``anchors``: ``(K, T, 3)`` shared by all scenes, or ``(B, K, T, 3)`` per scene (bent along the road).
    """
    per_scene = anchors if anchors.dim() == 4 else anchors[None]  # (B or 1, K, T, 3)
    dist = torch.linalg.vector_norm(per_scene[..., _XY] - trajectory[:, None, :, _XY], dim=-1)  # (B, K, T)
    return dist.mean(-1).argmin(-1)


def focal_loss(logits: Tensor, positives: Tensor, gamma: float, alpha: float) -> Tensor:
    """Sigmoid focal loss of ``logits`` ``(B, K)`` against 0/1 ``positives``, summed over K, mean over B."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, positives, reduction="none")
    p_t = p * positives + (1 - p) * (1 - positives)
    weight = alpha * positives + (1 - alpha) * (1 - positives)
    return (weight * (1 - p_t) ** gamma * ce).sum(-1).mean()


def match_objects(
    class_logits: Tensor, states: Tensor, target_classes: Tensor, target_states: Tensor, mask: Tensor
) -> list[tuple[Tensor, Tensor]]:
    """Hungarian matching of object tokens to annotated boxes, per sample.

    The cost of a pair is the centre distance [m] minus the token's probability of the box's class.

    Args:
        class_logits: ``(B, Q, C)``.
        states: predicted boxes ``(B, Q, D_box)``.
        target_classes: ``(B, A)``.
        target_states: ``(B, A, D_box)``.
        mask: ``(B, A)`` true on real boxes.

    Returns:
        Per sample, (token indices, box indices) of the matched pairs.
    """
    probs = class_logits.detach().softmax(-1)
    xy = [AgentStateIndex.X, AgentStateIndex.Y]
    out = []
    for b in range(class_logits.shape[0]):
        real = torch.nonzero(mask[b]).flatten()
        distance = torch.cdist(states[b][:, xy].detach(), target_states[b][real][:, xy])  # (Q, A_b)
        cost = distance - probs[b][:, target_classes[b, real]]
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        rows_t = torch.as_tensor(rows, dtype=torch.long, device=mask.device)
        out.append((rows_t, real[torch.as_tensor(cols, dtype=torch.long, device=mask.device)]))
    return out


def _require(mapping: Mapping[str, Tensor], key: str, what: str, term: str) -> Tensor:
    if key not in mapping:
        raise ValueError(f"loss term {term}: {what} have no {key!r} (set loss.{term} = 0 to drop the term)")
    return mapping[key]


def _agent_terms(pred: Mapping[str, Tensor], targets: Mapping[str, Tensor], cfg: LossConfig) -> tuple[Tensor, Tensor]:
    logits = _require(pred, "agent_class_logits", "predictions", "agent_class")
    states = _require(pred, "agent_states", "predictions", "agent_class")
    tgt_states = _require(targets, TargetKey.AGENT_STATES.value, "targets", "agent_class")
    tgt_classes = _require(targets, TargetKey.AGENT_CLASSES.value, "targets", "agent_class")
    mask = _require(targets, TargetKey.AGENT_MASK.value, "targets", "agent_class").bool()
    matches = match_objects(logits, states, tgt_classes, tgt_states, mask)
    labels = torch.full(logits.shape[:2], NO_OBJECT, dtype=torch.long, device=logits.device)  # (B, Q)
    pred_boxes, true_boxes = [], []
    for b, (rows, cols) in enumerate(matches):
        labels[b, rows] = tgt_classes[b, cols]
        pred_boxes.append(states[b, rows])
        true_boxes.append(tgt_states[b, cols])
    weight = torch.ones(NUM_OBJECT_CLASSES, device=logits.device)
    weight[NO_OBJECT] = cfg.no_object_weight
    class_loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), weight=weight)
    pred_cat, true_cat = torch.cat(pred_boxes), torch.cat(true_boxes)  # (P, D_box)
    if pred_cat.shape[0] == 0:
        return class_loss, states.sum() * 0.0
    diff = pred_cat - true_cat
    heading = AgentStateIndex.HEADING
    diff = torch.cat([diff[:, :heading], wrap_angle(diff[:, heading : heading + 1]), diff[:, heading + 1 :]], -1)
    return class_loss, diff.abs().mean()


def _semantic_term(pred: Mapping[str, Tensor], targets: Mapping[str, Tensor], cfg: LossConfig) -> Tensor:
    logits = _require(pred, "bev_semantic_logits", "predictions", "bev_semantic")  # (B, C, H', W')
    target = _require(targets, TargetKey.BEV_SEMANTIC_MAP.value, "targets", "bev_semantic")  # (B, H, W)
    stride = target.shape[-1] // logits.shape[-1]
    if stride > 1:
        target = F.max_pool2d(target[:, None].float(), stride)[:, 0].long()  # (B, H', W'): highest class wins
    if tuple(target.shape[-2:]) != tuple(logits.shape[-2:]):
        raise ValueError(
            f"bev_semantic_map of {tuple(target.shape[-2:])} cells does not pool to the prediction's "
            f"{tuple(logits.shape[-2:])}"
        )
    weight = torch.tensor(cfg.bev_class_weights, dtype=torch.float32, device=logits.device)
    if logits.shape[1] != weight.shape[0]:
        raise ValueError(f"loss.bev_class_weights: {weight.shape[0]} weights for {logits.shape[1]} classes")
    return F.cross_entropy(logits.float(), target, weight=weight)


def _route_term(pred: Mapping[str, Tensor], targets: Mapping[str, Tensor], squared: bool = False) -> Tensor:
    poses = _require(pred, "route_centerline", "predictions", "route")  # (B, P, 3)
    target = _require(targets, TargetKey.ROUTE_CENTERLINE.value, "targets", "route")  # (B, P, 3)
    mask = _require(targets, TargetKey.ROUTE_CENTERLINE_MASK.value, "targets", "route").bool()  # (B, P)
    if tuple(poses.shape) != tuple(target.shape):
        raise ValueError(
            f"route_centerline target {tuple(target.shape)} does not match the head's {tuple(poses.shape)}"
        )
    diff = poses.float() - target
    heading = SE2Index.HEADING
    diff = torch.cat([diff[..., _XY], wrap_angle(diff[..., heading : heading + 1])], dim=-1)  # (B, P, 3)
    if not bool(mask.any()):
        return poses.sum() * 0.0
    return (diff[mask].square() if squared else diff[mask].abs()).mean()


def _lm_term(pred: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor:
    tokens = _require(targets, TargetKey.LM_TARGET_TOKENS.value, "targets", "lm")
    mask = _require(targets, TargetKey.LM_TARGET_MASK.value, "targets", "lm").bool()
    logits = _require(pred, "lm_logits", "predictions (pass the targets to forward)", "lm")  # (B, L, V)
    labels = tokens.masked_fill(~mask, IGNORE_INDEX)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)


def compute_loss(
    predictions: Mapping[str, Tensor],
    targets: Mapping[str, Tensor],
    anchors: Tensor,
    cfg: LossConfig,
    *,
    language: bool = True,
    aux3d: bool = True,
    route: bool = False,
) -> dict[str, Tensor]:
    """The imitation loss (see the module docstring).

    Args:
        predictions: the model's training-mode outputs.
        targets: batched ``TargetKey`` tensors.
        anchors: the planner's anchors ``(K, T, 3)`` [m, m, rad], or each scene's ``(B, K, T, 3)``.
        cfg: the weights.
        language: whether the model has its language branch (its terms are skipped without it).
        aux3d: whether the model has its auxiliary 3D heads (the agent and BEV semantic terms are skipped without
            them).
        route: whether the model has a route head (the route term is skipped without it).

    Returns:
        Each computed term, unweighted, and ``loss``, the weighted sum.

    Raises:
        ValueError: naming a target or prediction a weighted term needs but that is missing.
    """
    terms: dict[str, Tensor] = {}
    expert = _require(targets, TargetKey.TRAJECTORY.value, "targets", "trajectory_reg")  # (B, T, 3)
    winner = winning_anchor(anchors, expert)  # (B,)
    num_modes = anchors.shape[-3]
    if cfg.trajectory_cls > 0 and num_modes > 1:  # one mode (regression head): nothing to classify
        positives = F.one_hot(winner, num_modes).float()  # (B, K)
        terms["trajectory_cls"] = focal_loss(predictions["mode_logits"], positives, cfg.focal_gamma, cfg.focal_alpha)
    if cfg.trajectory_reg > 0:
        modes = predictions["modes"]  # (B, K, T, 3)
        chosen = modes[torch.arange(modes.shape[0], device=modes.device), winner]  # (B, T, 3)
        terms["trajectory_reg"] = pose_l1(chosen, expert)
    if aux3d and (cfg.agent_class > 0 or cfg.agent_box > 0):
        terms["agent_class"], terms["agent_box"] = _agent_terms(predictions, targets, cfg)
    if aux3d and cfg.bev_semantic > 0:
        terms["bev_semantic"] = _semantic_term(predictions, targets, cfg)
    if language and cfg.meta_action > 0:
        labels = _require(targets, TargetKey.META_ACTION.value, "targets", "meta_action")
        logits = _require(predictions, "meta_action_logits", "predictions", "meta_action")
        if bool((labels != IGNORE_INDEX).any()):
            terms["meta_action"] = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
    if language and cfg.lm > 0:
        terms["lm"] = _lm_term(predictions, targets)
    if route and cfg.route > 0:
        terms["route"] = _route_term(predictions, targets, cfg.route_squared)
    terms["loss"] = torch.stack([float(getattr(cfg, name)) * value for name, value in terms.items()]).sum()
    return terms
