"""Exact rewrites of shared simulation and comfort steps: the closed-form lateral LQR, the Savitzky-Golay matrices."""

from __future__ import annotations

import numpy as np

from irl_vla.data.geometry import wrap_angle
from irl_vla.scoring.lqr import BatchLQRTracker


def _stepped(tracker: BatchLQRTracker, lat, head, steer, speeds, curvature):
    """x_{i+1} = A_i x_i + B u + g_i stepped H times (free response and unit-input response), then the LQR gain."""
    dt, wb = tracker.config.discretization_time, tracker.vehicle.wheel_base
    e, h, d = lat.copy(), head.copy(), steer.copy()
    be, bh, bd = np.zeros_like(lat), np.zeros_like(lat), np.zeros_like(lat)
    for i in range(speeds.shape[1]):
        v = speeds[:, i]
        e, h = e + v * dt * h, h + v * dt / wb * d - v * curvature[:, i] * dt
        be, bh, bd = be + v * dt * bh, bh + v * dt / wb * bd, bd + dt
    h = wrap_angle(h)
    q = tracker.config.q_lateral
    num = q[0] * be * e + q[1] * bh * h + q[2] * bd * d
    den = q[0] * be * be + q[1] * bh * bh + q[2] * bd * bd + tracker.config.r_lateral
    return -num / den


def test_closed_form_lateral_lqr_equals_stepping() -> None:
    rng = np.random.default_rng(0)
    reference = np.cumsum(rng.uniform(0.0, 1.0, (5, 41, 3)) * [1.0, 0.1, 0.01], axis=1)
    tracker = BatchLQRTracker(reference)
    for k in (1, 7, 64):
        lat, head, steer = rng.normal(0.0, [[1.0], [0.3], [0.2]], (3, k))
        speeds = rng.uniform(0.0, 20.0, (k, tracker.config.tracking_horizon))
        curvature = rng.normal(0.0, 0.05, (k, tracker.config.tracking_horizon))
        np.testing.assert_allclose(
            tracker._lateral(lat, head, steer, speeds, curvature),
            _stepped(tracker, lat, head, steer, speeds, curvature),
            rtol=1e-9,
            atol=1e-12,
        )


def test_savitzky_golay_matrices_equal_scipy() -> None:
    from scipy.signal import savgol_filter

    from irl_vla.scoring.comfort import _savgol

    rng = np.random.default_rng(1)
    for n in (3, 5, 8, 14, 36, 41, 55):
        x = rng.normal(0.0, 3.0, (4, n))
        for window, poly, deriv in ((8, 2, 0), (15, 2, 1), (5, 2, 1), (5, 2, 2)):
            w = min(window, n)
            p = min(poly, w - 1)
            expected = savgol_filter(x, w, p, deriv=deriv, delta=0.1, axis=-1, mode="interp")
            np.testing.assert_allclose(_savgol(x, window, poly, deriv, 0.1), expected, rtol=1e-9, atol=1e-9)
