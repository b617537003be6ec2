"""The plan ``agent=vla`` executes, computed in torch on batches: the network's modes anchored to the ego state.

The agent does not drive the network's poses as they are: with ``agent.anchor_to_state`` (its default) it refits
its chosen mode as a jerk-regularised quintic that starts with the ego's measured velocity and acceleration
(``irl_vla.agents.state_anchoring``). PPO scores candidates with the learned reward, and it must score what would
be executed, or it optimises something else: the sampled chains carry per-pose noise that the refit removes (and
that the reward model, seeing the raw poses, reads as discomfort), and a mode's start is replaced by the car's.

The refit is linear in the poses: per coordinate, ``fit(v) = base + M (v - base)`` where ``base`` is the
polynomial of the fixed coefficients (position 0, the measured velocity and half the acceleration for x and y;
heading 0) evaluated at the pose times, and ``M`` ``(T, T)`` maps the residual to the fitted free part. ``M`` is
built from ``fit_polynomial`` itself (its response to each unit residual), so the two stay one computation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from irl_vla.agents.state_anchoring import DEGREE, fit_polynomial
from irl_vla.data.enums import SE2Index
from irl_vla.data.features.ego import EgoStatusIndex

#: The features key holding the ego status history (its last frame is the current one).
EGO_STATUS_KEY = "ego_status"


def residual_operator(times: np.ndarray, num_fixed: int, jerk_weight: float) -> Tensor:
    """``M`` ``(T, T)``: fitted values at ``times`` of the fit of a residual with ``num_fixed`` zero coefficients."""
    powers = np.arange(DEGREE + 1)
    design = times[:, None] ** powers  # (T, DEGREE + 1)
    columns = [design @ fit_polynomial(times, unit, [0.0] * num_fixed, jerk_weight) for unit in np.eye(len(times))]
    return torch.from_numpy(np.stack(columns, axis=1)).float()  # (T, T)


class StateAnchoring(torch.nn.Module):
    """Anchors batches of plans to the ego state, as ``agent=vla`` does (see the module docstring).

    Args:
        times: the plans' pose times ``(T,)`` [s] after the current frame.
        jerk_weight: the refit's weight of the integrated squared jerk [s^5] (``agent.anchor_jerk_weight``).
    """

    def __init__(self, times: np.ndarray, jerk_weight: float) -> None:
        super().__init__()
        times = np.asarray(times, dtype=np.float64)
        self.register_buffer("times", torch.from_numpy(times).float(), persistent=False)
        self.register_buffer("position", residual_operator(times, 3, jerk_weight), persistent=False)
        self.register_buffer("heading", residual_operator(times, 1, jerk_weight), persistent=False)

    def forward(self, plans: Tensor, ego_status: Tensor) -> Tensor:
        """The anchored plans ``(B, N, T, 3)`` of ``plans`` ``(B, N, T, 3)`` [m, m, rad].

        Args:
            plans: poses relative to the current rear axle.
            ego_status: ``(B, H, D)`` the ego status history (``EgoStatusIndex`` columns, the current frame last).

        Raises:
            ValueError: on misshapen inputs.
        """
        if plans.ndim != 4 or plans.shape[-2:] != (len(self.times), len(SE2Index)):
            raise ValueError(f"state anchoring: plans (B, N, {len(self.times)}, 3) expected, got {tuple(plans.shape)}")
        if ego_status.ndim != 3 or ego_status.shape[0] != plans.shape[0]:
            raise ValueError(f"state anchoring: ego_status (B, H, D) expected, got {tuple(ego_status.shape)}")
        current = ego_status[:, -1]  # (B, D)
        t = self.times[None, None, :]  # (1, 1, T)
        out = torch.empty_like(plans)
        for column, velocity, acceleration in (
            (SE2Index.X, EgoStatusIndex.VELOCITY_X, EgoStatusIndex.ACCELERATION_X),
            (SE2Index.Y, EgoStatusIndex.VELOCITY_Y, EgoStatusIndex.ACCELERATION_Y),
        ):
            v, a = current[:, velocity, None, None], current[:, acceleration, None, None]  # (B, 1, 1)
            base = v * t + 0.5 * a * t**2  # (B, 1, T)
            out[..., column] = base + (plans[..., column] - base) @ self.position.T
        heading = plans[..., SE2Index.HEADING]  # (B, N, T), unwrapped as the agent does
        jumps = torch.round(torch.diff(heading, dim=-1) / (2 * math.pi)) * (2 * math.pi)  # (B, N, T - 1)
        heading = heading - torch.cat([torch.zeros_like(heading[..., :1]), jumps.cumsum(-1)], dim=-1)
        fitted = heading @ self.heading.T  # (B, N, T)
        out[..., SE2Index.HEADING] = torch.atan2(torch.sin(fitted), torch.cos(fitted))
        return out
