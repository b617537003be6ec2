"""The driving score: leaderboard 2.x per-route and global scores, and Bench2Drive's success, efficiency, comfort.

Per route: ``driving score = max(RC x P, 0)`` on a 0..100 scale, RC the route completion [%] and P the product of
the infraction penalties (``irl_vla.envs.infractions``). Globally, DS, RC and P are each the mean over routes
(never mean(RC) x mean(P)), with their standard deviations; infractions per km divide each kind's count by the
driven distance ``sum(route length [km] x RC / 100)``, floored at 0.001 km.

Bench2Drive: success rate = share of routes completed (RC 100) with no infraction other than minimum speed;
efficiency = per route the mean of its checkpoint speed ratios (ego speed as % of the traffic's, ratios above
1000 % dropped), averaged over routes; comfort = per route the share of comfortable windows of ``comfort_window``
samples of the 10 Hz ego trace (the scorer's comfort signals and bounds), averaged over routes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from irl_vla.envs.env import TerminationReason
from irl_vla.envs.infractions import (
    MIN_SPEED_WEIGHT,
    OUTSIDE_LANES,
    STATISTICS_INFRACTION_KEYS,
    Infraction,
    InfractionKind,
)
from irl_vla.envs.trace import TraceIndex, check_trace
from irl_vla.scoring.comfort import is_comfortable
from irl_vla.scoring.states import StateIndex

#: Floor of the driven distance in infractions per km [km].
MIN_DRIVEN_KM = 0.001
#: Efficiency drops checkpoint ratios above this [%].
MAX_EFFICIENCY = 1000.0

_FAILURE: dict[TerminationReason, str] = {
    TerminationReason.ROUTE_DEVIATION: "Failed - Agent deviated from the route",
    TerminationReason.BLOCKED: "Failed - Agent got blocked",
    TerminationReason.ROUTE_TIMEOUT: "Failed - Agent timed out",
    TerminationReason.COLLISION: "Failed - Agent collided",
    TerminationReason.TIME_LIMIT: "Failed - Episode time limit",
    TerminationReason.USER_STOPPED: "Failed - Stopped by the user",
}


def outside_lanes_percentage(infractions: list[Infraction], driven_distance: float) -> float:
    """Off-road plus wrong-way distance as a percentage of the route distance driven [%], 0..100."""
    outside = sum(float(i.value or 0.0) for i in infractions if i.kind in OUTSIDE_LANES)
    if outside <= 0:
        return 0.0
    return float(min(100.0, 100.0 * outside / max(driven_distance, 1e-9)))


def penalty(infractions: list[Infraction], driven_distance: float, *, penalise_min_speed: bool = True) -> float:
    """The product of the leaderboard 2.x penalties of a route's infractions.

    Args:
        infractions: every infraction of the route.
        driven_distance: route distance covered [m] (route length x RC / 100), for the outside-lanes factor.
        penalise_min_speed: apply the minimum-speed factor (leaderboard 2.x); Bench2Drive records it only.
    """
    factor = 1.0
    for event in infractions:
        fixed = event.kind.penalty_factor
        if fixed is not None:
            factor *= fixed
        elif event.kind is InfractionKind.MIN_SPEED and penalise_min_speed:
            assert event.value is not None
            factor *= 1.0 - MIN_SPEED_WEIGHT * (1.0 - min(event.value, 100.0) / 100.0)
    return factor * (1.0 - outside_lanes_percentage(infractions, driven_distance) / 100.0)


def route_status(route_completion: float, infractions: list[Infraction], termination: TerminationReason | None) -> str:
    """The leaderboard's route status: ``Perfect``, ``Completed`` or ``Failed - <reason>``."""
    if route_completion >= 100.0:
        return "Perfect" if not infractions else "Completed"
    if termination is None:
        return "Failed"
    return _FAILURE.get(termination, "Failed")


def trace_states(trace: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The scorer's ego states ``(N, n_state)`` of an ego trace ``(N, len(TraceIndex))``."""
    trace = check_trace(trace, "ego trace")
    states = np.zeros((len(trace), len(StateIndex)))
    columns = {
        StateIndex.X: TraceIndex.X,
        StateIndex.Y: TraceIndex.Y,
        StateIndex.HEADING: TraceIndex.HEADING,
        StateIndex.VELOCITY_X: TraceIndex.VELOCITY_X,
        StateIndex.VELOCITY_Y: TraceIndex.VELOCITY_Y,
        StateIndex.ACCELERATION_X: TraceIndex.ACCELERATION_X,
        StateIndex.ACCELERATION_Y: TraceIndex.ACCELERATION_Y,
        StateIndex.ANGULAR_VELOCITY: TraceIndex.YAW_RATE,
    }
    for state_col, trace_col in columns.items():
        states[:, state_col] = trace[:, trace_col]
    if len(trace) > 1:
        states[:, StateIndex.ANGULAR_ACCELERATION] = np.gradient(
            trace[:, TraceIndex.YAW_RATE], trace[:, TraceIndex.TIME]
        )
    return states


def comfort_fraction(trace: npt.NDArray[np.float64], window: int = 20) -> float:
    """Share of the trace's consecutive ``window``-sample windows that are comfortable (1.0 with no full window).

    The samples are taken as evenly spaced at their mean interval.
    """
    states = trace_states(trace)
    count = len(states) // window
    if count == 0:
        return 1.0
    dt = float(np.mean(np.diff(trace[:, TraceIndex.TIME])))
    windows = states[: count * window].reshape(count, window, -1)  # (W, window, n_state)
    return float(np.mean(is_comfortable(windows, dt)))


def efficiency(checkpoint_ratios: npt.ArrayLike) -> float | None:
    """Mean checkpoint speed ratio [%] with ratios above 1000 % dropped; None without any."""
    ratios = np.asarray(checkpoint_ratios, dtype=np.float64)
    ratios = ratios[ratios <= MAX_EFFICIENCY]
    return float(ratios.mean()) if len(ratios) else None


@dataclass
class RouteResult:
    """The outcome of one route (one episode).

    Attributes:
        route_id: the route's name.
        repetition: index of the repetition of this route (``episodes=N`` drives each route N times).
        route_length: [m].
        route_completion: RC [%].
        infractions: every infraction, oldest first.
        termination: why the episode ended.
        duration_game: simulated time [s].
        duration_system: wall-clock time [s].
        penalty: product of the penalties.
        checkpoint_ratios: ego speed as % of the traffic's per checkpoint (efficiency).
        comfort: share of comfortable windows, 0..1.
        extra: further per-route values (e.g. mean rolling sub-scores, reward correlation) for the records.
    """

    route_id: str
    route_length: float
    route_completion: float
    infractions: list[Infraction]
    termination: TerminationReason | None
    duration_game: float
    duration_system: float
    penalty: float
    repetition: int = 0
    checkpoint_ratios: list[float] = field(default_factory=list)
    comfort: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def driving_score(self) -> float:
        """``max(RC x P, 0)`` on 0..100."""
        return max(self.route_completion * self.penalty, 0.0)

    @property
    def status(self) -> str:
        """The leaderboard status."""
        return route_status(self.route_completion, self.infractions, self.termination)

    @property
    def success(self) -> bool:
        """Bench2Drive success: completed with no infraction but minimum speed."""
        return self.route_completion >= 100.0 and all(i.kind is InfractionKind.MIN_SPEED for i in self.infractions)

    @property
    def driven_km(self) -> float:
        """Route distance driven [km]."""
        return self.route_length / 1000.0 * self.route_completion / 100.0

    @property
    def efficiency(self) -> float | None:
        """Mean checkpoint speed ratio [%]."""
        return efficiency(self.checkpoint_ratios)

    def counts(self) -> dict[str, int]:
        """Number of infractions per statistics key (every key present)."""
        out = dict.fromkeys(STATISTICS_INFRACTION_KEYS, 0)
        for event in self.infractions:
            out[event.kind.statistics_key] += 1
        return out


def score_route(
    route_id: str,
    route_length: float,
    route_completion: float,
    infractions: list[Infraction],
    termination: TerminationReason | None,
    *,
    duration_game: float = 0.0,
    duration_system: float = 0.0,
    repetition: int = 0,
    checkpoint_ratios: list[float] | None = None,
    comfort: float = 1.0,
    penalise_min_speed: bool = True,
) -> RouteResult:
    """A route's result from its completion and infractions (the penalty computed here)."""
    if not 0.0 <= route_completion <= 100.0:
        raise ValueError(f"route {route_id}: route completion {route_completion} is outside 0..100 %")
    driven = route_length * route_completion / 100.0
    return RouteResult(
        route_id=route_id,
        route_length=route_length,
        route_completion=route_completion,
        infractions=list(infractions),
        termination=termination,
        duration_game=duration_game,
        duration_system=duration_system,
        penalty=penalty(infractions, driven, penalise_min_speed=penalise_min_speed),
        repetition=repetition,
        checkpoint_ratios=list(checkpoint_ratios or []),
        comfort=comfort,
    )


@dataclass
class GlobalScore:
    """Scores over routes (means, with standard deviations across routes)."""

    num_routes: int
    driving_score: float
    route_completion: float
    penalty: float
    driving_score_std: float
    route_completion_std: float
    penalty_std: float
    success_rate: float
    efficiency: float | None
    comfort: float
    infractions_per_km: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


def global_score(results: list[RouteResult], expected_routes: int | None = None) -> GlobalScore:
    """Means over routes; ``expected_routes`` counts routes that did not run as 0 (Bench2Drive).

    Raises:
        ValueError: with no results, or fewer expected routes than results.
    """
    if not results:
        raise ValueError("global_score: no route results")
    n = len(results) if expected_routes is None else expected_routes
    if n < len(results):
        raise ValueError(f"global_score: {len(results)} results but only {n} expected routes")

    def padded(values: list[float]) -> npt.NDArray[np.float64]:
        return np.array(values + [0.0] * (n - len(values)))

    ds = padded([r.driving_score for r in results])
    rc = padded([r.route_completion for r in results])
    pen = padded([r.penalty for r in results])
    driven = max(sum(r.driven_km for r in results), MIN_DRIVEN_KM)
    totals = dict.fromkeys(STATISTICS_INFRACTION_KEYS, 0)
    for r in results:
        for key, count in r.counts().items():
            totals[key] += count
    effs = [e for e in (r.efficiency for r in results) if e is not None]
    return GlobalScore(
        num_routes=n,
        driving_score=float(ds.mean()),
        route_completion=float(rc.mean()),
        penalty=float(pen.mean()),
        driving_score_std=float(ds.std()),
        route_completion_std=float(rc.std()),
        penalty_std=float(pen.std()),
        success_rate=float(sum(r.success for r in results) / n),
        efficiency=float(np.mean(effs)) if effs else None,
        comfort=float(np.mean([r.comfort for r in results])),
        infractions_per_km={key: count / driven for key, count in totals.items()},
    )
