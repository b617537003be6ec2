"""A free ego for closed loop: a kinematic bicycle driven by the scorer's LQR tracker along the agent's plan.

The expert ego of the logs rides its route path (IDM and ``expert.plan_lateral``); a ``FreeEgo`` instead carries a
rear-axle state (``irl_vla.scoring.states.StateIndex``) that ``irl_vla.scoring.bicycle.propagate`` advances at the
world's 10 Hz, with commands from ``irl_vla.scoring.lqr.BatchLQRTracker`` tracking the last plan (resampled to
0.1 s by ``irl_vla.scoring.simulation.plans_to_reference``, exactly as the scorer simulates a plan), or from raw
``Controls``. It stays a ``RoadUser``, so traffic, people and the junction logic see it as they see the expert: its
box-centre ``pose``, ``speed`` and ``accel``; its ``s`` and ``lateral`` are its centre projected on the route path
(what the language labels and the audit read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from irl_vla.data.enums import SE2Index
from irl_vla.data.trajectory import Trajectory, TrajectorySampling
from irl_vla.data.vehicle import PACIFICA
from irl_vla.scoring.bicycle import propagate
from irl_vla.scoring.lqr import INITIAL_CURVATURE_PENALTY, BatchLQRTracker, speed_fit_matrices
from irl_vla.scoring.simulation import SimulationConfig, check_plans, plans_to_reference
from irl_vla.scoring.states import POSE, FloatArray, StateIndex
from sim_bridges.embedded.road_users import RoadUser, road_user_fields

#: Arc-length window [m] (behind, ahead of the last ``s``) searched when projecting the ego on its route path.
PROJECTION_WINDOW = (15.0, 30.0)


def plan_steps(config: SimulationConfig) -> int:
    """Controller steps a plan covers (40 at 10 Hz over 4 s): a plan must be replaced within this many steps."""
    return config.num_states - 1


class PlanTracker:
    """The LQR tracker of one plan, stepped once per world step.

    Args:
        plan: the plan, relative to the rear-axle pose ``origin``.
        origin: global rear-axle pose ``(3,)`` the plan was made at.
        config: the scorer's simulation constants (tracker, bicycle, 10 Hz sampling).
        where: what error messages name.
        compiled: resample, fit and track in the compiled loops of ``ego_kernels`` (the scorer's arithmetic for
            one plan, equal within float tolerance); else with the scorer's batched numpy code itself.

    Raises:
        ValueError: naming ``where`` on a plan with non-finite or implausible poses.
    """

    def __init__(
        self, plan: Trajectory, origin: FloatArray, config: SimulationConfig, where: str, compiled: bool = True
    ) -> None:
        poses = check_plans(np.asarray(plan.poses, dtype=np.float64)[None], plan.trajectory_sampling, where)
        self.config = config
        self.iteration = 0
        self.last = plan_steps(config) - 1
        self.tracker: BatchLQRTracker | None = None
        if not compiled:
            self.reference = plans_to_reference(poses, plan.trajectory_sampling, origin, config)  # (1, N + 1, 3)
            self.tracker = BatchLQRTracker(self.reference, config.tracker)
            return
        from sim_bridges.embedded.ego_kernels import fit_profiles, reference_poses  # compiled: numba when driven

        times, query, c, gain, regulariser, self._tracker_row, self._bicycle_row = _constants(
            config, plan.trajectory_sampling
        )
        self.reference = reference_poses(poses[0], times, np.ascontiguousarray(origin, dtype=np.float64), query)[None]
        self.speed, self.curvature = fit_profiles(self.reference[0], config.dt, c, gain, regulariser)

    def commands(self, state: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Acceleration [m/s^2] and steering rate [rad/s] ``(1,)`` for the rear-axle ``state`` ``(n_state,)``.

        The scorer's tracker (a tracker made with ``compiled=False``).
        """
        assert self.tracker is not None, "PlanTracker.commands: a compiled tracker steps with next_state"
        accel, steering_rate = self.tracker(min(self.iteration, self.last), state[None])
        self.iteration += 1
        return accel, steering_rate

    def next_state(self, state: FloatArray, dt: float) -> FloatArray:
        """The rear-axle state ``(n_state,)`` one step of ``dt`` [s] after ``state``, under the tracker's commands."""
        if self.tracker is not None:
            accel, steering_rate = self.commands(state)
            return propagate(state[None], accel, steering_rate, dt, PACIFICA, self.config.bicycle)[0]
        from sim_bridges.embedded.ego_kernels import advance_state

        if abs(dt - self.config.dt) > 1e-12:
            raise ValueError(f"PlanTracker: steps of {dt} s, the tracker's are {self.config.dt} s")
        iteration = min(self.iteration, self.last)
        self.iteration += 1
        return advance_state(
            np.ascontiguousarray(state, dtype=np.float64), iteration, self.reference[0], self.speed, self.curvature,
            self._tracker_row, self._bicycle_row,
        )  # fmt: skip


@lru_cache(maxsize=8)
def _constants(
    config: SimulationConfig, sampling: TrajectorySampling
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """What the compiled tracker reads that depends only on the configuration.

    Plan times with 0 first, query times, the speed fit's matrices, the curvature fit's regulariser, the tracker's
    and the bicycle's constants as rows (``ego_kernels.advance_state``).
    """
    t, n = config.tracker, config.num_states - 1
    times = np.concatenate([[0.0], sampling.times])
    query = np.arange(config.num_states) * config.dt
    c, gain = speed_fit_matrices(n, config.dt, t.jerk_penalty, t.jerk_penalty_matrix)
    from sim_bridges.embedded.ego_kernels import integration_matrix_is_cumulative

    if not integration_matrix_is_cumulative(c):
        raise ValueError("PlanTracker: the speed fit's integration matrix is not the cumulative one fit_profiles reads")
    regulariser = np.r_[INITIAL_CURVATURE_PENALTY, np.full(n - 1, t.curvature_rate_penalty)]
    tracker = np.array(
        [t.discretization_time, t.tracking_horizon, t.q_longitudinal, t.r_longitudinal, *t.q_lateral, t.r_lateral,
         t.stopping_proportional_gain, t.stopping_velocity, PACIFICA.wheel_base]
    )  # fmt: skip
    b = config.bicycle
    bicycle = np.array([b.accel_time_constant, b.steering_angle_time_constant, b.max_steering_angle])
    return times, query, np.ascontiguousarray(c), np.ascontiguousarray(gain), regulariser, tracker, bicycle


@dataclass(eq=False)
class FreeEgo(RoadUser):
    """The ego as a kinematic bicycle (rear-axle ``state``) driven by a plan or by controls.

    Attributes:
        state: rear-axle state ``(n_state,)`` (``StateIndex``), global frame.
        config: the scorer's simulation constants.
        tracker: the plan being tracked, if driven by plans.
        controls: ``(acceleration [m/s^2], steering angle [rad])`` held, if driven by controls.
        compiled: track plans with the compiled loops (``PlanTracker``'s ``compiled``).
    """

    state: FloatArray = field(default_factory=lambda: np.zeros(len(StateIndex)))
    config: SimulationConfig = field(default_factory=SimulationConfig)
    tracker: PlanTracker | None = None
    controls: tuple[float, float] | None = None
    compiled: bool = True

    @classmethod
    def take_over(cls, expert: RoadUser, config: SimulationConfig) -> FreeEgo:
        """A free ego in the expert's place: same box, route path, stops and lanes, its pose, speed and curvature."""
        fields = road_user_fields(expert)
        fields.update(manoeuvre=None, expert=False, speed_schedule=[], hold_s=np.inf)
        ego = cls(**fields, config=config)  # type: ignore[arg-type]
        state = np.zeros(len(StateIndex))
        state[POSE] = PACIFICA.rear_axle_from_center(expert.pose)
        state[StateIndex.VELOCITY_X] = expert.speed
        state[StateIndex.ACCELERATION_X] = expert.accel
        state[StateIndex.STEERING_ANGLE] = math.atan(PACIFICA.wheel_base * expert.curvature())
        ego.state = state
        ego.sync()
        return ego

    @property
    def pose(self) -> FloatArray:
        """(x, y, heading) of the box centre [m, rad], from the rear-axle state.

        Kept until ``state`` is replaced (``advance`` replaces it; it is never changed in place).
        """
        state = self.state
        cached = self.__dict__.get("_centre")
        if cached is None or cached[0] is not state:
            cached = self.__dict__["_centre"] = (state, PACIFICA.center_from_rear_axle(state[POSE]))
        return cached[1].copy()

    @property
    def rear_axle(self) -> FloatArray:
        """Global rear-axle pose ``(3,)``."""
        return self.state[POSE].copy()

    def curvature(self) -> float:
        """Curvature [1/m] of the motion: ``tan(steering angle) / wheel base``."""
        return float(math.tan(self.state[StateIndex.STEERING_ANGLE]) / PACIFICA.wheel_base)

    def follow(self, plan: Trajectory, where: str) -> None:
        """Track ``plan`` (relative to the current rear-axle pose) from now on."""
        self.tracker = PlanTracker(plan, self.rear_axle, self.config, where, self.compiled)
        self.controls = None

    def hold(self, acceleration: float, steering_angle: float) -> None:
        """Apply ``acceleration`` [m/s^2] and steer towards ``steering_angle`` [rad] from now on."""
        self.controls = (float(acceleration), float(steering_angle))
        self.tracker = None

    def advance(self, dt: float) -> None:
        """One step of ``dt`` [s] (``World.ego_controller``): commands, bicycle, then the projection on the path.

        Raises:
            RuntimeError: when neither a plan nor controls were given.
        """
        if self.tracker is not None:
            nxt = self.tracker.next_state(self.state, dt)
        elif self.controls is not None:
            limit = self.config.bicycle.max_steering_angle
            target = float(np.clip(self.controls[1], -limit, limit))
            accel = np.array([self.controls[0]])
            steering_rate = np.array([(target - self.state[StateIndex.STEERING_ANGLE]) / dt])
            nxt = propagate(self.state[None], accel, steering_rate, dt, PACIFICA, self.config.bicycle)[0]
        else:
            raise RuntimeError(f"{self.track_token}: the free ego has neither a plan nor controls to follow")
        if nxt[StateIndex.VELOCITY_X] < 0.0:  # brakes stop the car, they do not drive it backwards
            nxt[StateIndex.VELOCITY_X] = 0.0
        self.state = nxt
        self.sync()

    def sync(self) -> None:
        """Update ``speed``, ``accel``, ``s`` and ``lateral`` from the state."""
        self.speed = float(self.state[StateIndex.VELOCITY_X])
        self.accel = float(self.state[StateIndex.ACCELERATION_X])
        from sim_bridges.embedded.road_user_kernels import project_on_path  # compiled: numba only when driven

        pose = self.pose
        x, y = float(pose[SE2Index.X]), float(pose[SE2Index.Y])
        lo, hi = self.s - PROJECTION_WINDOW[0], self.s + PROJECTION_WINDOW[1]
        self.s, self.lateral = project_on_path(self.path, x, y, lo, hi)  # ``Path.project``, compiled
