"""The compiled loops (numba, CPU) of the free ego: its plan's reference, the tracker's fit, LQR and bicycle.

``ego_control.FreeEgo`` tracks one plan at a time with the scorer's arithmetic (``irl_vla.scoring``:
``plans_to_reference``, ``lqr.fit_speed_and_curvature``, ``BatchLQRTracker``, ``bicycle.propagate``), which is
written for batches of candidates: for the one plan of a closed-loop ego its numpy calls cost far more than their
arithmetic. The same arithmetic, for one plan and one state, in the order of the numpy code it replaces:

* ``reference_poses``: the plan composed with the origin, the origin prepended at t = 0, interpolated at 10 Hz;
* ``fit_profiles``: the speed and curvature profiles of a reference (regularised least squares, the speed fit's
  constant gain given);
* ``advance_state``: the LQR commands at one iteration and one step of the kinematic bicycle.

They equal the scorer's within float tolerance (matrix products and sums may add in another order):
``tests/sim_bridges/embedded/test_ego_kernels.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from irl_vla.data.enums import SE2Index
from irl_vla.scoring.states import StateIndex

X, Y, H = int(SE2Index.X), int(SE2Index.Y), int(SE2Index.HEADING)
SX, SY, SH = int(StateIndex.X), int(StateIndex.Y), int(StateIndex.HEADING)
SV, SA = int(StateIndex.VELOCITY_X), int(StateIndex.ACCELERATION_X)
SD, SDR = int(StateIndex.STEERING_ANGLE), int(StateIndex.STEERING_RATE)
SW, SWA = int(StateIndex.ANGULAR_VELOCITY), int(StateIndex.ANGULAR_ACCELERATION)


@njit(cache=True)
def _wrap(angle: float) -> float:
    """``geometry.wrap_angle`` of one angle [rad]: into ``[-pi, pi)``."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


@njit(cache=True)
def reference_poses(plan: np.ndarray, times: np.ndarray, origin: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``plans_to_reference`` of one plan: global reference poses ``(Q, 3)``.

    Args:
        plan: relative poses ``(T, 3)``.
        times: their times with 0 first ``(T + 1,)`` [s], strictly increasing.
        origin: global rear-axle pose ``(3,)`` the plan is relative to (and the pose at t = 0).
        query: sample times ``(Q,)`` [s] (held at the ends).
    """
    t = plan.shape[0]
    poses = np.empty((t + 1, 3))
    poses[0, X], poses[0, Y], poses[0, H] = origin[X], origin[Y], origin[H]
    cos, sin = math.cos(origin[H]), math.sin(origin[H])
    for k in range(t):  # ``geometry.compose``
        poses[k + 1, X] = origin[X] + cos * plan[k, X] - sin * plan[k, Y]
        poses[k + 1, Y] = origin[Y] + sin * plan[k, X] + cos * plan[k, Y]
        poses[k + 1, H] = _wrap(origin[H] + plan[k, H])
    out = np.empty((query.shape[0], 3))
    for q in range(query.shape[0]):  # ``geometry.interpolate_poses``
        at = min(max(query[q], times[0]), times[t])
        upper = min(max(np.searchsorted(times, at, side="right"), 1), t)
        lower = upper - 1
        alpha = (at - times[lower]) / (times[upper] - times[lower])
        for c in (X, Y):
            out[q, c] = poses[lower, c] + alpha * (poses[upper, c] - poses[lower, c])
        dh = _wrap(poses[upper, H] - poses[lower, H])
        out[q, H] = _wrap(poses[lower, H] + alpha * dh)
    return out


@njit(cache=True)
def fit_profiles(
    reference: np.ndarray, dt: float, c: np.ndarray, gain: np.ndarray, regulariser: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``lqr.fit_speed_and_curvature`` of one reference ``(N + 1, 3)``: speed and curvature profiles ``(N,)``.

    The speed fit is the scorer's products. The curvature fit uses the integration matrix's structure
    (``c[i, j] = c[j, j]`` for ``j <= i``, 0 above: ``integration_matrix_is_cumulative``): its normal equations
    ``lhs[j, l] = c[j, j] c[l, l] sum_{i >= max(j, l)} w_i^2`` (``w = speed dt``) are built from suffix sums in
    ``O(N^2)`` instead of a product of ``(N, N)`` matrices, and solved by Cholesky (``lhs`` is symmetric positive
    definite) instead of LU; the curvatures are prefix sums. The same fit in another order of arithmetic: within
    about 4e-15 of the products and LU on random references, and the tracker equals the scorer's within 1e-9
    (``tests/sim_bridges/embedded/test_ego_kernels.py``).

    Args:
        reference: reference poses every ``dt`` [s] ``(N + 1, 3)``.
        dt: their interval [s].
        c: the integration matrix ``(N, N)`` (``lqr.speed_fit_matrices``).
        gain: the speed fit's constant gain ``(N, N)`` (same).
        regulariser: the curvature fit's diagonal ``(N,)`` (initial curvature, curvature rates).
    """
    n = reference.shape[0] - 1
    along = np.empty(n)
    dh = np.empty(n)
    for k in range(n):
        h = reference[k, H]
        along[k] = dt * (
            math.cos(h) * (reference[k + 1, X] - reference[k, X])
            + math.sin(h) * (reference[k + 1, Y] - reference[k, Y])
        )
        dh[k] = _wrap(reference[k + 1, H] - h)
    speed = np.dot(np.dot(np.dot(along, c), gain), c.T)
    # Suffix sums of w_i^2 and of w_i dh_i, then the normal equations (their lower triangle).
    tail = np.empty(n)
    rhs = np.empty(n)
    w2 = wdh = 0.0
    for i in range(n - 1, -1, -1):
        w = speed[i] * dt
        w2 += w * w
        wdh += w * dh[i]
        tail[i] = w2
        rhs[i] = c[i, i] * wdh
    lhs = np.empty((n, n))
    for j in range(n):
        for i in range(j, n):
            lhs[i, j] = c[i, i] * c[j, j] * tail[i]
        lhs[j, j] += regulariser[j]
    # Cholesky factor L (lower triangle of lhs, in place), then L y = rhs and L^T z = y.
    for j in range(n):
        d = lhs[j, j]
        for k in range(j):
            d -= lhs[j, k] * lhs[j, k]
        d = math.sqrt(d)
        lhs[j, j] = d
        for i in range(j + 1, n):
            e = lhs[i, j]
            for k in range(j):
                e -= lhs[i, k] * lhs[j, k]
            lhs[i, j] = e / d
    z = np.empty(n)
    for i in range(n):
        e = rhs[i]
        for k in range(i):
            e -= lhs[i, k] * z[k]
        z[i] = e / lhs[i, i]
    for i in range(n - 1, -1, -1):
        e = z[i]
        for k in range(i + 1, n):
            e -= lhs[k, i] * z[k]
        z[i] = e / lhs[i, i]
    curvature = np.empty(n)
    total = 0.0
    for i in range(n):  # ``z @ c.T``: curvature_i = sum_{j <= i} c[j, j] z_j
        total += c[i, i] * z[i]
        curvature[i] = total
    return speed, curvature


def integration_matrix_is_cumulative(c: np.ndarray) -> bool:
    """Whether ``c`` ``(N, N)`` is lower triangular with each column constant below the diagonal (``fit_profiles``)."""
    columns = np.broadcast_to(np.diag(c), c.shape)
    return bool(np.array_equal(c, np.where(np.tril(np.ones(c.shape, dtype=bool)), columns, 0.0)))


@njit(cache=True)
def advance_state(
    state: np.ndarray,
    iteration: int,
    reference: np.ndarray,
    speed: np.ndarray,
    curvature: np.ndarray,
    tracker: np.ndarray,
    bicycle: np.ndarray,
) -> np.ndarray:
    """``BatchLQRTracker``'s commands at ``iteration`` for one ``state``, then one ``bicycle.propagate`` step.

    Args:
        state: rear-axle state ``(n_state,)`` (``StateIndex``).
        iteration: the reference index the tracker is at.
        reference: reference poses ``(N + 1, 3)``.
        speed: its fitted speed profile ``(N,)`` [m/s].
        curvature: its fitted curvature profile ``(N,)`` [1/m].
        tracker: ``(dt, horizon, q_longitudinal, r_longitudinal, q_lateral x3, r_lateral, stopping gain,
            stopping velocity, wheel base)``.
        bicycle: ``(accel time constant, steering-angle time constant, max steering angle)``.

    Returns:
        The next state ``(n_state,)`` (the speed as the bicycle gives it: the caller clamps reversing).
    """
    dt, horizon = tracker[0], int(tracker[1])
    q_lon, r_lon, q0, q1, q2, r_lat = tracker[2], tracker[3], tracker[4], tracker[5], tracker[6], tracker[7]
    stop_gain, stop_speed, wb = tracker[8], tracker[9], tracker[10]
    n = speed.shape[0]
    ref_x, ref_y, ref_h = reference[iteration, X], reference[iteration, Y], reference[iteration, H]
    dx, dy = state[SX] - ref_x, state[SY] - ref_y
    lateral = -dx * math.sin(ref_h) + dy * math.cos(ref_h)
    heading = _wrap(state[SH] - ref_h)
    velocity = state[SV]
    ref_speed = speed[min(iteration + horizon, n - 1)]
    # longitudinal
    b_lon = horizon * dt
    accel = -(b_lon * q_lon * (velocity - ref_speed)) / (b_lon * q_lon * b_lon + r_lon)
    stopping = ref_speed <= stop_speed and velocity <= stop_speed
    if stopping:
        accel = -stop_gain * (velocity - ref_speed)
    # lateral (``BatchLQRTracker._lateral``): free and input responses over the horizon
    steer = state[SD]
    cum_dh = cum_dbh = e_sum = be = bh = 0.0
    for i in range(horizon):
        vdt = (velocity + dt * accel * i) * dt
        dh = vdt * (steer / wb - curvature[min(iteration + i, n - 1)])
        e_sum += vdt * (heading + cum_dh)  # heading at the start of step i
        cum_dh += dh
        dbh = vdt / wb * (dt * i)
        be += vdt * cum_dbh
        cum_dbh += dbh
        bh += dbh
    e = lateral + e_sum
    h = _wrap(heading + cum_dh)
    bd = dt * horizon
    num = q0 * be * e + q1 * bh * h + q2 * bd * steer
    den = q0 * be * be + q1 * bh * bh + q2 * bd * bd + r_lat
    steering_rate = 0.0 if stopping else -num / den
    # kinematic bicycle with actuator lag (``bicycle.propagate``)
    lag_a, lag_d, max_steer = bicycle[0], bicycle[1], bicycle[2]
    new_accel = state[SA] + dt / (dt + lag_a) * (accel - state[SA])
    ideal = steer + dt * steering_rate
    lagged = steer + dt / (dt + lag_d) * (ideal - steer)
    rate = (lagged - steer) / dt
    v, hd = state[SV], state[SH]
    nxt = np.zeros_like(state)
    nxt[SX] = state[SX] + dt * v * math.cos(hd)
    nxt[SY] = state[SY] + dt * v * math.sin(hd)
    nxt[SH] = _wrap(hd + dt * v * math.tan(steer) / wb)
    nxt[SV] = v + dt * new_accel
    nxt[SA] = new_accel
    nxt[SD] = min(max(steer + dt * rate, -max_steer), max_steer)
    nxt[SDR] = rate
    nxt[SW] = nxt[SV] * math.tan(nxt[SD]) / wb
    nxt[SWA] = (nxt[SW] - state[SW]) / dt
    return nxt
