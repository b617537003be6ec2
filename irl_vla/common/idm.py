"""Intelligent Driver Model (Treiber, Hennecke and Helbing, 2000).

The longitudinal model of the embedded world's traffic and expert. ``IDMParams`` also holds the constants of
PDM-Closed's proposals, whose IDM follows navsim's batch form (``scoring.pdm_proposals.proposal_acceleration``).

a = a_max * (1 - (v / v0)^delta - (s* / s)^2),   s* = s0 + v T + v (v - v_lead) / (2 sqrt(a_max b))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class IDMParams:
    """IDM parameters.

    Attributes:
        min_gap: jam distance s0 [m].
        headway: desired time gap T [s].
        accel_max: maximum acceleration a_max [m/s^2].
        decel_comfort: comfortable deceleration b [m/s^2].
        delta: acceleration exponent [-].
        decel_max: hard braking limit applied to the output [m/s^2].
    """

    min_gap: float = 2.0
    headway: float = 1.5
    accel_max: float = 1.5
    decel_comfort: float = 2.0
    delta: float = 4.0
    decel_max: float = 8.0

    def __post_init__(self) -> None:
        for name in ("min_gap", "headway", "accel_max", "decel_comfort", "delta", "decel_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"IDMParams.{name}: expected > 0, got {getattr(self, name)}")


def idm_acceleration(
    speed: npt.ArrayLike,
    target_speed: npt.ArrayLike,
    gap: npt.ArrayLike,
    lead_speed: npt.ArrayLike,
    params: IDMParams,
) -> FloatArray:
    """IDM acceleration [m/s^2], vectorised.

    Args:
        speed: own speed v [m/s].
        target_speed: desired speed v0 [m/s] (> 0).
        gap: bumper-to-bumper distance to the leader s [m]; ``inf`` for a free road.
        lead_speed: leader speed [m/s] (ignored where ``gap`` is ``inf``).
        params: IDM parameters.

    Returns:
        Acceleration clipped to ``[-decel_max, accel_max]``.
    """
    v = np.asarray(speed, dtype=np.float64)
    v0 = np.maximum(np.asarray(target_speed, dtype=np.float64), 1e-3)
    s = np.maximum(np.asarray(gap, dtype=np.float64), 1e-3)
    dv = v - np.asarray(lead_speed, dtype=np.float64)
    s_star = params.min_gap + np.maximum(
        0.0, v * params.headway + v * dv / (2.0 * np.sqrt(params.accel_max * params.decel_comfort))
    )
    interaction = np.where(np.isinf(s), 0.0, (s_star / s) ** 2)
    acc = params.accel_max * (1.0 - (v / v0) ** params.delta - interaction)
    return np.clip(acc, -params.decel_max, params.accel_max)


def equilibrium_gap(speed: float, target_speed: float, params: IDMParams) -> float:
    """Closed-form steady-state gap [m] behind a leader driving at ``speed`` [m/s] (< ``target_speed``)."""
    if not 0 <= speed < target_speed:
        raise ValueError(f"equilibrium_gap: need 0 <= speed < target_speed, got {speed}, {target_speed}")
    s_star = params.min_gap + speed * params.headway
    return s_star / np.sqrt(1.0 - (speed / target_speed) ** params.delta)
