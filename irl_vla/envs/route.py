"""``Route``: the path an episode must drive, and ``RouteProgress``, the leaderboard's route completion.

A route is a dense polyline of global poses (about 1 m apart) with cumulative distances. Route completion (RC)
follows the leaderboard: each tick, of the next few route points (the last passed index plus a window), a point
counts as passed when the ego is past it along the point's heading, ``(ego - point) . forward > 0``; RC is the
cumulative percentage at the last passed point. RC becomes 100 once it exceeds 99 % with the ego within 10 m of
the final point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import XY, SE2Index
from irl_vla.data.geometry import path_arc_length
from irl_vla.data.validation import check_array


@dataclass
class Route:
    """A route to drive.

    Attributes:
        route_id: the backend's name of the route (e.g. ``<family>/<seed>`` or a route XML id).
        poses: dense global poses (x [m], y [m], heading [rad]) in driving order ``(N, 3)``.
        roadblock_ids: the roadblocks (and connectors) the route passes, in order, when the backend has a map.
        map_name: the map (location) the route lies on.
    """

    route_id: str
    poses: npt.NDArray[np.float64]
    roadblock_ids: list[str] = field(default_factory=list)
    map_name: str = ""

    def __post_init__(self) -> None:
        self.poses = np.asarray(self.poses, dtype=np.float64)
        check_array(self.poses, f"Route({self.route_id}).poses", (None, len(SE2Index)))
        if len(self.poses) < 2:
            raise ValueError(f"Route({self.route_id}).poses: expected at least 2 poses, got {len(self.poses)}")
        self.distances = path_arc_length(self.poses[:, XY])  # (N,) [m] from the first pose
        if self.distances[-1] <= 0:
            raise ValueError(f"Route({self.route_id}).poses: the route has zero length")
        self._percentages = 100.0 * self.distances / self.distances[-1]
        heading = self.poses[:, SE2Index.HEADING]
        # plain floats for the per-tick tests: (x, y, forward x, forward y) of each pose
        self.points: list[tuple[float, float, float, float]] = list(
            zip(
                self.poses[:, SE2Index.X].tolist(),
                self.poses[:, SE2Index.Y].tolist(),
                np.cos(heading).tolist(),
                np.sin(heading).tolist(),
                strict=True,
            )
        )

    @property
    def length(self) -> float:
        """Route length [m]."""
        return float(self.distances[-1])

    @property
    def percentages(self) -> npt.NDArray[np.float64]:
        """Cumulative completion at each pose [%] ``(N,)``."""
        return self._percentages


@dataclass
class RouteProgress:
    """Route completion of one episode, updated each tick from the ego position.

    Attributes:
        route: the route.
        window: route points beyond the last passed one that are tested each tick.
        completion_threshold: RC above which the route counts as completed [%] (with ``end_distance``).
        end_distance: the ego must be this close to the final point to complete [m].
    """

    route: Route
    window: int = 2
    completion_threshold: float = 99.0
    end_distance: float = 10.0
    index: int = 0  # last passed route point
    completed: bool = False

    @property
    def completion(self) -> float:
        """Route completion so far [%]."""
        return 100.0 if self.completed else float(self.route.percentages[self.index])

    @property
    def distance(self) -> float:
        """Route distance covered so far [m]."""
        return self.route.length if self.completed else float(self.route.distances[self.index])

    def update(self, position: npt.ArrayLike) -> float:
        """Advance with the ego position (x [m], y [m]); returns the route distance newly covered [m]."""
        if self.completed:
            return 0.0
        before = self.distance
        x, y = float(position[0]), float(position[1])  # type: ignore[index]
        points = self.route.points
        stop = min(self.index + 1 + self.window, len(points) - 1)
        for i in range(self.index + 1, stop + 1):
            px, py, fx, fy = points[i]
            if (x - px) * fx + (y - py) * fy > 0:
                self.index = i
        ex, ey = points[-1][0], points[-1][1]
        near_end = math.hypot(x - ex, y - ey) < self.end_distance
        if self.route.percentages[self.index] > self.completion_threshold and near_end:
            self.completed = True
        return self.distance - before
