import pytest
import torch
import torch.nn.functional as F

from irl_vla.data.features.bev_semantic import BevSemanticClass
from irl_vla.models.vla.config import LossConfig
from irl_vla.models.vla.loss import compute_loss, focal_loss, match_objects, winning_anchor, wrap_angle
from irl_vla.models.vla.reasoning3d import NO_OBJECT


def test_winning_anchor_is_the_nearest_in_mean_xy_distance():
    t = torch.arange(1, 9, dtype=torch.float32)
    anchors = torch.stack([torch.stack([s * t, 0 * t, 0 * t], -1) for s in (1.0, 3.0, 6.0)])  # (3, T, 3)
    expert = torch.stack([torch.stack([2.8 * t, 0.1 * t, 0 * t], -1), torch.stack([7 * t, 0 * t, 0 * t], -1)])
    assert winning_anchor(anchors, expert).tolist() == [1, 2]


def test_focal_loss_matches_its_formula():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    pos = torch.tensor([[0.0, 1.0, 0.0]])
    p = torch.sigmoid(logits)
    expected = 0
    for k in range(3):
        if pos[0, k] == 1:
            expected += -0.25 * (1 - p[0, k]) ** 2 * torch.log(p[0, k])
        else:
            expected += -0.75 * p[0, k] ** 2 * torch.log(1 - p[0, k])
    torch.testing.assert_close(focal_loss(logits, pos, 2.0, 0.25), expected)


def test_hungarian_matching_pairs_tokens_with_the_nearest_boxes():
    states = torch.zeros(1, 3, 7)
    states[0, :, 0] = torch.tensor([0.0, 10.0, 20.0])
    targets = torch.zeros(1, 2, 7)
    targets[0, :, 0] = torch.tensor([19.0, 1.0])
    classes = torch.tensor([[0, 1]])
    rows, cols = match_objects(torch.zeros(1, 3, 8), states, classes, targets, torch.tensor([[True, True]]))[0]
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=False)) == [(0, 1), (2, 0)]
    rows, cols = match_objects(torch.zeros(1, 3, 8), states, classes, targets, torch.tensor([[False, False]]))[0]
    assert rows.numel() == 0


def _predictions(b=2, k=3, t=8, q=4, grid=4):
    return {
        "modes": torch.zeros(b, k, t, 3, requires_grad=True),
        "mode_logits": torch.zeros(b, k, requires_grad=True),
        "agent_states": torch.zeros(b, q, 7, requires_grad=True),
        "agent_class_logits": torch.zeros(b, q, NO_OBJECT + 1, requires_grad=True),
        "bev_semantic_logits": torch.zeros(b, len(BevSemanticClass), grid, grid, requires_grad=True),
    }


def test_semantic_target_pools_with_the_highest_class_winning_and_terms_are_weighted():
    pred = _predictions()
    sem = torch.zeros(2, 8, 8, dtype=torch.long)
    sem[:, 0, 0] = BevSemanticClass.PEDESTRIAN  # one cell of a 2x2 block
    logits = pred["bev_semantic_logits"].detach().clone()
    logits[:, BevSemanticClass.PEDESTRIAN, 0, 0] = 10.0
    pred["bev_semantic_logits"] = logits
    targets = {
        "trajectory": torch.zeros(2, 8, 3),
        "agent_states": torch.zeros(2, 5, 7),
        "agent_classes": torch.full((2, 5), -100),
        "agent_mask": torch.zeros(2, 5, dtype=torch.bool),
        "bev_semantic_map": sem,
    }
    cfg = LossConfig(meta_action=0, lm=0)
    out = compute_loss(pred, targets, torch.zeros(3, 8, 3), cfg, language=True)
    pooled = torch.zeros(2, 4, 4, dtype=torch.long)
    pooled[:, 0, 0] = BevSemanticClass.PEDESTRIAN
    weight = torch.tensor(cfg.bev_class_weights)
    torch.testing.assert_close(out["bev_semantic"], F.cross_entropy(logits, pooled, weight=weight))
    total = sum(getattr(cfg, name) * value for name, value in out.items() if name != "loss")
    torch.testing.assert_close(out["loss"], total)
    assert set(out) == {"trajectory_cls", "trajectory_reg", "agent_class", "agent_box", "bev_semantic", "loss"}


def test_missing_targets_of_weighted_terms_are_named():
    pred = _predictions()
    targets = {"trajectory": torch.zeros(2, 8, 3)}
    with pytest.raises(ValueError, match="agent_states"):
        compute_loss(pred, targets, torch.zeros(3, 8, 3), LossConfig(), language=True)
    cfg = LossConfig(agent_class=0, agent_box=0, bev_semantic=0, meta_action=0)
    with pytest.raises(ValueError, match="lm_target_tokens"):
        compute_loss(pred, targets, torch.zeros(3, 8, 3), cfg, language=True)
    out = compute_loss(
        pred, targets, torch.zeros(3, 8, 3), LossConfig(agent_class=0, agent_box=0, bev_semantic=0), language=False
    )
    assert set(out) == {"trajectory_cls", "trajectory_reg", "loss"}


def test_heading_error_is_wrapped():
    torch.testing.assert_close(
        wrap_angle(torch.tensor([3.0 * torch.pi / 2, -3.0 * torch.pi / 2])), torch.tensor([-torch.pi / 2, torch.pi / 2])
    )
