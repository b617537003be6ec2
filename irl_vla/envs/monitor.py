"""``InfractionMonitor``: every detector of a backend without its own, run tick by tick over one episode.

A backend (the embedded world) builds one per episode and calls ``update`` at every simulation tick; it returns
the infractions raised and whether the episode must end (``TerminationReason``); ``progress`` holds route
completion. The CARLA bridge reports CARLA's own collision and lane events instead but may use the same monitor
for the rules that need only poses (route completion, deviation, blocked, timeout, minimum speed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from irl_vla.data.map.map_api import Map
from irl_vla.envs.collisions import CollisionDetector
from irl_vla.envs.env import TerminationReason
from irl_vla.envs.infractions import COLLISIONS, OUTSIDE_LANES, Infraction, InfractionKind
from irl_vla.envs.lanes import LaneDetector
from irl_vla.envs.route import Route, RouteProgress
from irl_vla.envs.route_rules import (
    BlockedDetector,
    MinSpeedDetector,
    RouteDeviationDetector,
    RouteTimeoutDetector,
)
from irl_vla.envs.signals import RedLightDetector, StopSignDetector
from irl_vla.envs.tick import Tick


@dataclass
class MonitorConfig:
    """Detector settings (leaderboard 2.x values by default; ``configs/rollout.yaml`` ``monitor``).

    Attributes:
        kinds: the infraction kinds to detect (``InfractionKind`` values); ``None``: every kind. A backend that
            reports some kinds itself runs the monitor for the others only.
        terminate_on_collision: end the episode at the first counted collision. The leaderboard drives on after
            collisions; the embedded world has no collision physics, so it ends the episode there by default.
        collision_same_object_time: [s] the same object is not counted again within this time.
        collision_same_place_distance: [m] nor near the last counted collision until the ego moved this far.
        stopped_speed: [m/s] below this the ego counts as stopped (collisions, blocked, stop signs).
        red_light_radius: [m] lights checked around the ego.
        red_light_lateral_factor: half-width of a stop line as a fraction of its lane's width.
        stop_look_ahead: [m] stop-sign look-ahead from the front bumper.
        off_road_margin: [m] the ego's centre may be this far outside the lanes before it is off-road.
        wrong_way_angle: [deg] heading difference to every lane under the ego that counts as wrong way.
        wrong_way_margin: [m] a lane of the ego's direction this close to its centre makes it not wrong way.
        deviation_max: [m] distance from the route that ends it (half of it starts counting far driving).
        deviation_fraction: fraction of the route driven far from it that ends it.
        blocked_time: [s] standing still this long ends the route.
        timeout_initial: [s] initial route time budget.
        timeout_speed_fraction: each metre of route adds 1 / (fraction x speed limit) seconds to the budget.
        default_speed_limit: [m/s] speed limit where the backend gives none.
        min_speed_checkpoints: route parts of the minimum-speed rule (4 in the leaderboard).
    """

    kinds: list[str] | None = None
    terminate_on_collision: bool = True
    collision_same_object_time: float = 5.0
    collision_same_place_distance: float = 5.0
    stopped_speed: float = 0.1
    red_light_radius: float = 15.0
    red_light_lateral_factor: float = 0.6
    stop_look_ahead: float = 4.0
    off_road_margin: float = 0.5
    wrong_way_angle: float = 120.0
    wrong_way_margin: float = 0.5
    deviation_max: float = 30.0
    deviation_fraction: float = 0.3
    blocked_time: float = 180.0
    timeout_initial: float = 300.0
    timeout_speed_fraction: float = 0.1
    default_speed_limit: float = 13.89
    min_speed_checkpoints: int = 4

    def __post_init__(self) -> None:
        for kind in self.kinds or []:
            try:
                InfractionKind(kind)
            except ValueError:
                known = [k.value for k in InfractionKind]
                raise ValueError(f"MonitorConfig.kinds: unknown kind {kind!r}; known: {known}") from None

    @property
    def kind_set(self) -> frozenset[InfractionKind]:
        """The kinds detected."""
        return frozenset(InfractionKind) if self.kinds is None else frozenset(InfractionKind(k) for k in self.kinds)


_ENDING: dict[InfractionKind, TerminationReason] = {
    InfractionKind.ROUTE_DEVIATION: TerminationReason.ROUTE_DEVIATION,
    InfractionKind.BLOCKED: TerminationReason.BLOCKED,
    InfractionKind.ROUTE_TIMEOUT: TerminationReason.ROUTE_TIMEOUT,
}


@dataclass
class InfractionMonitor:
    """All detectors of one episode.

    Attributes:
        route: the route being driven.
        map_api: the location's map (None: the rules that need one, red light, stop sign, off-road and wrong
            way, do not run).
        config: detector settings.
    """

    route: Route
    map_api: Map | None
    config: MonitorConfig = field(default_factory=MonitorConfig)

    def __post_init__(self) -> None:
        c = self.config
        kinds = self.kinds = c.kind_set
        self.progress = RouteProgress(self.route)
        self.infractions: list[Infraction] = []
        self.collisions = self.red_lights = self.stop_signs = self.lanes = None
        if kinds & COLLISIONS:
            self.collisions = CollisionDetector(
                c.collision_same_object_time, c.collision_same_place_distance, c.stopped_speed
            )
        if self.map_api is not None:
            if InfractionKind.RED_LIGHT in kinds:
                roadblocks = frozenset(self.route.roadblock_ids)
                self.red_lights = RedLightDetector(
                    self.map_api, roadblocks, c.red_light_radius, c.red_light_lateral_factor
                )
            if InfractionKind.STOP_SIGN in kinds:
                self.stop_signs = StopSignDetector(
                    self.map_api, look_ahead=c.stop_look_ahead, stopped_speed=c.stopped_speed
                )
            if kinds & OUTSIDE_LANES:
                self.lanes = LaneDetector(
                    self.map_api, c.off_road_margin, float(np.radians(c.wrong_way_angle)), c.wrong_way_margin
                )
        self.deviation = self.blocked = self.timeout = self.min_speed = None
        if InfractionKind.ROUTE_DEVIATION in kinds:
            self.deviation = RouteDeviationDetector(
                deviation_max=c.deviation_max, deviation_fraction=c.deviation_fraction
            )
        if InfractionKind.BLOCKED in kinds:
            self.blocked = BlockedDetector(c.blocked_time, c.stopped_speed)
        if InfractionKind.ROUTE_TIMEOUT in kinds:
            self.timeout = RouteTimeoutDetector(c.timeout_initial, c.timeout_speed_fraction, c.default_speed_limit)
        if InfractionKind.MIN_SPEED in kinds:
            self.min_speed = MinSpeedDetector(c.min_speed_checkpoints)
        self._last_tick: Tick | None = None
        self.termination: TerminationReason | None = None

    @property
    def completion(self) -> float:
        """Route completion so far [%]."""
        return self.progress.completion

    def update(self, tick: Tick) -> tuple[list[Infraction], TerminationReason | None]:
        """Run every detector on one tick: the new infractions and why the episode must end (None: go on)."""
        if self.termination is not None:
            raise RuntimeError(f"InfractionMonitor({self.route.route_id}): update after the episode ended")
        self._last_tick = tick
        distance = self.progress.update(tick.ego_xy)
        events = []
        if self.collisions is not None:
            events += self.collisions.update(tick)
        if self.red_lights is not None:
            events += self.red_lights.update(tick)
        if self.stop_signs is not None:
            events += self.stop_signs.update(tick)
        if self.lanes is not None:
            events += self.lanes.update(tick, distance)
        if self.min_speed is not None:
            events += self.min_speed.update(tick, self.progress.completion)
        if self.deviation is not None:
            events += self.deviation.update(tick, self.progress, distance)
        if self.blocked is not None:
            events += self.blocked.update(tick)
        if self.timeout is not None:
            events += self.timeout.update(tick, distance)
        events = [e for e in events if e.kind in self.kinds]
        reason = None
        ending = [e for e in events if e.kind.ends_route]
        if ending:
            events = [e for e in events if not e.kind.ends_route] + ending[:1]  # one reason ends the route
            reason = _ENDING[ending[0].kind]
        elif self.progress.completed:
            reason = TerminationReason.ROUTE_COMPLETED
        elif self.config.terminate_on_collision and any(e.kind.is_collision for e in events):
            reason = TerminationReason.COLLISION
        if reason is not None:
            events += self._finish(tick)
            self.termination = reason
        self.infractions += events
        return events, reason

    def _finish(self, tick: Tick) -> list[Infraction]:
        events = self.lanes.finish() if self.lanes is not None else []
        if self.min_speed is not None:
            events += self.min_speed.finish(tick)
        return [e for e in events if e.kind in self.kinds]

    def finish(self, reason: TerminationReason = TerminationReason.TIME_LIMIT) -> list[Infraction]:
        """Close an episode that ended otherwise (``reason``): open stretches, the last speed checkpoint."""
        if self.termination is not None or self._last_tick is None:
            return []
        events = self._finish(self._last_tick)
        self.termination = reason
        self.infractions += events
        return events
