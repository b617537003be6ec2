"""The route rules: route deviation, blocked, route timeout and minimum speed.

- Route deviation: the nearest route point within a window ahead of the last passed one is ``deviation_max``
  or farther away, or the route distance covered while ``deviation_max / 2`` or farther exceeds
  ``deviation_fraction`` of the route. Ends the route.
- Blocked: slower than ``stopped_speed`` for longer than ``blocked_time``. Ends the route.
- Route timeout: the budget starts at ``timeout_initial`` and grows by ``d / (timeout_speed_fraction x speed
  limit)`` for every route distance ``d`` newly covered (the default speed limit where the tick has none).
  Ends the route.
- Minimum speed: the route is cut into ``min_speed_checkpoints`` equal parts; at each checkpoint passed,
  ``p = 100 x mean(ego speed) / mean(traffic speed)`` over the ticks since the last one (100 without traffic); an
  infraction with value ``p`` when ``p < 100``. The last checkpoint is forced at the end if the route ended past
  ``min_speed_final`` %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.envs.infractions import Infraction, InfractionKind
from irl_vla.envs.route import RouteProgress
from irl_vla.envs.tick import Tick


@dataclass
class RouteDeviationDetector:
    """Ends the route when the ego leaves it."""

    window: int = 5
    deviation_max: float = 30.0
    deviation_fraction: float = 0.3

    def __post_init__(self) -> None:
        self._far_distance = 0.0
        self._raised = False

    def update(self, tick: Tick, progress: RouteProgress, route_distance: float) -> list[Infraction]:
        """The deviation at this tick, if any (raised once)."""
        if self._raised:
            return []
        points = progress.route.points
        x, y = float(tick.ego_pose[0]), float(tick.ego_pose[1])
        stop = min(progress.index + self.window + 1, len(points))
        gap = min(math.hypot(x - p[0], y - p[1]) for p in points[progress.index : stop])
        if gap >= self.deviation_max / 2:
            self._far_distance += route_distance
        too_far = gap >= self.deviation_max
        if not too_far and self._far_distance <= self.deviation_fraction * progress.route.length:
            return []
        self._raised = True
        reason = (
            f"{gap:.1f} m from the route" if too_far else f"{self._far_distance:.1f} m of the route driven far off it"
        )
        return [
            Infraction(
                InfractionKind.ROUTE_DEVIATION,
                tick.time,
                tick.ego_xy,
                message=f"Agent deviated from the route ({reason}) at t={tick.time:.1f} s",
            )
        ]


@dataclass
class BlockedDetector:
    """Ends the route when the ego stands still too long."""

    blocked_time: float = 180.0
    stopped_speed: float = 0.1

    def __post_init__(self) -> None:
        self._since: float | None = None

    def update(self, tick: Tick) -> list[Infraction]:
        """The blocked event at this tick, if any."""
        if abs(tick.ego_speed) >= self.stopped_speed:
            self._since = None
            return []
        if self._since is None:
            self._since = tick.time
        if tick.time - self._since <= self.blocked_time:
            return []
        return [
            Infraction(
                InfractionKind.BLOCKED,
                tick.time,
                tick.ego_xy,
                message=f"Agent got blocked for {tick.time - self._since:.0f} s at t={tick.time:.1f} s",
            )
        ]


@dataclass
class RouteTimeoutDetector:
    """Ends the route when its time budget runs out."""

    initial: float = 300.0
    speed_fraction: float = 0.1
    default_speed_limit: float = 13.89

    def __post_init__(self) -> None:
        self.budget = self.initial

    def update(self, tick: Tick, route_distance: float) -> list[Infraction]:
        """The timeout at this tick, if any."""
        limit = tick.speed_limit if tick.speed_limit is not None and tick.speed_limit > 0 else self.default_speed_limit
        self.budget += route_distance / (self.speed_fraction * limit)
        if tick.time <= self.budget:
            return []
        return [
            Infraction(
                InfractionKind.ROUTE_TIMEOUT,
                tick.time,
                tick.ego_xy,
                message=f"Agent timed out (budget {self.budget:.0f} s) at t={tick.time:.1f} s",
            )
        ]


def checkpoint_speed_ratios(
    completion: npt.ArrayLike, ego_speed: npt.ArrayLike, traffic_speed: npt.ArrayLike, checkpoints: int
) -> npt.NDArray[np.float64]:
    """Ego speed as a percentage of the traffic's per route checkpoint, from per-tick samples.

    Args:
        completion: route completion at each tick [%] ``(N,)``, non-decreasing.
        ego_speed: ego speed at each tick [m/s] ``(N,)``.
        traffic_speed: mean traffic speed at each tick [m/s] ``(N,)``, NaN where there was no traffic.
        checkpoints: number of equal route parts.

    Returns:
        ``p`` [%] of every checkpoint the samples reached ``(C,)``; 100 where a part had no traffic.
    """
    completion = np.asarray(completion, dtype=np.float64)
    ego = np.abs(np.asarray(ego_speed, dtype=np.float64))
    traffic = np.asarray(traffic_speed, dtype=np.float64)
    part = np.minimum((completion * checkpoints / 100.0).astype(np.int64), checkpoints)  # (N,) part index
    out = []
    for c in range(checkpoints):
        if not np.any(part > c):
            break
        mask = part == c
        valid = mask & np.isfinite(traffic)
        if not valid.any() or traffic[valid].mean() <= 0:
            out.append(100.0)
        else:
            out.append(100.0 * ego[mask].mean() / traffic[valid].mean())
    return np.array(out)


@dataclass
class MinSpeedDetector:
    """Raises an infraction at each route checkpoint passed too slowly (relative to the traffic)."""

    checkpoints: int = 4
    final_completion: float = 95.0
    _completion: list[float] = field(default_factory=list)
    _ego: list[float] = field(default_factory=list)
    _traffic: list[float] = field(default_factory=list)
    _emitted: int = 0

    def _events(self, ratios: npt.NDArray[np.float64], tick: Tick) -> list[Infraction]:
        events = []
        for p in ratios[self._emitted :]:
            if p < 100.0:
                events.append(
                    Infraction(
                        InfractionKind.MIN_SPEED,
                        tick.time,
                        tick.ego_xy,
                        value=float(p),
                        message=f"Agent drove at {p:.0f} % of the traffic's speed up to t={tick.time:.1f} s",
                    )
                )
        self._emitted = len(ratios)
        return events

    def update(self, tick: Tick, completion: float) -> list[Infraction]:
        """Checkpoints passed at this tick."""
        self._completion.append(completion)
        self._ego.append(tick.ego_speed)
        self._traffic.append(np.nan if tick.traffic_speed is None else tick.traffic_speed)
        if int(completion * self.checkpoints / 100.0) <= self._emitted:
            return []  # no new checkpoint passed
        ratios = checkpoint_speed_ratios(self._completion, self._ego, self._traffic, self.checkpoints)
        return self._events(ratios, tick)

    def finish(self, tick: Tick) -> list[Infraction]:
        """Force the last checkpoint when the route ended past ``final_completion`` %."""
        if not self._completion or self._completion[-1] <= self.final_completion:
            return []
        completion = [*self._completion[:-1], 100.0]
        ratios = checkpoint_speed_ratios(completion, self._ego, self._traffic, self.checkpoints)
        return self._events(ratios, tick)
