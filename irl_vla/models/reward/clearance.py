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

Two implementations of the same arithmetic: torch (differentiable, any device) and a compiled loop over the
(candidate, pose, object) triples (numba, CPU), used when nothing needs a gradient. The torch version builds about
forty (B, K, T, A) intermediate tensors; the loop builds none and is about ten times faster on one core, which is
most of the light reward model's cost per candidate. A test keeps the two equal.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import NamedTuple

import numpy as np
import torch
from numba import njit
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


class ObjectTracks(NamedTuple):
    """The boxes at each candidate pose's time, ``(B, T, A, ...)``, and their half sizes (a scene's, computed once)."""

    position: Tensor  # (B, T, A, 2) [m] centre x, y
    velocity: Tensor  # (B, T, A, 2) [m/s]
    heading: Tensor  # (B, T, A) [rad]
    present: Tensor  # (B, T, A) bool
    half_length: Tensor  # (B, A) [m]
    half_width: Tensor  # (B, A) [m]


def object_tracks(
    agents: Tensor,
    mask: Tensor,
    interval: float,
    num_poses: int,
    futures: Tensor | None = None,
    future_mask: Tensor | None = None,
) -> ObjectTracks:
    """Where the boxes are at the candidate's times: logged futures where given, else constant velocity.

    With ``futures``, an object is absent at a time the log does not have it (as in the simulator's log replay).
    Arguments as ``object_clearance``'s.
    """
    t = num_poses
    half = (agents[..., AgentStateIndex.LENGTH].float() / 2, agents[..., AgentStateIndex.WIDTH].float() / 2)  # (B, A)
    pos = agents[..., [AgentStateIndex.X, AgentStateIndex.Y]].float()  # (B, A, 2)
    vel = agents[..., [AgentStateIndex.VELOCITY_X, AgentStateIndex.VELOCITY_Y]].float()
    times = interval * torch.arange(1, t + 1, dtype=pos.dtype, device=pos.device)  # (T,)
    present = mask.bool()[:, None, :].expand(-1, t, -1)  # (B, T, A)
    heading = agents[..., AgentStateIndex.HEADING].float()[:, None, :].expand(-1, t, -1)  # (B, T, A)
    if futures is None:
        future = pos[:, None] + times[None, :, None, None] * vel[:, None]  # (B, T, A, 2)
        velocity = vel[:, None].expand(-1, t, -1, -1)  # (B, T, A, 2)
        return ObjectTracks(future, velocity, heading, present, *half)
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
    return ObjectTracks(future, velocity, logged[..., AgentStateIndex.HEADING], present & logged_mask, *half)


def object_clearance(
    trajectories: Tensor,
    agents: Tensor,
    mask: Tensor,
    interval: float,
    vehicle: VehicleParameters,
    cap: float,
    futures: Tensor | None = None,
    future_mask: Tensor | None = None,
    *,
    compiled: bool | None = None,
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
        compiled: use the compiled loop (``None``: when on the CPU and no input needs a gradient).

    Returns:
        ``(B, K, T, len(ClearanceIndex))``.
    """
    tracks = object_tracks(agents, mask, interval, trajectories.shape[2], futures, future_mask)
    return nearest_objects(trajectories, tracks, interval, vehicle, cap, compiled=compiled)


def nearest_objects(
    trajectories: Tensor,
    tracks: ObjectTracks,
    interval: float,
    vehicle: VehicleParameters,
    cap: float,
    *,
    compiled: bool | None = None,
) -> Tensor:
    """``object_clearance`` given the scene's ``object_tracks`` (computed once, for any number of candidates)."""
    half_l, half_w = tracks.half_length, tracks.half_width
    if compiled is None:
        inputs = (trajectories, tracks.position, half_l)
        compiled = trajectories.device.type == "cpu" and not any(x.requires_grad for x in inputs)
    if compiled:
        out = np.empty((*trajectories.shape[:3], len(ClearanceIndex)), dtype=np.float32)
        _nearest_kernel(
            trajectories.detach().float().numpy(),
            tracks.position.contiguous().numpy(),
            tracks.velocity.contiguous().numpy(),
            tracks.heading.contiguous().numpy(),
            tracks.present.contiguous().numpy(),
            half_l.contiguous().numpy(),
            half_w.contiguous().numpy(),
            (vehicle.front_length - vehicle.rear_length) / 2,
            (vehicle.front_length + vehicle.rear_length) / 2,
            vehicle.width / 2,
            cap,
            interval,
            out,
        )
        return torch.from_numpy(out)
    return _nearest_torch(trajectories.float(), tracks, half_l, half_w, interval, vehicle, cap)


def _nearest_torch(
    traj: Tensor, tracks: ObjectTracks, half_l: Tensor, half_w: Tensor, interval: float, vehicle, cap: float
) -> Tensor:
    """``object_clearance`` in torch (differentiable, any device)."""
    x, y, h = traj[..., SE2Index.X], traj[..., SE2Index.Y], traj[..., SE2Index.HEADING]  # (B, K, T)
    cos, sin = torch.cos(h)[..., None], torch.sin(h)[..., None]  # (B, K, T, 1)
    dx = tracks.position[:, None, ..., 0] - x[..., None]  # (B, K, T, A)
    dy = tracks.position[:, None, ..., 1] - y[..., None]
    forward = dx * cos + dy * sin
    left = dy * cos - dx * sin
    dh = tracks.heading[:, None] - h[..., None]  # (B, K, T, A)
    half_l = half_l[:, None, None, :]
    half_w = half_w[:, None, None, :]
    along = half_l * torch.cos(dh).abs() + half_w * torch.sin(dh).abs()  # object's extent along the heading
    across = half_l * torch.sin(dh).abs() + half_w * torch.cos(dh).abs()
    centre = (vehicle.front_length - vehicle.rear_length) / 2  # [m] ego box centre ahead of the rear axle
    half_length = (vehicle.front_length + vehicle.rear_length) / 2
    gap = torch.maximum(
        (forward - centre).abs() - half_length - along, left.abs() - vehicle.width / 2 - across
    )  # (B, K, T, A)
    gap = gap.masked_fill(~tracks.present[:, None], float("inf"))
    clearance, nearest = gap.min(dim=-1)  # (B, K, T)
    present = torch.isfinite(clearance)
    pick = nearest[..., None]

    def at_nearest(v: Tensor) -> Tensor:
        return torch.where(present, torch.gather(v, -1, pick)[..., 0], torch.zeros_like(clearance))

    # the candidate's speed at each pose: the distance from the previous pose (the origin first) over the interval
    xy = torch.cat([torch.zeros_like(traj[:, :, :1, :2]), traj[..., :2]], dim=2)  # (B, K, T + 1, 2)
    speed = (xy[:, :, 1:] - xy[:, :, :-1]).norm(dim=-1) / interval  # (B, K, T)
    velocity = tracks.velocity[:, None]  # (B, 1, T, A, 2)
    object_along = velocity[..., 0] * cos + velocity[..., 1] * sin  # (B, K, T, A)
    return torch.stack(
        [
            clearance.clamp(max=cap).nan_to_num(posinf=cap),
            at_nearest(forward),
            at_nearest(left),
            torch.where(present, speed - at_nearest(object_along), torch.zeros_like(speed)),
        ],
        dim=-1,
    )


@njit(cache=True, nogil=True)
def _nearest_kernel(
    traj: np.ndarray,
    position: np.ndarray,
    velocity: np.ndarray,
    heading: np.ndarray,
    present: np.ndarray,
    half_l: np.ndarray,
    half_w: np.ndarray,
    centre: float,
    half_length: float,
    half_width: float,
    cap: float,
    interval: float,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled (its equality with _nearest_torch is tested)
    """``object_clearance`` as one loop over (scene, candidate, pose, object), written into ``out`` (B, K, T, 4)."""
    b_n, k_n, t_n = traj.shape[0], traj.shape[1], traj.shape[2]
    a_n = position.shape[2]
    cos_o, sin_o = np.cos(heading), np.sin(heading)  # (B, T, A): cos(dh), sin(dh) by the difference formulas
    for b in range(b_n):
        for k in range(k_n):
            px, py = 0.0, 0.0
            for t in range(t_n):
                x, y, h = traj[b, k, t, 0], traj[b, k, t, 1], traj[b, k, t, 2]
                c, s = math.cos(h), math.sin(h)
                speed = math.sqrt((x - px) ** 2 + (y - py) ** 2) / interval
                px, py = x, y
                best, pick, best_fwd, best_left = math.inf, -1, 0.0, 0.0
                for a in range(a_n):
                    if not present[b, t, a]:
                        continue
                    dx, dy = position[b, t, a, 0] - x, position[b, t, a, 1] - y
                    fwd, left = dx * c + dy * s, dy * c - dx * s
                    cd = abs(cos_o[b, t, a] * c + sin_o[b, t, a] * s)  # |cos(object heading - h)|
                    sd = abs(sin_o[b, t, a] * c - cos_o[b, t, a] * s)
                    along = half_l[b, a] * cd + half_w[b, a] * sd
                    across = half_l[b, a] * sd + half_w[b, a] * cd
                    gap = max(abs(fwd - centre) - half_length - along, abs(left) - half_width - across)
                    if gap < best:
                        best, pick, best_fwd, best_left = gap, a, fwd, left
                if pick < 0:
                    out[b, k, t, 0], out[b, k, t, 1], out[b, k, t, 2], out[b, k, t, 3] = cap, 0.0, 0.0, 0.0
                else:
                    closing = speed - (velocity[b, t, pick, 0] * c + velocity[b, t, pick, 1] * s)
                    out[b, k, t, 0], out[b, k, t, 1], out[b, k, t, 2] = min(best, cap), best_fwd, best_left
                    out[b, k, t, 3] = closing
