"""``ClosedLoopEnv``: the gymnasium-style closed-loop simulator that every backend implements.

``reset(seed=, options=) -> (obs, info)`` and ``step(action) -> (obs, reward, terminated, truncated, info)`` as in
gymnasium. The observation is the agent's ``AgentInput`` (with the sensors its ``SensorConfig`` asks for, passed in
``options[ResetOption.SENSOR_CONFIG]``); the action is a ``Trajectory`` in the current ego frame (the backend's
controller tracks it until the next step) or, for ``ActionKind.CONTROLS``, one ``Controls`` held for the step.
``info`` is keyed by ``InfoKey`` (``irl_vla.envs.info``).

Optionally an env lists the infraction kinds it detects and reports itself in ``infraction_kinds`` (``InfractionKind``
values); the closed-loop runner then detects the others it can from the ego's motion, the map and the route. An env
without the attribute is taken to report every kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable

import numpy as np

from irl_vla.data.scene import AgentInput
from irl_vla.data.trajectory import Trajectory


class ActionKind(str, Enum):
    """What ``ClosedLoopEnv.step`` takes."""

    TRAJECTORY = "trajectory"  # a plan (``Trajectory``) tracked by the backend's controller until the next step
    CONTROLS = "controls"  # one ``Controls`` applied for the whole step


@dataclass(frozen=True)
class Controls:
    """Low-level controls of the ego (backend-neutral; the CARLA bridge maps them to throttle, brake, steer).

    Attributes:
        acceleration: longitudinal acceleration command [m/s^2] (negative brakes).
        steering_angle: front-wheel steering angle [rad], positive turns left (CCW).
    """

    acceleration: float
    steering_angle: float

    def __post_init__(self) -> None:
        for name in ("acceleration", "steering_angle"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise ValueError(f"Controls.{name}: expected a finite number, got {value!r}")


class ResetOption(str, Enum):
    """Keys of the ``options`` dict of ``ClosedLoopEnv.reset``."""

    ROUTE = "route"  # the route id to drive (a backend's route naming, e.g. ``<family>/<seed>`` or a route XML id)
    SENSOR_CONFIG = "sensor_config"  # the agent's ``SensorConfig``: the sensors every observation carries


class TerminationReason(str, Enum):
    """Why an episode ended (``InfoKey.TERMINATION``); the leaderboard status follows from it."""

    ROUTE_COMPLETED = "route_completed"  # RC reached 100 % (leaderboard rule: > 99 % and within 10 m of the end)
    COLLISION = "collision"  # a collision that the backend's settings make final (``terminate_on_collision``)
    ROUTE_DEVIATION = "route_deviation"  # "Agent deviated from the route"
    BLOCKED = "blocked"  # "Agent got blocked"
    ROUTE_TIMEOUT = "route_timeout"  # "Agent timed out": the route's time budget ran out
    TIME_LIMIT = "time_limit"  # the episode's step limit (gymnasium truncation, not a route failure rule)
    USER_STOPPED = "user_stopped"  # the viewer's user quit


@runtime_checkable
class ClosedLoopEnv(Protocol):
    """A closed-loop driving simulator (embedded world, CARLA, or a test fake).

    Attributes:
        action_kind: whether ``step`` takes a ``Trajectory`` or ``Controls``.
        step_interval: simulated time per ``step`` [s] (the policy's replanning interval, e.g. 0.5).
    """

    action_kind: ActionKind
    step_interval: float

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[AgentInput, dict[str, Any]]:
        """Start an episode on ``options[ResetOption.ROUTE]``.

        The reset ``info`` holds at least ``InfoKey.ROUTE``, ``InfoKey.MAP``, ``InfoKey.FRAME`` and
        ``InfoKey.TIME``.

        Raises:
            ValueError: naming the route when the backend has no such route.
        """
        ...

    def step(self, action: Trajectory | Controls) -> tuple[AgentInput, float, bool, bool, dict[str, Any]]:
        """Advance by ``step_interval``: ``(obs, reward, terminated, truncated, info)``.

        ``info`` holds at least ``InfoKey.FRAME``, ``InfoKey.TIME``, ``InfoKey.EGO_TRACE``,
        ``InfoKey.INFRACTIONS`` (new this step), ``InfoKey.ROUTE_COMPLETION`` and, when the episode ends,
        ``InfoKey.TERMINATION``. ``reward`` is the backend's own scalar; the runner does not rely on it.
        """
        ...

    def close(self) -> None:
        """Release the backend's resources (server connections, spawned actors, windows)."""
        ...
