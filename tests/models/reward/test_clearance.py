"""The reward model's collision cue: each candidate pose against the nearest box carried at constant velocity."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from irl_vla.data.features.targets import AgentStateIndex
from irl_vla.data.vehicle import PACIFICA
from irl_vla.models.reward.clearance import ClearanceIndex, object_clearance
from irl_vla.models.reward.config import RewardModelConfig, load_reward_config
from irl_vla.models.reward.model import RewardWorldModel

T = 8


def straight(speed: float) -> torch.Tensor:
    """A candidate driving straight ahead at ``speed`` [m/s], poses every 0.5 s ``(1, 1, T, 3)``."""
    x = speed * 0.5 * torch.arange(1, T + 1, dtype=torch.float32)
    return torch.stack([x, torch.zeros(T), torch.zeros(T)], -1)[None, None]


def box(x: float, y: float, vx: float = 0.0, length: float = 4.0, width: float = 2.0) -> torch.Tensor:
    state = torch.zeros(len(AgentStateIndex))
    state[AgentStateIndex.X], state[AgentStateIndex.Y] = x, y
    state[AgentStateIndex.LENGTH], state[AgentStateIndex.WIDTH] = length, width
    state[AgentStateIndex.VELOCITY_X] = vx
    return state


def test_a_car_ahead_is_reached_when_the_boxes_meet_and_not_when_it_drives_away() -> None:
    agents = torch.stack([box(30.0, 0.0), box(0.0, 40.0)])[None]  # a stopped car 30 m ahead, one far to the left
    mask = torch.tensor([[True, True]])
    near = object_clearance(straight(10.0), agents, mask, 0.5, PACIFICA, cap=32.0)[0, 0]  # (T, 4)
    front = PACIFICA.front_length
    # pose t at 5 (t + 1) m: the ego's front bumper at 5 (t + 1) + front, the car's rear at 28 m
    expected = torch.tensor([28.0 - (5.0 * (i + 1) + front) for i in range(T)])
    ahead = expected > 0  # not yet touching: the gap along the heading is the gap
    assert torch.allclose(near[ahead, ClearanceIndex.CLEARANCE], expected[ahead], atol=1e-4)
    assert bool((near[:, ClearanceIndex.CLEARANCE] < 0).any())  # they overlap: a collision ahead
    assert torch.allclose(near[:, ClearanceIndex.CLOSING], torch.full((T,), 10.0), atol=1e-4)
    assert torch.allclose(near[:, ClearanceIndex.LEFT], torch.zeros(T), atol=1e-5)
    # the same car driving away at the candidate's speed keeps its gap (rear at 33 m at 0.5 s): never reached
    agents[0, 0, AgentStateIndex.VELOCITY_X] = 10.0
    moving = object_clearance(straight(10.0), agents, mask, 0.5, PACIFICA, cap=32.0)[0, 0]
    assert torch.allclose(moving[:, ClearanceIndex.CLEARANCE], torch.full((T,), 33.0 - 5.0 - front), atol=1e-4)
    assert torch.allclose(moving[:, ClearanceIndex.CLOSING], torch.zeros(T), atol=1e-4)


def test_no_objects_gives_the_cap_and_padding_is_ignored() -> None:
    agents = torch.stack([box(5.0, 0.0)])[None]
    near = object_clearance(straight(10.0), agents, torch.tensor([[False]]), 0.5, PACIFICA, cap=32.0)
    assert torch.equal(near[..., ClearanceIndex.CLEARANCE], torch.full((1, 1, T), 32.0))
    assert torch.equal(near[..., ClearanceIndex.FORWARD :], torch.zeros(1, 1, T, 3))


def test_the_model_reads_it_only_when_asked_and_needs_the_boxes() -> None:
    base = load_reward_config("tiny")
    on = RewardModelConfig(**{**base.__dict__, "agent_clearance": True})
    off = RewardWorldModel(base).candidate_embed[0].in_features
    assert RewardWorldModel(on).candidate_embed[0].in_features == off + T * len(ClearanceIndex)
    with pytest.raises(ValueError, match="use_agents"):
        inputs = replace(base.inputs, use_agents=False)
        RewardModelConfig(**{**base.__dict__, "inputs": inputs, "agent_clearance": True})


def test_a_model_with_it_starts_from_a_checkpoint_without_it_as_the_same_function() -> None:
    from tests.models.reward.test_reward_model import features, model

    before = model()
    after = model(agent_clearance=True)
    after.load_start_weights(before.state_dict())
    traj = torch.randn(2, 5, T, 3) * 10
    f = features()
    with torch.no_grad():
        assert torch.allclose(before.reward(f, traj), after.reward(f, traj), atol=1e-6)
        # the new columns (the last T x 4 inputs) are what it adds: weighted, they change the output
        torch.nn.init.normal_(after.candidate_embed[0].weight[:, -T * len(ClearanceIndex) :])
        assert not torch.allclose(before.reward(f, traj), after.reward(f, traj), atol=1e-3)


def test_logged_futures_follow_each_kept_box_by_its_track_in_the_current_frame() -> None:
    import numpy as np

    from irl_vla.data.enums import BoundingBoxIndex
    from irl_vla.data.features.agent_futures import AgentFutureIndex, AgentFutureTargetBuilder
    from irl_vla.data.geometry import absolute_to_relative, relative_to_absolute
    from irl_vla.data.scene import Annotations
    from tests.fixtures import build_straight_scene

    scene = build_straight_scene()
    origin = scene.current_frame.ego_status.ego_pose

    def annotate(frame, rows: list[tuple[str, float, float]]) -> None:
        """Boxes ``(track, x, y)`` given in the *current* ego frame, stored in ``frame``'s own ego frame."""
        boxes = np.zeros((len(rows), len(BoundingBoxIndex)))
        for k, (_track, x, y) in enumerate(rows):
            world = relative_to_absolute(np.array([x, y, 0.0]), origin)
            boxes[k, [BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]] = absolute_to_relative(
                world, frame.ego_status.ego_pose
            )
            boxes[k, [BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]] = 4.0, 2.0, 1.5
        tracks = [r[0] for r in rows]
        frame.annotations = Annotations(boxes, ["vehicle"] * len(rows), np.zeros((len(rows), 3)), tracks, tracks)

    annotate(scene.current_frame, [("far", 20.0, 0.0), ("near", 8.0, 3.0)])
    future = scene.frames[scene.current_index + 1 :]
    for t, frame in enumerate(future):
        rows = [("near", 8.0 + t, 3.0), ("new", 1.0, 1.0)]  # "far" is gone; "new" was not there now: not kept
        annotate(frame, rows if t != 2 else rows[1:])  # "near" missing from the third future frame
    n = min(len(future), 4)
    out = AgentFutureTargetBuilder(max_agents=3, num_poses=n).compute(scene)
    states, mask = out["agent_future_states"].numpy(), out["agent_future_mask"].numpy()
    # kept as agents keeps them: the nearest first ("near", then "far"), padding last
    assert mask[0].tolist() == [t != 2 for t in range(n)]
    assert not mask[1].any() and not mask[2].any()
    seen = [t for t in range(n) if t != 2]
    assert np.allclose(states[0, seen, AgentFutureIndex.X], [8.0 + t for t in seen], atol=1e-4)
    assert np.allclose(states[0, seen, AgentFutureIndex.Y], 3.0, atol=1e-4)


def test_logged_futures_replace_constant_velocity_where_the_log_has_the_box() -> None:
    agents = torch.stack([box(30.0, 0.0, vx=10.0)])[None]  # driving away at 10 m/s now ...
    mask = torch.tensor([[True]])
    futures = torch.zeros(1, 1, T, 3)
    futures[..., 0] = 30.0  # ... but in the log it brakes to a stop at once
    logged = torch.ones(1, 1, T, dtype=torch.bool)
    cv = object_clearance(straight(10.0), agents, mask, 0.5, PACIFICA, 32.0)[0, 0]
    log = object_clearance(straight(10.0), agents, mask, 0.5, PACIFICA, 32.0, futures, logged)[0, 0]
    assert float(cv[:, ClearanceIndex.CLEARANCE].min()) > 20.0
    assert float(log[:, ClearanceIndex.CLEARANCE].min()) < 0.0  # the candidate runs into it
    assert torch.allclose(log[1:, ClearanceIndex.CLOSING], torch.full((T - 1,), 10.0), atol=1e-4)
    # a time the log does not have the box: no object there
    logged[..., 3:] = False
    gone = object_clearance(straight(10.0), agents, mask, 0.5, PACIFICA, 32.0, futures, logged)[0, 0]
    assert torch.equal(gone[3:, ClearanceIndex.CLEARANCE], torch.full((T - 3,), 32.0))


def test_a_box_that_reappears_in_the_log_gets_its_velocity_not_a_jump_from_zero() -> None:
    # the box is missing from the log at t = 2 (stored as zeros): at t = 3 its closing speed came from (0, 0) before
    agents = torch.stack([box(30.0, 0.0, vx=0.0)])[None]
    futures = torch.zeros(1, 1, T, 3)
    futures[..., 0] = 30.0
    logged = torch.ones(1, 1, T, dtype=torch.bool)
    logged[..., 2] = False
    futures[..., 2, 0] = 0.0
    out = object_clearance(straight(10.0), agents, torch.tensor([[True]]), 0.5, PACIFICA, 32.0, futures, logged)[0, 0]
    assert torch.allclose(out[3:, ClearanceIndex.CLOSING], torch.full((T - 3,), 10.0), atol=1e-4)


@pytest.mark.parametrize("logged", [False, True])
def test_the_compiled_loop_equals_the_torch_version(logged: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    b, k, a = 2, 33, 7
    traj = torch.randn(b, k, T, 3, generator=gen) * torch.tensor([12.0, 4.0, 0.4])
    agents = torch.randn(b, a, len(AgentStateIndex), generator=gen) * 8.0
    agents[..., AgentStateIndex.LENGTH] = 2.0 + agents[..., AgentStateIndex.LENGTH].abs() / 4
    agents[..., AgentStateIndex.WIDTH] = 1.0 + agents[..., AgentStateIndex.WIDTH].abs() / 8
    mask = torch.rand(b, a, generator=gen) > 0.3
    mask[1] = False  # a scene without objects: the cap everywhere
    futures = future_mask = None
    if logged:
        futures = torch.randn(b, a, T, 3, generator=gen) * 10.0
        future_mask = torch.rand(b, a, T, generator=gen) > 0.2
    args = (traj, agents, mask, 0.5, PACIFICA, 32.0, futures, future_mask)
    fast = object_clearance(*args, compiled=True)
    reference = object_clearance(*args, compiled=False)
    assert fast.shape == reference.shape == (b, k, T, len(ClearanceIndex))
    assert torch.allclose(fast, reference, atol=1e-4, rtol=1e-5)
    assert bool((fast[0, ..., ClearanceIndex.CLEARANCE] < 32.0).any())  # the objects were seen
    # by default the compiled loop runs unless a gradient is needed
    assert torch.equal(object_clearance(*args), fast)
    grad = object_clearance(traj.clone().requires_grad_(True), *args[1:])
    assert grad.requires_grad and torch.allclose(grad.detach(), reference, atol=1e-6)
