"""Anchoring a learned plan to the ego's current motion: a jerk-regularised polynomial fit.

A network's plan is a few poses; nothing makes its speed and acceleration at ``t = 0`` those the car has. The
scorer's tracker starts from the measured state, so a plan whose start disagrees with it is followed with a
transient, and two consecutive frames' plans, each off in its own way, disagree: extended comfort (EC)
compares exactly that (the RMS difference of acceleration, jerk, yaw rate and yaw acceleration over the
overlap). Anchoring refits the plan, per coordinate of the current frame, as a polynomial of time

    p(t) = p0 + p1 t + p2 t^2 + p3 t^3 + p4 t^4 + p5 t^5,

with ``x(0) = 0, x'(0) = vx, x''(0) = ax`` and ``y(0) = 0, y'(0) = vy, y''(0) = ay`` fixed by the ego status
and ``heading(0) = 0``, the free coefficients chosen by least squares to the plan's poses plus
``jerk_weight * integral_0^T |p'''(t)|^2 dt`` (the integral exact for polynomials). The fitted plan passes near
the network's poses but starts with the car's own velocity and acceleration and carries no pose-to-pose
wiggle; a plan already of that form with zero jerk (constant acceleration from the current state) is returned
unchanged.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import SE2Index

#: Degree of the fitted polynomials.
DEGREE = 5
#: Default weight of the integrated squared jerk in the refit [s^5] (the agent's and PPO's reward scoring's).
DEFAULT_JERK_WEIGHT = 1.0


def _jerk_gram(powers: list[int], horizon: float) -> npt.NDArray[np.float64]:
    """``G[i, j] = integral_0^T d3(t^p_i) d3(t^p_j) dt`` for the monomials ``t^p`` (zero for ``p < 3``)."""
    k = np.array([p * (p - 1) * (p - 2) for p in powers], dtype=np.float64)
    e = np.array([max(p - 3, 0) for p in powers], dtype=np.float64)
    expo = e[:, None] + e[None, :] + 1.0
    return np.outer(k, k) * horizon**expo / expo


def fit_polynomial(
    times: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    fixed: list[float],
    jerk_weight: float,
    degree: int = DEGREE,
) -> npt.NDArray[np.float64]:
    """Coefficients ``(degree + 1,)`` (constant first) of the jerk-regularised fit of ``values`` at ``times``.

    Args:
        times: sample times ``(T,)`` [s], positive.
        values: samples ``(T,)``.
        fixed: the first coefficients, held as given (value, derivative, half the second derivative at 0).
        jerk_weight: weight of the integrated squared third derivative over ``[0, max(times)]`` [s^5].
        degree: the polynomial's degree.

    Raises:
        ValueError: when more coefficients are fixed than the degree allows, or the weight is negative.
    """
    if len(fixed) > degree + 1:
        raise ValueError(f"fit_polynomial: {len(fixed)} fixed coefficients exceed degree {degree}")
    if jerk_weight < 0:
        raise ValueError(f"fit_polynomial: jerk_weight must be >= 0, got {jerk_weight}")
    powers = list(range(len(fixed), degree + 1))
    base = sum(c * times**i for i, c in enumerate(fixed))
    design = np.stack([times**p for p in powers], axis=1)  # (T, F)
    gram = design.T @ design + jerk_weight * _jerk_gram(powers, float(times.max()))
    free = np.linalg.lstsq(gram, design.T @ (values - base), rcond=None)[0]
    return np.concatenate([np.asarray(fixed, dtype=np.float64), free])


def anchor_plan(
    poses: npt.NDArray[np.floating],
    times: npt.NDArray[np.floating],
    velocity: npt.NDArray[np.floating],
    acceleration: npt.NDArray[np.floating],
    jerk_weight: float,
) -> npt.NDArray[np.float64]:
    """The plan ``(T, 3)`` [m, m, rad] refitted to start with the ego's velocity and acceleration.

    Args:
        poses: the plan's poses ``(T, 3)`` relative to the current rear axle, at ``times``.
        times: their times ``(T,)`` [s] after the current frame.
        velocity: the ego's (vx, vy) [m/s] in its frame.
        acceleration: the ego's (ax, ay) [m/s^2] in its frame.
        jerk_weight: weight of the jerk penalty [s^5] (0: an exact polynomial least-squares fit).

    Raises:
        ValueError: on misshapen or non-finite inputs.
    """
    poses = np.asarray(poses, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != len(SE2Index) or times.shape != poses.shape[:1]:
        raise ValueError(f"anchor_plan: poses (T, 3) and times (T,) expected, got {poses.shape} and {times.shape}")
    if not (np.isfinite(poses).all() and np.isfinite(velocity).all() and np.isfinite(acceleration).all()):
        raise ValueError("anchor_plan: non-finite plan or ego state")
    fixed = {
        SE2Index.X: [0.0, float(velocity[0]), float(acceleration[0]) / 2],
        SE2Index.Y: [0.0, float(velocity[1]), float(acceleration[1]) / 2],
        SE2Index.HEADING: [0.0],
    }
    poses = poses.copy()
    poses[:, SE2Index.HEADING] = np.unwrap(poses[:, SE2Index.HEADING])
    out = np.empty_like(poses)
    powers = np.arange(DEGREE + 1)
    for index, first in fixed.items():
        coefficients = fit_polynomial(times, poses[:, index], first, jerk_weight)
        out[:, index] = (times[:, None] ** powers) @ coefficients
    heading = out[:, SE2Index.HEADING]
    out[:, SE2Index.HEADING] = np.arctan2(np.sin(heading), np.cos(heading))
    return out
