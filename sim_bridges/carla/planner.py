"""Route interpolation over a ``carla.Map``: dense lane-following routes between keypoints (the suite's own planner).

The leaderboard densifies a route file's keypoints with a global planner over the map's topology at 1 m. This is
ours, from the same idea: the topology's lane segments (``Map.get_topology()``, pairs of entry and exit
waypoints) are densified with ``Waypoint.next`` and become edges of a directed graph whose nodes are segment ends
(rounded to ``node_precision``); lane changes are edges from a segment's entry to its same-direction neighbour's
exit where the lane marking allows it. Each leg between consecutive keypoints is the shortest path (Dijkstra over
driven length) from the keypoint's lane segment to the next one's. The result is in the suite's frame
(``coordinates``), with a ``RoadOption`` per point: at junction segments LEFT / RIGHT / STRAIGHT from the heading
change through the junction (below ``straight_angle`` is straight), lane changes, else LANEFOLLOW.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from irl_vla.data.geometry import wrap_angle
from sim_bridges.carla.coordinates import carla_to_se2

FloatArray = npt.NDArray[np.float64]


class RoadOption(IntEnum):
    """What the route does at a point (the leaderboard's values)."""

    VOID = -1
    LEFT = 1
    RIGHT = 2
    STRAIGHT = 3
    LANEFOLLOW = 4
    CHANGELANELEFT = 5
    CHANGELANERIGHT = 6


@dataclass
class _Edge:
    start: int
    end: int
    poses: FloatArray  # (N, 3) CARLA x, y, yaw [deg]
    length: float
    option: RoadOption = RoadOption.LANEFOLLOW
    key: tuple[int, int, int] = (0, 0, 0)  # (road, section, lane) of the entry waypoint
    lane_change: Any = None  # the entry waypoint's ``carla.LaneChange``


_CHANGES = (RoadOption.CHANGELANELEFT, RoadOption.CHANGELANERIGHT)


@dataclass
class PlannedRoute:
    """A dense route: suite-frame poses ``(N, 3)`` (x, y, heading [rad]) and a ``RoadOption`` per pose."""

    poses: FloatArray
    options: list[RoadOption] = field(default_factory=list)

    @property
    def length(self) -> float:
        """Driven length [m]."""
        return float(np.sum(np.hypot(*np.diff(self.poses[:, :2], axis=0).T)))


class RoutePlanner:
    """Shortest lane-following routes over one ``carla.Map``.

    Args:
        cmap: the map (from a server or ``carla.Map(name, xodr)`` offline).
        resolution: spacing of the dense route [m].
        straight_angle: heading change through a junction below which it is STRAIGHT [deg].
        node_precision: segment ends closer than this are one node [m].
        lane_change_cost: extra cost of a lane change [m], so that a route changes lanes only where it must.
    """

    def __init__(
        self,
        cmap: Any,
        resolution: float = 1.0,
        straight_angle: float = 33.0,
        node_precision: float = 0.5,
        lane_change_cost: float = 10.0,
    ) -> None:
        self.map, self.resolution, self.lane_change_cost = cmap, resolution, lane_change_cost
        self.straight = math.radians(straight_angle)
        self.precision = node_precision
        self._nodes: dict[tuple[int, int, int], int] = {}
        self.edges: list[_Edge] = []
        self._out: dict[int, list[int]] = {}
        self._by_lane: dict[tuple[int, int, int], list[int]] = {}
        topology = cmap.get_topology()
        for entry, exit_ in topology:
            self._add_segment(entry, exit_)
        # Loose ends: lanes that lead nowhere (the outgoing lanes at a map's edge) are not in the topology;
        # each becomes a segment from the node where the topology ends to its lane's end.
        for _, exit_ in topology:
            for first in exit_.next(self.resolution):
                if self._key(first) not in self._by_lane:
                    tail = first.next_until_lane_end(self.resolution)
                    self._add_segment(first, tail[-1] if tail else first, start=self._node(exit_))
        # Lanes linked to nothing at all (a lone road's lanes) are in no topology pair either.
        for wp in cmap.generate_waypoints(self.resolution):
            if self._key(wp) not in self._by_lane:
                tail = wp.next_until_lane_end(self.resolution)
                self._add_segment(self._lane_start(wp), tail[-1] if tail else wp)
        self._add_lane_changes()

    # ------------------------------------------------------------------ graph
    def _node(self, wp: Any) -> int:
        loc = wp.transform.location
        key = (round(loc.x / self.precision), round(loc.y / self.precision), round(loc.z / self.precision))
        return self._nodes.setdefault(key, len(self._nodes))

    def _lane_start(self, wp: Any) -> Any:
        """The first waypoint of ``wp``'s lane (``previous_until_lane_start`` crashes LibCarla 0.9.16 at s = 0)."""
        key = self._key(wp)
        for _ in range(100000):
            back = [w for w in wp.previous(self.resolution) if self._key(w) == key]
            if not back:
                return wp
            wp = back[0]
        raise RuntimeError(f"RoutePlanner: lane {key} has no start")

    @staticmethod
    def _key(wp: Any) -> tuple[int, int, int]:
        return (wp.road_id, wp.section_id, wp.lane_id)

    def _add_segment(self, entry: Any, exit_: Any, start: int | None = None) -> None:
        wps = [entry]
        end = exit_.transform.location
        while True:
            nxt = [w for w in wps[-1].next(self.resolution) if self._key(w) == self._key(entry)]
            if not nxt or wps[-1].transform.location.distance(end) <= self.resolution:
                break
            wps.append(nxt[0])
            if len(wps) > 100000:
                raise RuntimeError(f"RoutePlanner: lane segment {self._key(entry)} never reaches its exit")
        wps.append(exit_)
        poses = np.array([[w.transform.location.x, w.transform.location.y, w.transform.rotation.yaw] for w in wps])
        length = float(np.sum(np.hypot(*np.diff(poses[:, :2], axis=0).T)))
        option = RoadOption.LANEFOLLOW
        if entry.is_junction:
            turn = float(wrap_angle(-math.radians(poses[-1, 2] - poses[0, 2])))  # suite heading change (CCW)
            option = (
                RoadOption.STRAIGHT
                if abs(turn) < self.straight
                else (RoadOption.LEFT if turn > 0 else RoadOption.RIGHT)
            )
        start = self._node(entry) if start is None else start
        edge = _Edge(start, self._node(exit_), poses, length, option, self._key(entry), entry.lane_change)
        self._out.setdefault(edge.start, []).append(len(self.edges))
        self._by_lane.setdefault(edge.key, []).append(len(self.edges))
        self.edges.append(edge)

    def _add_lane_changes(self) -> None:
        import carla

        for index in range(len(self.edges)):
            edge = self.edges[index]
            if edge.option is not RoadOption.LANEFOLLOW:
                continue
            road, section, lane = edge.key
            inward = 1 if lane < 0 else -1  # towards the road's centre, which is the driver's left
            for neighbour, option, allowed in (
                (lane + inward, RoadOption.CHANGELANELEFT, (carla.LaneChange.Left, carla.LaneChange.Both)),
                (lane - inward, RoadOption.CHANGELANERIGHT, (carla.LaneChange.Right, carla.LaneChange.Both)),
            ):
                if neighbour == 0 or (neighbour > 0) != (lane > 0) or edge.lane_change not in allowed:
                    continue
                for target in self._by_lane.get((road, section, neighbour), []):
                    other = self.edges[target]
                    self._out.setdefault(edge.start, []).append(len(self.edges))
                    cost = other.length + self.lane_change_cost
                    self.edges.append(_Edge(edge.start, other.end, other.poses, cost, option, other.key))

    # ------------------------------------------------------------------ search
    def _closest_edge(self, location: Any) -> tuple[int, int]:
        """The edge (and the pose index on it) nearest a CARLA ``Location`` on its own lane."""
        wp = self.map.get_waypoint(location)
        if wp is None:
            raise ValueError(f"RoutePlanner: no driving lane near ({location.x:.1f}, {location.y:.1f})")
        candidates = self._by_lane.get(self._key(wp), [])
        best = None
        for index in candidates:
            poses = self.edges[index].poses
            d = np.hypot(poses[:, 0] - location.x, poses[:, 1] - location.y)
            k = int(np.argmin(d))
            if best is None or d[k] < best[0]:
                best = (float(d[k]), index, k)
        if best is None:
            raise ValueError(f"RoutePlanner: lane {self._key(wp)} is in no topology segment")
        return best[1], best[2]

    def _shortest(self, source: int, target: int) -> list[int]:
        """Edges from the start of ``source``'s lane segment into ``target``'s lane (Dijkstra on driven length).

        The first edge is ``source`` itself or a lane change out of its lane; the last one drives ``target``'s lane
        (``target`` itself, or a lane change into it).
        """
        first, goal = self.edges[source], self.edges[target].key
        heap = [
            (self.edges[e].length, e)
            for e in self._out.get(first.start, [])
            if e == source or self.edges[e].option in _CHANGES
        ]
        heapq.heapify(heap)
        back: dict[int, int | None] = {e: None for _, e in heap}
        done: set[int] = set()
        while heap:
            d, e = heapq.heappop(heap)
            if e in done:
                continue
            done.add(e)
            if self.edges[e].key == goal and (e != source or len(done) > 1 or e == target):
                path = [e]
                while (prev := back[path[-1]]) is not None:
                    path.append(prev)
                return path[::-1]
            for f in self._out.get(self.edges[e].end, []):
                if f not in done and f not in back:
                    back[f] = e
                    heapq.heappush(heap, (d + self.edges[f].length, f))
        raise ValueError(f"RoutePlanner: no lane path from lane {first.key} to lane {goal}")

    def trace(self, keypoints: list[Any]) -> PlannedRoute:
        """The dense route through CARLA ``Location`` keypoints (at least two), in the suite's frame.

        Raises:
            ValueError: when a keypoint is off the road or no lane path joins two keypoints.
        """
        if len(keypoints) < 2:
            raise ValueError(f"RoutePlanner.trace: need at least 2 keypoints, got {len(keypoints)}")
        located = [self._closest_edge(k) for k in keypoints]
        poses: list[FloatArray] = []
        options: list[RoadOption] = []

        def add(edge: _Edge, lo: int, hi: int | None) -> None:
            part = edge.poses[lo:hi]
            if poses and len(part) and np.hypot(*(part[0, :2] - poses[-1][-1, :2])) < 1e-3:
                part = part[1:]
            poses.append(part)
            options.extend([edge.option] * len(part))

        for (e0, k0), (e1, k1) in itertools.pairwise(located):
            if e0 == e1 and k1 >= k0:
                add(self.edges[e0], k0, k1 + 1)
                continue
            path = self._shortest(e0, e1)
            for n, e in enumerate(path):
                edge = self.edges[e]
                lo = min(k0, len(edge.poses) - 1) if n == 0 else 0
                hi = k1 + 1 if n == len(path) - 1 else None
                add(edge, lo, hi)
        dense = np.concatenate([p for p in poses if len(p)])
        return PlannedRoute(carla_to_se2(dense), options)
