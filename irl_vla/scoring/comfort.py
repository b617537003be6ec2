"""Comfort sub-scores: history comfort (HC) and two-frame extended comfort (EC), ``reference/navsim.md`` §1.7.

Signals are extracted with Savitzky-Golay filters (SciPy semantics, ``interp`` mode, even windows allowed),
windows capped at the series length, values rounded to 8 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import savgol_filter

from irl_vla.data.vehicle import PACIFICA, VehicleParameters
from irl_vla.scoring.states import FloatArray, StateIndex

S = StateIndex
_DECIMALS = 8
#: EC compares two frames started less than this apart [s] (navsim asserts 0 < dt < 0.55).
EC_MAX_OFFSET = 0.55


@dataclass(frozen=True)
class ComfortBounds:
    """Bounds of history comfort (strict) [m/s^2], [m/s^3], [rad/s], [rad/s^2]."""

    min_lon_accel: float = -4.05
    max_lon_accel: float = 2.40
    max_abs_lat_accel: float = 4.89
    max_abs_jerk: float = 8.37
    max_abs_lon_jerk: float = 4.13
    max_abs_yaw_accel: float = 1.93
    max_abs_yaw_rate: float = 0.95


@dataclass(frozen=True)
class ExtendedComfortBounds:
    """Bounds on the RMS difference between two consecutive plans (non-strict)."""

    max_accel_rms: float = 0.7  # [m/s^2]
    max_jerk_rms: float = 0.5  # [m/s^3]
    max_yaw_rate_rms: float = 0.1  # [rad/s]
    max_yaw_accel_rms: float = 0.1  # [rad/s^2]


@lru_cache(maxsize=128)
def _savgol_matrix(n: int, window: int, poly: int, deriv: int, dt: float) -> FloatArray:
    """The filter as an ``(n, n)`` matrix.

    SciPy's ``interp`` mode is linear in the signal (centre convolution, least-squares polynomial fits at the
    edges), so filtering the identity's columns gives the matrix.
    """
    return savgol_filter(np.eye(n), window, poly, deriv=deriv, delta=dt, axis=0, mode="interp")


def _savgol(x: FloatArray, window: int, poly: int, deriv: int = 0, dt: float = 1.0) -> FloatArray:
    """Savitzky-Golay along the last axis with the window capped at the series length (one matrix product)."""
    n = x.shape[-1]
    window = min(window, n)
    poly = min(poly, window - 1)
    return x @ _savgol_matrix(n, window, poly, deriv, float(dt)).T


def _center_acceleration(states: FloatArray, vehicle: VehicleParameters) -> tuple[FloatArray, FloatArray]:
    """Ego-frame acceleration (lon, lat) of the box centre, shifted from the rear axle as nuPlan does.

    nuPlan's shift adds ``d * omega^2 + d * alpha`` (``d`` the rear-axle-to-centre offset) to the longitudinal
    component and leaves the lateral one unchanged; reproduced as is.
    """
    d = vehicle.rear_axle_to_center
    omega, alpha = states[..., S.ANGULAR_VELOCITY], states[..., S.ANGULAR_ACCELERATION]
    return states[..., S.ACCELERATION_X] + d * omega**2 + d * alpha, states[..., S.ACCELERATION_Y].copy()


def _round(x: FloatArray) -> FloatArray:
    return np.round(x, _DECIMALS)


def comfort_signals(states: FloatArray, dt: float, vehicle: VehicleParameters = PACIFICA) -> dict[str, FloatArray]:
    """The seven comfort signals of states ``(..., T, n_state)``, each ``(..., T)``."""
    lon, lat = _center_acceleration(states, vehicle)
    lon = _savgol(lon, 8, 2)
    lat = _savgol(lat, 8, 2)
    magnitude = _savgol(np.hypot(states[..., S.ACCELERATION_X], states[..., S.ACCELERATION_Y]), 8, 2)
    heading = np.unwrap(states[..., S.HEADING], axis=-1)
    return {
        "lon_accel": _round(lon),
        "lat_accel": _round(lat),
        "jerk": _round(_savgol(magnitude, 15, 2, deriv=1, dt=dt)),
        "lon_jerk": _round(_savgol(lon, 15, 2, deriv=1, dt=dt)),
        "yaw_rate": _round(_savgol(heading, 5, 2, deriv=1, dt=dt)),
        "yaw_accel": _round(_savgol(heading, 5, 3, deriv=2, dt=dt)),
    }


def is_comfortable(
    states: FloatArray, dt: float, bounds: ComfortBounds = ComfortBounds(), vehicle: VehicleParameters = PACIFICA
) -> FloatArray:
    """1.0 where every comfort signal of states ``(..., T, n_state)`` is inside its bounds at every time, else 0.0."""
    sig = comfort_signals(states, dt, vehicle)
    ok = (
        (sig["lon_accel"] > bounds.min_lon_accel)
        & (sig["lon_accel"] < bounds.max_lon_accel)
        & (np.abs(sig["lat_accel"]) < bounds.max_abs_lat_accel)
        & (np.abs(sig["jerk"]) < bounds.max_abs_jerk)
        & (np.abs(sig["lon_jerk"]) < bounds.max_abs_lon_jerk)
        & (np.abs(sig["yaw_accel"]) < bounds.max_abs_yaw_accel)
        & (np.abs(sig["yaw_rate"]) < bounds.max_abs_yaw_rate)
    )
    return ok.all(axis=-1).astype(np.float64)


def history_comfort(
    states: FloatArray, history: FloatArray | None, dt: float, bounds: ComfortBounds = ComfortBounds()
) -> FloatArray:
    """HC of simulated states ``(K, T, n_state)`` preceded by the logged history states ``(H, n_state)`` -> ``(K,)``.

    The history and the plan are concatenated and treated as evenly spaced at ``dt``. Without history HC is 1.
    """
    if history is None or len(history) == 0:
        return np.ones(len(states))
    full = np.concatenate([np.broadcast_to(history, (len(states), *history.shape)), states], axis=1)
    return is_comfortable(full, dt, bounds)


def _two_frame_signals(states: FloatArray, dt: float) -> list[FloatArray]:
    magnitude = _savgol(np.hypot(states[..., S.ACCELERATION_X], states[..., S.ACCELERATION_Y]), 8, 2)
    heading = np.unwrap(states[..., S.HEADING], axis=-1)
    return [
        magnitude,
        _savgol(magnitude, 15, 2, deriv=1, dt=dt),
        _savgol(heading, 5, 2, deriv=1, dt=dt),
        _savgol(heading, 5, 2, deriv=2, dt=dt),
    ]


def extended_comfort(
    current: FloatArray,
    previous: FloatArray,
    time_offset: float,
    dt: float,
    bounds: ExtendedComfortBounds = ExtendedComfortBounds(),
) -> FloatArray:
    """EC of the current plan's simulated states against the previous frame's.

    Args:
        current: simulated states of the current frame's plan ``(..., T, n_state)``.
        previous: simulated states of the previous frame's plan ``(..., T, n_state)``.
        time_offset: start of the current plan minus start of the previous one [s], in (0, 0.55) (navsim's
            bound, open at both ends).
        dt: state spacing [s].
        bounds: RMS bounds.

    Raises:
        ValueError: if the offset is outside (0, 0.55) s.
    """
    if not 0.0 < time_offset < EC_MAX_OFFSET:
        raise ValueError(
            f"extended_comfort: frames must be more than 0 and less than {EC_MAX_OFFSET} s apart, "
            f"got {time_offset:.3f} s"
        )
    overlap = round(time_offset / dt)
    n = current.shape[-2]
    cur = _two_frame_signals(current[..., : n - overlap, :], dt)
    prev = _two_frame_signals(previous[..., overlap:, :], dt)
    limits = (bounds.max_accel_rms, bounds.max_jerk_rms, bounds.max_yaw_rate_rms, bounds.max_yaw_accel_rms)
    ok = np.ones(np.broadcast_shapes(current.shape[:-2], previous.shape[:-2]), dtype=bool)
    for c, p, limit in zip(cur, prev, limits, strict=True):
        ok &= np.sqrt(np.mean((c - p) ** 2, axis=-1)) <= limit
    return ok.astype(np.float64)
