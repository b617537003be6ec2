"""``Map``: the queryable map of one location (STRtree-backed spatial queries, graph look-ups, routes)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Point
from shapely.strtree import STRtree

from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import wrap_angle
from irl_vla.data.map.map_objects import (
    LANE_LAYERS,
    LAYER_CLASSES,
    Lane,
    LaneConnector,
    MapLayer,
    MapObject,
)

T = TypeVar("T", bound=MapObject)
LaneLike = Lane | LaneConnector


class Map:
    """All map objects of one location, with spatial indices per layer.

    Args:
        name: map (location) name.
        objects: map objects of any layers; ids must be unique within a layer and every reference
            (roadblock of a lane, successors, stop lines, ...) must resolve.

    Raises:
        ValueError: on duplicate ids or dangling references, naming the object and field.
    """

    def __init__(self, name: str, objects: Iterable[MapObject]) -> None:
        self.name = name
        self._layers: dict[MapLayer, dict[str, MapObject]] = {layer: {} for layer in MapLayer}
        for obj in objects:
            table = self._layers[obj.layer]
            if obj.id in table:
                raise ValueError(f"Map {name}: duplicate {obj.layer.value} id {obj.id!r}")
            table[obj.id] = obj
        self._check_references()
        self._trees: dict[MapLayer, tuple[STRtree, list[MapObject]]] = {}
        for layer, table in self._layers.items():
            objs = list(table.values())
            self._trees[layer] = (STRtree([o.polygon for o in objs]), objs)

    def _check_references(self) -> None:
        for table in self._layers.values():
            for obj in table.values():
                for field_name, (layers, ids) in obj.references().items():
                    for ref in ids:
                        if not any(ref in self._layers[layer] for layer in layers):
                            raise ValueError(
                                f"Map {self.name}: {obj.layer.value} {obj.id!r} field {field_name!r} refers to "
                                f"unknown {'/'.join(la.value for la in layers)} id {ref!r}"
                            )

    # ------------------------------------------------------------------ look-ups
    def objects(self, layer: MapLayer) -> list[MapObject]:
        """All objects of a layer, in insertion order."""
        return list(self._layers[layer].values())

    def all_objects(self) -> list[MapObject]:
        """Every object of every layer."""
        return [obj for table in self._layers.values() for obj in table.values()]

    def get(self, layer: MapLayer, object_id: str) -> MapObject:
        """The object with ``object_id`` in ``layer``.

        Raises:
            KeyError: naming the layer, id and map when there is none.
        """
        try:
            return self._layers[layer][object_id]
        except KeyError:
            raise KeyError(f"Map {self.name}: no {layer.value} with id {object_id!r}") from None

    def has(self, layer: MapLayer, object_id: str) -> bool:
        """Whether ``layer`` holds ``object_id``."""
        return object_id in self._layers[layer]

    def get_lane(self, object_id: str) -> LaneLike:
        """A lane or lane connector by id."""
        for layer in LANE_LAYERS:
            if object_id in self._layers[layer]:
                return self._layers[layer][object_id]  # type: ignore[return-value]
        raise KeyError(f"Map {self.name}: no lane or lane connector with id {object_id!r}")

    def get_block(self, object_id: str) -> MapObject:
        """A roadblock or roadblock connector by id (a route id)."""
        for layer in (MapLayer.ROADBLOCK, MapLayer.ROADBLOCK_CONNECTOR):
            if object_id in self._layers[layer]:
                return self._layers[layer][object_id]
        raise KeyError(f"Map {self.name}: no roadblock or roadblock connector with id {object_id!r}")

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) [m] of all polygons."""
        polys = [o.polygon for o in self.all_objects()]
        if not polys:
            raise ValueError(f"Map {self.name}: empty map has no bounds")
        return tuple(shapely.total_bounds(polys).tolist())  # type: ignore[return-value]

    # ------------------------------------------------------------------ spatial queries
    def query_radius(
        self, point: Sequence[float] | npt.NDArray, radius: float, layers: Iterable[MapLayer]
    ) -> dict[MapLayer, list[MapObject]]:
        """Objects of ``layers`` whose polygon lies within ``radius`` [m] of ``point`` (x, y)."""
        geom = Point(float(point[0]), float(point[1]))
        out: dict[MapLayer, list[MapObject]] = {}
        for layer in layers:
            tree, objs = self._trees[layer]
            idx = tree.query(geom, predicate="dwithin", distance=radius)
            out[layer] = [objs[i] for i in sorted(idx)]
        return out

    def objects_containing(self, point: Sequence[float] | npt.NDArray, layer: MapLayer) -> list[MapObject]:
        """Objects of ``layer`` whose polygon strictly contains ``point`` (shapely ``contains``)."""
        tree, objs = self._trees[layer]
        idx = tree.query(Point(float(point[0]), float(point[1])), predicate="within")
        return [objs[i] for i in sorted(idx)]

    def is_in_layer(self, point: Sequence[float] | npt.NDArray, layer: MapLayer) -> bool:
        """Whether any polygon of ``layer`` strictly contains ``point``."""
        return bool(self.objects_containing(point, layer))

    def lanes_containing(self, point: Sequence[float] | npt.NDArray) -> list[LaneLike]:
        """Lanes and lane connectors that contain ``point``."""
        return [o for layer in LANE_LAYERS for o in self.objects_containing(point, layer)]  # type: ignore[misc]

    # ------------------------------------------------------------------ routes
    def route_lanes(self, route_ids: Sequence[str]) -> list[LaneLike]:
        """Interior lanes and lane connectors of the route's roadblocks and roadblock connectors."""
        lanes: list[LaneLike] = []
        for rid in route_ids:
            block = self.get_block(rid)
            lanes.extend(self.get_lane(lid) for lid in block.lane_ids)  # type: ignore[attr-defined]
        return lanes

    def _start_lane(self, candidates: list[LaneLike], pose: npt.NDArray) -> LaneLike:
        xy = pose[: SE2Index.HEADING]
        containing = [lane for lane in candidates if lane.polygon.contains(Point(*xy))]
        if containing:

            def heading_error(lane: LaneLike) -> float:
                i = int(np.argmin(np.linalg.norm(lane.centerline[:, :2] - xy, axis=1)))
                return abs(float(wrap_angle(lane.centerline[i, SE2Index.HEADING] - pose[SE2Index.HEADING])))

            return min(containing, key=heading_error)
        return min(candidates, key=lambda lane: lane.polygon.distance(Point(*xy)))

    def route_lane_sequence(self, route_ids: Sequence[str], start_pose: npt.NDArray) -> list[str]:
        """Lane ids that follow the route furthest from the lane under ``start_pose``.

        The start lane is the on-route lane containing the pose with the lowest heading error, else the
        nearest on-route lane. A Dijkstra search over successors (lengths as costs) restricted to route lanes
        then picks the path reaching the furthest route block, the shortest among equals.

        Args:
            route_ids: route roadblock (and roadblock connector) ids in driving order.
            start_pose: (x [m], y [m], heading [rad]) in the map frame ``(3,)``.

        Raises:
            ValueError: if the route has no lanes.
        """
        candidates = self.route_lanes(route_ids)
        if not candidates:
            raise ValueError(f"Map {self.name}: route {list(route_ids)} has no lanes")
        order = {rid: i for i, rid in enumerate(route_ids)}
        allowed = {lane.id for lane in candidates}
        start = self._start_lane(candidates, np.asarray(start_pose, dtype=np.float64))
        # Dijkstra; the key prefers deeper route blocks, then shorter paths.
        best: tuple[int, float, list[str]] = (order[start.roadblock_id], 0.0, [start.id])
        heap: list[tuple[float, str, list[str]]] = [(0.0, start.id, [start.id])]
        done: set[str] = set()
        while heap:
            cost, lid, path = heapq.heappop(heap)
            if lid in done:
                continue
            done.add(lid)
            lane = self.get_lane(lid)
            depth = order[lane.roadblock_id]
            if depth > best[0] or (depth == best[0] and cost < best[1]):
                best = (depth, cost, path)
            for nxt in lane.outgoing_ids:
                if nxt in allowed and nxt not in done:
                    heapq.heappush(heap, (cost + lane.length, nxt, [*path, nxt]))
        return best[2]

    def route_centerline(self, route_ids: Sequence[str], start_pose: npt.NDArray) -> npt.NDArray[np.float64]:
        """Concatenated centerline of ``route_lane_sequence`` ``(N, 3)``, joint duplicates removed."""
        parts = [self.get_lane(lid).centerline for lid in self.route_lane_sequence(route_ids, start_pose)]
        line = np.concatenate(parts, axis=0)
        keep = np.ones(len(line), dtype=bool)
        keep[1:] = np.linalg.norm(np.diff(line[:, :2], axis=0), axis=1) > 1e-9
        return line[keep]

    def __repr__(self) -> str:
        counts = ", ".join(f"{layer.value}={len(t)}" for layer, t in self._layers.items() if t)
        return f"Map({self.name!r}, {counts})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Map):
            return NotImplemented
        from irl_vla.data.map.map_io import map_to_dict

        return map_to_dict(self) == map_to_dict(other)


__all__ = ["LAYER_CLASSES", "LaneLike", "Map"]
