"""Plans to simulated ego states: global frame, 10 Hz resampling, LQR tracking and bicycle propagation.

``reference/navsim.md`` §1.1-1.3: a plan's relative poses are composed with the initial rear-axle pose, the
initial pose is prepended at t = 0, the sequence is interpolated at 0.1 s over 4 s (41 states, a shorter plan
held at its last pose), and a tracker drives the kinematic bicycle along it for 40 steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import interpolate_poses, relative_to_absolute
from irl_vla.data.trajectory import TrajectorySampling
from irl_vla.data.vehicle import PACIFICA, VehicleParameters
from irl_vla.scoring.bicycle import BicycleConfig, propagate
from irl_vla.scoring.lqr import BatchLQRTracker, TrackerConfig
from irl_vla.scoring.states import POSE, FloatArray

#: The scoring sampling: 40 steps of 0.1 s after the initial state (41 states).
SCORING_SAMPLING = TrajectorySampling(num_poses=40, interval_length=0.1)
#: Plans are refused beyond this distance [m] and heading [rad] from the current ego pose: huge finite values
#: (1e30) are as invalid as NaN.
MAX_PLAN_DISTANCE = 1e4
MAX_PLAN_HEADING = 1e3


@dataclass(frozen=True)
class SimulationConfig:
    """Sampling and model constants of the ego simulation."""

    sampling: TrajectorySampling = SCORING_SAMPLING
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    bicycle: BicycleConfig = field(default_factory=BicycleConfig)

    @property
    def num_states(self) -> int:
        """States per simulated trajectory, the initial one included."""
        assert self.sampling.num_poses is not None
        return self.sampling.num_poses + 1

    @property
    def dt(self) -> float:
        """Simulation step [s]."""
        assert self.sampling.interval_length is not None
        return self.sampling.interval_length


def check_plans(poses: FloatArray, sampling: TrajectorySampling, where: str) -> FloatArray:
    """Validate relative plan poses ``(K, T, 3)`` against their sampling.

    Raises:
        ValueError: naming ``where`` (e.g. the scene token) on a wrong shape, non-finite values or values beyond
            ``MAX_PLAN_DISTANCE`` / ``MAX_PLAN_HEADING``.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (sampling.num_poses, len(SE2Index)):
        raise ValueError(
            f"{where}: expected plans of shape (K, {sampling.num_poses}, 3) for sampling {sampling}, got {poses.shape}"
        )
    bad = ~np.isfinite(poses)
    if bad.any():
        k, t, c = np.argwhere(bad)[0]
        raise ValueError(f"{where}: plan {k} pose {t} has a non-finite {SE2Index(c).name.lower()} ({poses[k, t, c]})")
    limits = np.array([MAX_PLAN_DISTANCE, MAX_PLAN_DISTANCE, MAX_PLAN_HEADING])  # by SE2Index
    huge = np.abs(poses) > limits
    if huge.any():
        k, t, c = np.argwhere(huge)[0]
        unit = "rad" if c == SE2Index.HEADING else "m"
        raise ValueError(
            f"{where}: plan {k} pose {t} has an implausible {SE2Index(c).name.lower()} ({poses[k, t, c]:g}; "
            f"beyond +-{limits[c]:g} {unit} of the current ego pose)"
        )
    return poses


def plans_to_reference(
    poses: FloatArray,
    sampling: TrajectorySampling,
    origin: FloatArray,
    config: SimulationConfig = SimulationConfig(),
    start: FloatArray | None = None,
) -> FloatArray:
    """Global reference poses ``(K, NUM_STEPS, 3)`` of relative plans ``(K, T, 3)`` started at rear-axle ``origin``.

    ``start`` ``(3,)``, relative like the plans, replaces ``origin`` as the pose at t = 0 (PDM-Closed's plan starts
    at the ego projected on its path).
    """
    k = len(poses)
    absolute = relative_to_absolute(poses, origin[None, None])  # (K, T, 3)
    first = origin if start is None else relative_to_absolute(np.asarray(start, dtype=np.float64), origin)
    with_start = np.concatenate([np.broadcast_to(first, (k, 1, 3)), absolute], axis=1)  # (K, T+1, 3)
    times = np.concatenate([[0.0], sampling.times])
    query = np.arange(config.num_states) * config.dt
    return interpolate_poses(times, with_start, query)


def simulate(
    reference: FloatArray,
    initial: FloatArray,
    config: SimulationConfig = SimulationConfig(),
    vehicle: VehicleParameters = PACIFICA,
) -> FloatArray:
    """Track references ``(K, T, 3)`` from the initial state ``(n_state,)``; returns states ``(K, T, n_state)``."""
    k, n, _ = reference.shape
    tracker = BatchLQRTracker(reference, config.tracker, vehicle)
    states = np.zeros((k, n, len(initial)))
    states[:, 0] = initial
    for i in range(n - 1):
        accel, steering_rate = tracker(i, states[:, i])
        states[:, i + 1] = propagate(states[:, i], accel, steering_rate, config.dt, vehicle, config.bicycle)
    return states


def simulate_plans(
    poses: FloatArray,
    sampling: TrajectorySampling,
    initial: FloatArray,
    config: SimulationConfig = SimulationConfig(),
    *,
    where: str = "plans",
    start: FloatArray | None = None,
) -> FloatArray:
    """Validate, resample and simulate relative plans ``(K, T, 3)`` from the initial state ``(n_state,)``.

    Args:
        poses: relative plans ``(K, T, 3)``.
        sampling: their time sampling.
        initial: the ego's initial state ``(n_state,)``.
        config: simulation constants.
        where: what error messages name (e.g. the scene token).
        start: the plans' relative pose at t = 0 ``(3,)`` when it is not the ego's (``plans_to_reference``).

    Returns:
        Simulated states ``(K, NUM_STEPS, n_state)``.
    """
    poses = check_plans(poses, sampling, where)
    return simulate(plans_to_reference(poses, sampling, initial[POSE], config, start), initial, config)
