"""Anchors bent along the predicted road (``route.bend_anchors``): the geometry, and what the model does with it."""

from __future__ import annotations

import math

import pytest
import torch

from irl_vla.data.enums import SE2Index
from irl_vla.models.vla.bend import bend_anchors
from irl_vla.models.vla.config import RouteConfig
from irl_vla.models.vla.loss import winning_anchor
from irl_vla.models.vla.model import VLAModel
from tests.models.vla.helpers import ready_model, synthetic_batch, tiny_config

SPACING = 5.0
POINTS = 10


def _anchors(laterals: tuple[float, ...] = (0.0, 1.5, -2.0)) -> torch.Tensor:
    x = torch.linspace(2.0, 45.0, 8)  # (T,) [m], within the centreline's 50 m
    return torch.stack([torch.stack([x, torch.full_like(x, y), torch.zeros_like(x)], -1) for y in laterals])


def _arc(radius: float) -> torch.Tensor:
    """A centreline ``(1, P, 3)`` along a circle of ``radius`` [m] turning left from the ego."""
    s = SPACING * torch.arange(1, POINTS + 1, dtype=torch.float32)
    theta = s / radius
    return torch.stack([radius * torch.sin(theta), radius * (1 - torch.cos(theta)), theta], -1)[None]


def test_a_straight_centreline_leaves_the_anchors_as_they_are():
    s = SPACING * torch.arange(1, POINTS + 1, dtype=torch.float32)
    straight = torch.stack([s, torch.zeros_like(s), torch.zeros_like(s)], -1)[None].expand(2, -1, -1)
    anchors = _anchors()
    anchors[..., SE2Index.HEADING] = 0.1  # headings are kept relative to the road
    anchors[0, 0, SE2Index.X] = -1.0  # behind the ego: extrapolated along the first segment
    anchors[0, -1, SE2Index.X] = 70.0  # beyond the last point: extrapolated along the last
    bent = bend_anchors(anchors, straight, SPACING)
    assert bent.shape == (2, *anchors.shape)
    torch.testing.assert_close(bent, anchors[None].expand(2, -1, -1, -1), atol=1e-5, rtol=0)


def test_anchors_follow_a_bend_at_their_lateral_offset():
    radius = 60.0
    anchors = _anchors()
    bent = bend_anchors(anchors, _arc(radius), SPACING)[0]  # (K, T, 3)
    centre = torch.tensor([0.0, radius])
    distance = torch.linalg.vector_norm(bent[..., :2] - centre, dim=-1)  # (K, T)
    expected = radius - anchors[:, :, SE2Index.Y]  # left offsets are nearer the bend's centre
    assert (distance - expected).abs().max() < 0.1  # chords of 5 m segments: within 10 cm of the circle
    # each pose is as far along the road as the anchor's x, and its heading is the road's there
    along = torch.atan2(bent[..., 0], centre[1] - bent[..., 1]) * radius  # (K, T) arc length
    assert (along - anchors[..., SE2Index.X]).abs().max() < 0.2
    torch.testing.assert_close(bent[..., SE2Index.HEADING], anchors[..., SE2Index.X] / radius, atol=0.01, rtol=0)
    # far along the bend the straight anchor ends well to the left of where it started
    assert bent[0, -1, SE2Index.Y] > 45.0**2 / (2 * radius) * 0.9


def test_beyond_the_centreline_the_road_goes_on_along_its_last_heading():
    bent = bend_anchors(torch.tensor([[[50.0, 0.0, 0.0], [60.0, 0.0, 0.0]]]), _arc(60.0), SPACING)[0, 0]
    last_heading = 50.0 / 60.0
    step = bent[1, :2] - bent[0, :2]
    torch.testing.assert_close(torch.atan2(step[1], step[0]), torch.tensor(last_heading), atol=0.05, rtol=0)
    assert math.isclose(float(step.norm()), 10.0, rel_tol=0.01)
    torch.testing.assert_close(bent[:, SE2Index.HEADING], torch.full((2,), last_heading), atol=1e-5, rtol=0)


def test_the_winning_anchor_is_picked_per_scene_among_bent_anchors():
    anchors = _anchors()
    bent = torch.cat([bend_anchors(anchors, _arc(60.0), SPACING), bend_anchors(anchors, _arc(-60.0), SPACING)])
    expert = bent[torch.arange(2), torch.tensor([1, 2])] + 0.05  # scene 0 follows anchor 1, scene 1 anchor 2
    assert winning_anchor(bent, expert).tolist() == [1, 2]
    assert winning_anchor(anchors, anchors[2:3]).tolist() == [2]  # shared anchors as before


def test_bending_needs_the_route_head():
    with pytest.raises(ValueError, match="bend_anchors"):
        RouteConfig(enabled=False, bend_anchors=True)


def test_the_model_denoises_the_bent_anchors_and_the_loss_picks_from_them():
    cfg = tiny_config(route={"bend_anchors": True})
    batches = [synthetic_batch(cfg, 4, seed) for seed in range(2)]
    model = ready_model(cfg, batches)
    f, t = batches[0]
    model.train()
    out = model(f, t, generator=torch.Generator().manual_seed(0))
    k, poses = cfg.planner.num_modes, cfg.inputs.num_poses
    assert out["anchors"].shape == (4, k, poses, 3)
    torch.testing.assert_close(
        out["anchors"], bend_anchors(model.planner.anchors, out["route_centerline"], cfg.route.spacing)
    )
    losses = model.compute_loss(out, t)
    (losses["trajectory_reg"] + losses["trajectory_cls"]).backward()
    # the planning terms do not move the centreline the anchors were bent along
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.route.pose_head.parameters())
    # with a straight centreline the bent model is the plain one, weight for weight
    plain = VLAModel(tiny_config())
    plain.load_state_dict(model.state_dict())
    for m in (model, plain):
        m.eval()
    with torch.no_grad():
        model.route.pose_head[-1].weight.zero_()
        model.route.pose_head[-1].bias.zero_()
        plain.route.pose_head[-1].weight.zero_()
        plain.route.pose_head[-1].bias.zero_()
        torch.testing.assert_close(model(f)["modes"], plain(f)["modes"], atol=1e-4, rtol=0)
        # a bent centreline bends the modes
        model.route.pose_head[-1].bias[SE2Index.Y] = 0.5
        bent = model(f)
        assert (bent["modes"][..., -1, SE2Index.Y] - plain(f)["modes"][..., -1, SE2Index.Y]).mean() > 1.0


def test_sampled_chains_of_bent_anchors_keep_their_log_probability():
    cfg = tiny_config(route={"bend_anchors": True})
    batches = [synthetic_batch(cfg, 3, seed) for seed in range(2)]
    model = ready_model(cfg, batches)
    model.eval()
    f = batches[0][0]
    with torch.no_grad():
        out = model(f, stochastic=True, generator=torch.Generator().manual_seed(3))
        again = model.chain_log_prob(f, out["chain"])
    torch.testing.assert_close(again, out["chain_log_probs"])
