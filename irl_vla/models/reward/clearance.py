"""Where each candidate pose stands relative to the objects around it: the reward model's collision cue.

The candidate decoder otherwise sees objects only as tokens to attend to, and the BEV raster sampled along the
candidate's outline at the *current* positions of the objects, so a candidate that runs into a vehicle ahead
three seconds from now (the commonest collision among its worst held-out picks) looks as clear as one that
stops behind it. Here each object's box is placed at the time of each candidate pose: where the log has it
(``agent_future_states``, privileged: what the simulator's log replay uses; an object the log lacks at that time
is absent, as in the replay) or, without logged futures, carried forward at its current velocity; and measured in
that pose's frame against the ego vehicle's box:

- ``CLEARANCE``: the gap [m] between the two boxes, negative when they overlap (the larger of the gaps along
  the pose's heading and across it, the boxes' extents projected on the pose's axes);
- ``FORWARD``, ``LEFT``: the nearest object's centre in the pose's frame [m];
- ``CLOSING``: how fast [m/s] that object comes nearer along the pose's heading (the candidate's speed at the
  pose minus the object's velocity along the heading; positive: closing in from behind it).

Only the nearest object (smallest gap) of each pose is kept. Without objects a pose gets the clearance cap.
"""

from __future__ import annotations

from enum import IntEnum

import torch
from torch import Tensor

from irl_vla.data.enums import SE2Index
from irl_vla.data.features.targets import AgentStateIndex
from irl_vla.data.vehicle import VehicleParameters


class ClearanceIndex(IntEnum):
    """Columns of ``object_clearance``."""

    CLEARANCE = 0  # [m] gap between the ego's box and the nearest object's box (negative: overlap)
    FORWARD = 1  # [m] the nearest object's centre along the pose's heading
    LEFT = 2  # [m] and to its left
    CLOSING = 3  # [m/s] closing speed along the heading


def object_clearance(
    trajectories: Tensor,
    agents: Tensor,
    mask: Tensor,
    interval: float,
    vehicle: VehicleParameters,
    cap: float,
    futures: Tensor | None = None,
    future_mask: Tensor | None = None,
) -> Tensor:
    """The nearest object to every candidate pose: logged futures where given, else constant velocity.

    With ``futures``, an object is absent at a time the log does not have it (as in the simulator's log replay).

    Args:
        trajectories: ``(B, K, T, 3)`` rear-axle poses by ``SE2Index`` [m, m, rad], pose t at ``(t + 1) interval``.
        agents: ``(B, A, D)`` current boxes by ``AgentStateIndex`` (ego frame).
        mask: ``(B, A)`` true on real boxes.
        interval: [s] between poses.
        vehicle: the ego vehicle (its box about the rear axle).
        cap: [m] clearances are capped at this (also a pose's clearance when no object is present).
        futures: ``(B, A, T, 3)`` the boxes' logged poses at the candidate's times by ``AgentFutureIndex``
            (``agent_future_states``); ``None``: constant velocity from their current state.
        future_mask: ``(B, A, T)`` true where a box is in the log at that time (with ``futures``).

    Returns:
        ``(B, K, T, len(ClearanceIndex))``.
    """
    t = trajectories.shape[2]
    traj = trajectories.float()
    times = interval * torch.arange(1, t + 1, dtype=traj.dtype, device=traj.device)  # (T,)
    pos = agents[..., [AgentStateIndex.X, AgentStateIndex.Y]].float()  # (B, A, 2)
    vel = agents[..., [AgentStateIndex.VELOCITY_X, AgentStateIndex.VELOCITY_Y]].float()
    present = mask.bool()[:, None, None, :]  # (B, 1, 1, A)
    heading = agents[..., AgentStateIndex.HEADING].float()[:, None, None, :]  # (B, 1, 1, A)
    if futures is None:
        future = pos[:, None] + times[None, :, None, None] * vel[:, None]  # (B, T, A, 2)
        velocity = vel[:, None].expand(-1, t, -1, -1)  # (B, T, A, 2)
    else:
        if future_mask is None:
            raise ValueError("object_clearance: futures without future_mask")
        logged = futures.float().transpose(1, 2)  # (B, T, A, 3)
        future = logged[..., :2]
        # velocity over each interval, from the previous logged position (the current one first); after a time the
        # log lacks the box (its stored position is a zero), the box's current velocity instead
        previous = torch.cat([pos[:, None], future[:, :-1]], dim=1)
        logged_mask = future_mask.bool().transpose(1, 2)  # (B, T, A)
        had_previous = torch.cat([mask.bool()[:, None], logged_mask[:, :-1]], dim=1)  # (B, T, A)
        velocity = torch.where(had_previous[..., None], (future - previous) / interval, vel[:, None])
        heading = logged[..., AgentStateIndex.HEADING][:, None]  # (B, 1, T, A)
        present = present & future_mask.bool().transpose(1, 2)[:, None]  # (B, 1, T, A)
    x, y, h = traj[..., SE2Index.X], traj[..., SE2Index.Y], traj[..., SE2Index.HEADING]  # (B, K, T)
    cos, sin = torch.cos(h)[..., None], torch.sin(h)[..., None]  # (B, K, T, 1)
    dx = future[:, None, ..., 0] - x[..., None]  # (B, K, T, A)
    dy = future[:, None, ..., 1] - y[..., None]
    forward = dx * cos + dy * sin
    left = dy * cos - dx * sin
    dh = heading - h[..., None]  # (B, K, T, A)
    half_l = agents[:, None, None, :, AgentStateIndex.LENGTH].float() / 2
    half_w = agents[:, None, None, :, AgentStateIndex.WIDTH].float() / 2
    along = half_l * torch.cos(dh).abs() + half_w * torch.sin(dh).abs()  # object's extent along the heading
    across = half_l * torch.sin(dh).abs() + half_w * torch.cos(dh).abs()
    centre = (vehicle.front_length - vehicle.rear_length) / 2  # [m] ego box centre ahead of the rear axle
    half_length = (vehicle.front_length + vehicle.rear_length) / 2
    gap = torch.maximum(
        (forward - centre).abs() - half_length - along, left.abs() - vehicle.width / 2 - across
    )  # (B, K, T, A)
    gap = gap.masked_fill(~present, float("inf"))
    clearance, nearest = gap.min(dim=-1)  # (B, K, T)
    present = torch.isfinite(clearance)
    pick = nearest[..., None]

    def at_nearest(v: Tensor) -> Tensor:
        return torch.where(present, torch.gather(v, -1, pick)[..., 0], torch.zeros_like(clearance))

    # the candidate's speed at each pose: the distance from the previous pose (the origin first) over the interval
    xy = torch.cat([torch.zeros_like(traj[:, :, :1, :2]), traj[..., :2]], dim=2)  # (B, K, T + 1, 2)
    speed = (xy[:, :, 1:] - xy[:, :, :-1]).norm(dim=-1) / interval  # (B, K, T)
    object_along = velocity[:, None, ..., 0] * cos + velocity[:, None, ..., 1] * sin  # (B, K, T, A)
    out = torch.stack(
        [
            clearance.clamp(max=cap).nan_to_num(posinf=cap),
            at_nearest(forward),
            at_nearest(left),
            torch.where(present, speed - at_nearest(object_along), torch.zeros_like(speed)),
        ],
        dim=-1,
    )
    return out
