"""Longitudinal control of the embedded world's traffic and expert: IDM (``irl_vla.common.idm``) and ACC.

``acc_acceleration`` adds the constant-acceleration heuristic of the ACC model (Kesting, Treiber and Helbing,
2010), which keeps reactions to cut-ins and suddenly appearing stop points near the kinematically needed
deceleration instead of the IDM's over-reaction when the gap is far below the desired one.
"""

from __future__ import annotations

import numpy as np

from irl_vla.common.idm import IDMParams, equilibrium_gap, idm_acceleration

__all__ = ["ACC_COOLNESS", "IDMParams", "acc_acceleration", "driver_style", "equilibrium_gap", "idm_acceleration"]

ACC_COOLNESS = 0.99  # c of the ACC model: weight of the constant-acceleration heuristic


def driver_style(
    rng: np.random.Generator,
    headway: tuple[float, float] = (1.3, 2.0),
    accel_max: tuple[float, float] = (1.0, 1.8),
) -> IDMParams:
    """A human-like driving style drawn from ``rng``: minimum gap, headway [s], comfortable acceleration and braking."""
    return IDMParams(
        min_gap=float(rng.uniform(2.0, 3.0)),
        headway=float(rng.uniform(*headway)),
        accel_max=float(rng.uniform(*accel_max)),
        decel_comfort=float(rng.uniform(1.5, 2.5)),
    )


def acc_acceleration(
    speed: float,
    target_speed: float,
    gap: float,
    lead_speed: float,
    lead_accel: float,
    params: IDMParams,
) -> float:
    """ACC-model acceleration [m/s^2]: IDM blended with the constant-acceleration heuristic (CAH).

    Args:
        speed: own speed v [m/s].
        target_speed: desired speed [m/s].
        gap: bumper gap s [m]; ``inf`` for a free road.
        lead_speed: leader speed [m/s].
        lead_accel: leader acceleration [m/s^2] (0 for stop lines and static objects).
        params: IDM parameters.

    Returns:
        Acceleration clipped to ``[-decel_max, accel_max]``.
    """
    a_idm = float(idm_acceleration(speed, target_speed, gap, lead_speed, params))
    if not np.isfinite(gap):
        return a_idm
    s = max(gap, 1e-3)
    a_lead = min(lead_accel, params.accel_max)
    dv = speed - lead_speed
    if lead_speed * dv <= -2.0 * s * a_lead:
        denom = lead_speed**2 - 2.0 * s * a_lead
        a_cah = speed**2 * a_lead / denom if denom > 1e-9 else a_lead
    else:
        a_cah = a_lead - (dv**2 if dv > 0 else 0.0) / (2.0 * s)
    if a_idm >= a_cah:
        return a_idm
    b = params.decel_comfort
    acc = (1 - ACC_COOLNESS) * a_idm + ACC_COOLNESS * (a_cah + b * float(np.tanh((a_idm - a_cah) / b)))
    return float(np.clip(acc, -params.decel_max, params.accel_max))
