"""nuPlan GeoPackage maps <-> the suite's map model (``reference/nuplan_openscene_formats.md`` §1).

A map root (``NUPLAN_MAPS_ROOT``) holds ``nuplan-maps-v1.0.json`` naming a version per location and
``<location>/<version>/map.gpkg`` per location. nuPlan hard-codes four location names and opens all four when a
map database is created, so ``write_map_root`` installs a map under one of them and writes stub maps (``meta``
and an empty ``lane_connectors`` table) for the other three.

Tables and links (ids are the tables' feature ids, as strings in the suite):

- ``lanes_polygons`` (lane polygon; ``lane_fid`` = fid, ``lane_group_fid`` -> roadblock, ``lane_index`` from the
  left, boundary fids, ``speed_limit_mps``), ``lane_connectors`` (``exit_lane_fid`` -> ``entry_lane_fid``,
  ``lane_group_connector_fid``, ``traffic_light_stop_line_fids``, ``intersection_fid``),
  ``gen_lane_connectors_scaled_width_polygons`` (connector polygons), ``baseline_paths`` (one centerline per
  lane or connector, in driving direction), ``boundaries`` (lane edges);
- ``lane_groups_polygons`` (roadblocks), ``lane_group_connectors`` (``from_lane_group_fid`` ->
  ``to_lane_group_fid``, ``intersection_fid``), ``intersections``, ``stop_polygons``, ``crosswalks``,
  ``carpark_areas``; ``walkways``, ``road_segments``, ``generic_drivable_areas`` are written empty;
- ``meta``: ``projectedCoordSystem`` (the EPSG code of the map's metres).

Id columns are never NULL (a NULL turns a pyogrio column into floats and ``str()`` ids into ``"12.0"``): a
missing intersection is written as ``NO_ID`` (-1) and read back as none. Headings of centerlines are recomputed
from the baseline paths; a connector's turn is read from its heading change. Layers stored in another
reference system than ``projectedCoordSystem`` (real maps store lon/lat) are reprojected with pyproj (the
``navsim`` extra).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from irl_vla.common.io import DataFormatError, read_json, write_json
from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import headings_from_path
from irl_vla.data.map import (
    CarparkArea,
    Crosswalk,
    Intersection,
    IntersectionType,
    Lane,
    LaneConnector,
    Map,
    MapLayer,
    MapObject,
    Roadblock,
    RoadblockConnector,
    StopLine,
    StopLineType,
)
from sim_bridges.navsim.gpkg import GeoPackage, LayerData, Table, write_geopackage

MAP_VERSION = "nuplan-maps-v1.0"  # the version navsim always asks for
MAP_LOCATIONS = ("sg-one-north", "us-ma-boston", "us-nv-las-vegas-strip", "us-pa-pittsburgh-hazelwood")
DEFAULT_LOCATION = "us-nv-las-vegas-strip"
DEFAULT_EPSG = 32611  # WGS 84 / UTM zone 11N, the Las Vegas zone
GPKG_VERSION = "irl-vla-1"  # the folder of exported maps under each location
NO_ID = -1
STRAIGHT_LIMIT = 0.5  # [rad] heading change below which a connector goes straight
U_TURN_LIMIT = 2.6  # [rad] heading change above which it is a U-turn
EMPTY_POLYGON_TABLES = ("walkways", "road_segments", "generic_drivable_areas")


# ---------------------------------------------------------------------------------------------- writing
def _fid(object_id: str, where: str) -> int:
    try:
        return int(object_id)
    except ValueError:
        raise ValueError(f"{where}: id {object_id!r} is not an integer (nuPlan ids are feature ids)") from None


def _polygon_table(
    name: str,
    objects: list[MapObject],
    columns: list[tuple[str, str]] | None = None,
    rows: list[list[Any]] | None = None,
) -> Table:
    fids = [_fid(o.id, f"{name}") for o in objects]
    rows = [[] for _ in objects] if rows is None else rows
    return Table(name, columns or [], rows, "POLYGON", [o.polygon for o in objects], fids)


def map_tables(map_api: Map, epsg: int = DEFAULT_EPSG) -> list[Table]:
    """The nuPlan tables of ``map_api`` (coordinates as they are, in metres of EPSG ``epsg``).

    Raises:
        ValueError: naming the object whose id is not an integer or whose links nuPlan cannot express.
    """
    lanes = [o for o in map_api.objects(MapLayer.LANE) if isinstance(o, Lane)]
    connectors = [o for o in map_api.objects(MapLayer.LANE_CONNECTOR) if isinstance(o, LaneConnector)]
    next_fid = max((_fid(o.id, f"{o.layer.value} {o.id}") for o in map_api.all_objects()), default=0) + 1

    def new_fid() -> int:
        nonlocal next_fid
        next_fid += 1
        return next_fid - 1

    boundaries: list[tuple[int, LineString]] = []
    baselines: list[tuple[int, LineString, list[Any]]] = []

    def edges(lane: Lane | LaneConnector) -> tuple[int, int]:
        left, right = new_fid(), new_fid()
        boundaries.extend([(left, LineString(lane.left_boundary)), (right, LineString(lane.right_boundary))])
        return left, right

    lane_rows = []
    for lane in lanes:
        where = f"lane {lane.id}"
        left, right = edges(lane)
        fid = _fid(lane.id, where)
        lane_rows.append([fid, _fid(lane.roadblock_id, where), lane.lane_index, left, right, lane.speed_limit])
        baselines.append((new_fid(), LineString(lane.centerline[:, : SE2Index.HEADING]), [fid, None]))
    connector_rows, connector_polygon_rows, connector_polygons, connector_polygon_fids = [], [], [], []
    for conn in connectors:
        where = f"lane connector {conn.id}"
        if len(conn.incoming_ids) != 1 or len(conn.outgoing_ids) != 1:
            raise ValueError(f"{where}: nuPlan connectors join exactly one lane to one lane")
        fid = _fid(conn.id, where)
        intersection = NO_ID if conn.intersection_id is None else _fid(conn.intersection_id, where)
        stop_lines = ",".join(str(_fid(s, where)) for s in conn.stop_line_ids)
        connector_rows.append(
            [
                _fid(conn.incoming_ids[0], where),
                _fid(conn.outgoing_ids[0], where),
                _fid(conn.roadblock_id, where),
                conn.speed_limit,
                stop_lines,
                intersection,
            ]
        )
        left, right = edges(conn)
        connector_polygon_fids.append(new_fid())
        connector_polygon_rows.append([fid, left, right])
        connector_polygons.append(conn.polygon)
        baselines.append((new_fid(), LineString(conn.centerline[:, : SE2Index.HEADING]), [None, fid]))

    blocks = map_api.objects(MapLayer.ROADBLOCK)
    block_connectors = [o for o in map_api.objects(MapLayer.ROADBLOCK_CONNECTOR) if isinstance(o, RoadblockConnector)]
    block_connector_rows = []
    for bc in block_connectors:
        where = f"roadblock connector {bc.id}"
        if len(bc.incoming_ids) != 1 or len(bc.outgoing_ids) != 1:
            raise ValueError(f"{where}: nuPlan roadblock connectors join exactly one roadblock to one")
        intersection = NO_ID if bc.intersection_id is None else _fid(bc.intersection_id, where)
        block_connector_rows.append([_fid(bc.incoming_ids[0], where), _fid(bc.outgoing_ids[0], where), intersection])
    intersections = [o for o in map_api.objects(MapLayer.INTERSECTION) if isinstance(o, Intersection)]
    stops = [o for o in map_api.objects(MapLayer.STOP_LINE) if isinstance(o, StopLine)]
    stop_rows = [
        [int(s.stop_line_type), ",".join(str(_fid(c, f"stop line {s.id}")) for c in s.lane_connector_ids)]
        for s in stops
    ]
    speed = ("speed_limit_mps", "REAL")
    tables = [
        Table(
            "lanes_polygons",
            [
                ("lane_fid", "INTEGER"),
                ("lane_group_fid", "INTEGER"),
                ("lane_index", "INTEGER"),
                ("left_boundary_fid", "INTEGER"),
                ("right_boundary_fid", "INTEGER"),
                speed,
            ],
            lane_rows,
            "POLYGON",
            [lane.polygon for lane in lanes],
            [r[0] for r in lane_rows],
        ),
        Table(
            "lane_connectors",
            [
                ("exit_lane_fid", "INTEGER"),
                ("entry_lane_fid", "INTEGER"),
                ("lane_group_connector_fid", "INTEGER"),
                speed,
                ("traffic_light_stop_line_fids", "TEXT"),
                ("intersection_fid", "INTEGER"),
            ],
            connector_rows,
            "LINESTRING",
            [LineString(c.centerline[:, : SE2Index.HEADING]) for c in connectors],
            [_fid(c.id, "lane connector") for c in connectors],
        ),
        Table(
            "gen_lane_connectors_scaled_width_polygons",
            [("lane_connector_fid", "INTEGER"), ("left_boundary_fid", "INTEGER"), ("right_boundary_fid", "INTEGER")],
            connector_polygon_rows,
            "POLYGON",
            connector_polygons,
            connector_polygon_fids,
        ),
        Table(
            "baseline_paths",
            [("lane_fid", "INTEGER"), ("lane_connector_fid", "INTEGER")],
            [b[2] for b in baselines],
            "LINESTRING",
            [b[1] for b in baselines],
            [b[0] for b in baselines],
        ),
        Table(
            "boundaries",
            [],
            [[] for _ in boundaries],
            "LINESTRING",
            [b[1] for b in boundaries],
            [b[0] for b in boundaries],
        ),
        _polygon_table("lane_groups_polygons", blocks, [], [[] for _ in blocks]),
        _polygon_table(
            "lane_group_connectors",
            block_connectors,
            [("from_lane_group_fid", "INTEGER"), ("to_lane_group_fid", "INTEGER"), ("intersection_fid", "INTEGER")],
            block_connector_rows,
        ),
        _polygon_table(
            "intersections",
            intersections,
            [("intersection_type_fid", "INTEGER")],
            [[int(i.intersection_type)] for i in intersections],
        ),
        _polygon_table(
            "stop_polygons", stops, [("stop_polygon_type_fid", "INTEGER"), ("lane_connector_fids", "TEXT")], stop_rows
        ),
        _polygon_table(
            "crosswalks", map_api.objects(MapLayer.CROSSWALK), [], [[] for _ in map_api.objects(MapLayer.CROSSWALK)]
        ),
        _polygon_table(
            "carpark_areas",
            map_api.objects(MapLayer.CARPARK_AREA),
            [],
            [[] for _ in map_api.objects(MapLayer.CARPARK_AREA)],
        ),
        *(Table(name, [], [], "POLYGON", []) for name in EMPTY_POLYGON_TABLES),
        meta_table(epsg),
    ]
    return tables


def meta_table(epsg: int) -> Table:
    """The ``meta`` attributes table naming the projected reference system."""
    return Table("meta", [("key", "TEXT"), ("value", "TEXT")], [["projectedCoordSystem", f"EPSG:{epsg}"]])


def write_map_root(
    map_root: str | os.PathLike[str], map_api: Map, location: str = DEFAULT_LOCATION, epsg: int = DEFAULT_EPSG
) -> Path:
    """Install ``map_api`` as ``location`` under a nuPlan map root (with stubs for the other locations).

    Returns:
        The written ``map.gpkg``.
    """
    if location not in MAP_LOCATIONS:
        raise ValueError(f"write_map_root: location {location!r} is not one of nuPlan's {list(MAP_LOCATIONS)}")
    root = Path(map_root)
    path = root / location / GPKG_VERSION / "map.gpkg"
    write_geopackage(path, map_tables(map_api, epsg), epsg)
    for other in MAP_LOCATIONS:
        if other != location:
            stub = [Table("lane_connectors", [], [], "LINESTRING", []), meta_table(epsg)]
            write_geopackage(root / other / GPKG_VERSION / "map.gpkg", stub, epsg)
    write_json(root / f"{MAP_VERSION}.json", {loc: {"version": GPKG_VERSION} for loc in MAP_LOCATIONS})
    (root / ".maplocks").mkdir(exist_ok=True)  # nuPlan's map database creates it; a read-only root needs it
    return path


# ---------------------------------------------------------------------------------------------- reading
def map_path(map_root: str | os.PathLike[str], location: str, map_version: str = MAP_VERSION) -> Path:
    """The ``map.gpkg`` of ``location`` named by the map root's version file.

    Raises:
        FileNotFoundError / DataFormatError: naming the file when the version file or entry is missing.
    """
    root = Path(map_root)
    index_path = root / f"{map_version}.json"
    index = read_json(index_path)
    if not isinstance(index, dict) or location not in index or "version" not in index[location]:
        raise DataFormatError(f"{index_path}: no version entry for location {location!r}")
    return root / location / str(index[location]["version"]) / "map.gpkg"


def _projector(gpkg: GeoPackage, table: str, target: str) -> Callable[[BaseGeometry], BaseGeometry]:
    srs = gpkg.table_srs(table)
    if srs is None or f"{srs[0]}:{srs[1]}" == target.upper():
        return lambda g: g
    if srs[1] <= 0:
        raise DataFormatError(f"{gpkg.path}: table {table} has an undefined reference system")
    try:
        import pyproj
    except ImportError:
        raise DataFormatError(
            f"{gpkg.path}: table {table} is stored in {srs[0]}:{srs[1]}, the map in {target}; reprojecting needs "
            "pyproj: pip install 'irl-vla[navsim]'"
        ) from None
    transformer = pyproj.Transformer.from_crs(f"{srs[0]}:{srs[1]}", target, always_xy=True)
    return lambda g: shapely.transform(g, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


class _Reader:
    """Tables of one GeoPackage, reprojected into the map's metres."""

    def __init__(self, gpkg: GeoPackage) -> None:
        self.gpkg = gpkg
        meta = gpkg.read("meta") if gpkg.has_table("meta") else None
        crs = None
        if meta is not None:
            for key, value in zip(meta.columns.get("key", []), meta.columns.get("value", []), strict=True):
                if key == "projectedCoordSystem":
                    crs = str(value)
        if crs is None:
            raise DataFormatError(f"{gpkg.path}: table meta has no projectedCoordSystem")
        self.crs = crs

    def table(self, name: str, required: bool = True) -> LayerData:
        if not self.gpkg.has_table(name):
            if required:
                raise DataFormatError(f"{self.gpkg.path}: nuPlan map table {name!r} is missing")
            return LayerData([], {}, [], None)
        data = self.gpkg.read(name)
        if data.geometries is not None:
            project = _projector(self.gpkg, name, self.crs)
            data.geometries = [project(g) for g in data.geometries]
        return data

    def column(self, data: LayerData, table: str, name: str) -> list[Any]:
        if name not in data.columns:
            raise DataFormatError(f"{self.gpkg.path}: table {table} lacks column {name!r}")
        return data.columns[name]


def _polygon(geom: BaseGeometry, where: str) -> Polygon:
    if isinstance(geom, MultiPolygon):  # keep the largest part
        geom = max(geom.geoms, key=lambda g: g.area)
    if not isinstance(geom, Polygon) or geom.is_empty:
        raise DataFormatError(f"{where}: expected a polygon, got {geom.geom_type}")
    if not geom.is_valid:
        fixed = shapely.make_valid(geom)
        geom = fixed if isinstance(fixed, Polygon) else max(getattr(fixed, "geoms", [geom]), key=lambda g: g.area)
    return geom


def _id(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or int(value) == NO_ID:
        return None
    return str(int(value))


def _ids(text: Any) -> list[str]:
    if text is None:
        return []
    return [str(int(float(t))) for t in str(text).replace(" ", "").split(",") if t]


def _speed(value: Any) -> float | None:
    if value is None or not np.isfinite(float(value)) or float(value) <= 0:
        return None
    return float(value)


def _centerline(line: BaseGeometry, where: str) -> np.ndarray:
    xy = np.asarray(line.coords, dtype=np.float64)[:, :2]
    if len(xy) < 2:
        raise DataFormatError(f"{where}: baseline path has fewer than 2 points")
    return np.column_stack([xy, headings_from_path(xy)])


def _links(
    fids: list[int], sources: list[Any], targets: list[Any]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``(incoming, outgoing)`` connector ids by object id, from a connector table's source and target columns."""
    incoming: dict[str, list[str]] = defaultdict(list)
    outgoing: dict[str, list[str]] = defaultdict(list)
    for fid, source, target in zip(fids, sources, targets, strict=True):
        outgoing[str(_id(source))].append(str(fid))
        incoming[str(_id(target))].append(str(fid))
    return incoming, outgoing


def _turn(centerline: np.ndarray) -> str:
    change = float(np.angle(np.exp(1j * (centerline[-1, SE2Index.HEADING] - centerline[0, SE2Index.HEADING]))))
    if abs(change) < STRAIGHT_LIMIT:
        return "straight"
    if abs(change) > U_TURN_LIMIT:
        return "u_turn"
    return "left" if change > 0 else "right"


def read_map(path: str | os.PathLike[str], name: str | None = None) -> Map:
    """The suite's map of one nuPlan ``map.gpkg``.

    Raises:
        FileNotFoundError: when the file is missing.
        DataFormatError: naming the file, table, column or feature that does not fit nuPlan's schema.
    """
    path = Path(path)
    with GeoPackage(path) as gpkg:
        r = _Reader(gpkg)
        lanes_t = r.table("lanes_polygons")
        conns_t = r.table("lane_connectors")
        conn_polys_t = r.table("gen_lane_connectors_scaled_width_polygons")
        baselines_t = r.table("baseline_paths")
        bounds_t = r.table("boundaries")
        blocks_t = r.table("lane_groups_polygons")
        block_conns_t = r.table("lane_group_connectors")
        inter_t = r.table("intersections")
        stops_t = r.table("stop_polygons")
        cross_t = r.table("crosswalks", required=False)
        carpark_t = r.table("carpark_areas", required=False)

    where = str(path)
    boundary = dict(zip(bounds_t.fids, bounds_t.geometries or [], strict=True))
    lane_line: dict[str, BaseGeometry] = {}
    conn_line: dict[str, BaseGeometry] = {}
    lane_col = r.column(baselines_t, "baseline_paths", "lane_fid")
    conn_col = r.column(baselines_t, "baseline_paths", "lane_connector_fid")
    for lane_fid, conn_fid, geom in zip(lane_col, conn_col, baselines_t.geometries or [], strict=True):
        if _id(lane_fid) is not None:
            lane_line[str(_id(lane_fid))] = geom
        elif _id(conn_fid) is not None:
            conn_line[str(_id(conn_fid))] = geom

    def edge(fid: Any) -> np.ndarray:
        key = _id(fid)
        if key is None or int(key) not in boundary:
            return np.zeros((0, 2))
        return np.asarray(boundary[int(key)].coords, dtype=np.float64)[:, :2]

    exit_col = r.column(conns_t, "lane_connectors", "exit_lane_fid")
    entry_col = r.column(conns_t, "lane_connectors", "entry_lane_fid")
    incoming, outgoing = _links(conns_t.fids, exit_col, entry_col)

    objects: list[MapObject] = []
    lanes_by_block: dict[str, list[tuple[int, str]]] = defaultdict(list)
    lane_blocks = r.column(lanes_t, "lanes_polygons", "lane_group_fid")
    lane_index = lanes_t.optional("lane_index", 0)
    lefts, rights = lanes_t.optional("left_boundary_fid"), lanes_t.optional("right_boundary_fid")
    lane_speeds = lanes_t.optional("speed_limit_mps")
    for k, fid in enumerate(lanes_t.fids):
        lid = str(fid)
        obj_where = f"{where}: lanes_polygons fid {fid}"
        if lid not in lane_line:
            raise DataFormatError(f"{obj_where}: no baseline_paths row with lane_fid {fid}")
        block = _id(lane_blocks[k])
        if block is None:
            raise DataFormatError(f"{obj_where}: lane_group_fid is empty")
        index = int(lane_index[k] or 0)
        lanes_by_block[block].append((index, lid))
        objects.append(
            Lane(
                lid,
                _polygon(lanes_t.geometries[k], obj_where),  # type: ignore[index]
                centerline=_centerline(lane_line[lid], obj_where),
                left_boundary=edge(lefts[k]),
                right_boundary=edge(rights[k]),
                speed_limit=_speed(lane_speeds[k]),
                roadblock_id=block,
                incoming_ids=incoming.get(lid, []),
                outgoing_ids=outgoing.get(lid, []),
                lane_index=index,
            )
        )

    conn_poly = {}
    conn_edges = {}
    pcol = r.column(conn_polys_t, "gen_lane_connectors_scaled_width_polygons", "lane_connector_fid")
    poly_lefts, poly_rights = conn_polys_t.optional("left_boundary_fid"), conn_polys_t.optional("right_boundary_fid")
    for k, conn_fid in enumerate(pcol):
        conn_poly[str(_id(conn_fid))] = conn_polys_t.geometries[k]  # type: ignore[index]
        conn_edges[str(_id(conn_fid))] = (poly_lefts[k], poly_rights[k])
    conns_by_block: dict[str, list[str]] = defaultdict(list)
    conn_speeds = conns_t.optional("speed_limit_mps")
    conn_stops = conns_t.optional("traffic_light_stop_line_fids", "")
    conn_inters = conns_t.optional("intersection_fid")
    block_conn_col = r.column(conns_t, "lane_connectors", "lane_group_connector_fid")
    for k, fid in enumerate(conns_t.fids):
        cid = str(fid)
        obj_where = f"{where}: lane_connectors fid {fid}"
        line = conn_line.get(cid, conns_t.geometries[k])  # type: ignore[index]
        if cid not in conn_poly:
            raise DataFormatError(f"{obj_where}: no row in gen_lane_connectors_scaled_width_polygons")
        block = _id(block_conn_col[k])
        if block is None:
            raise DataFormatError(f"{obj_where}: lane_group_connector_fid is empty")
        conns_by_block[block].append(cid)
        centerline = _centerline(line, obj_where)
        left, right = conn_edges[cid]
        objects.append(
            LaneConnector(
                cid,
                _polygon(conn_poly[cid], obj_where),
                centerline=centerline,
                left_boundary=edge(left),
                right_boundary=edge(right),
                speed_limit=_speed(conn_speeds[k]),
                roadblock_id=block,
                incoming_ids=[str(_id(exit_col[k]))],
                outgoing_ids=[str(_id(entry_col[k]))],
                stop_line_ids=_ids(conn_stops[k]),
                intersection_id=_id(conn_inters[k]),
                turn=_turn(centerline),
            )
        )

    from_col = r.column(block_conns_t, "lane_group_connectors", "from_lane_group_fid")
    to_col = r.column(block_conns_t, "lane_group_connectors", "to_lane_group_fid")
    block_in, block_out = _links(block_conns_t.fids, from_col, to_col)
    for k, fid in enumerate(blocks_t.fids):
        bid = str(fid)
        objects.append(
            Roadblock(
                bid,
                _polygon(blocks_t.geometries[k], f"{where}: lane_groups_polygons fid {fid}"),  # type: ignore[index]
                lane_ids=[lid for _, lid in sorted(lanes_by_block.get(bid, []))],
                incoming_ids=block_in.get(bid, []),
                outgoing_ids=block_out.get(bid, []),
            )
        )
    inter_col = block_conns_t.optional("intersection_fid")
    for k, fid in enumerate(block_conns_t.fids):
        objects.append(
            RoadblockConnector(
                str(fid),
                _polygon(block_conns_t.geometries[k], f"{where}: lane_group_connectors fid {fid}"),  # type: ignore[index]
                lane_ids=conns_by_block.get(str(fid), []),
                incoming_ids=[str(_id(from_col[k]))],
                outgoing_ids=[str(_id(to_col[k]))],
                intersection_id=_id(inter_col[k]),
            )
        )
    types = inter_t.optional("intersection_type_fid", 0)
    for k, fid in enumerate(inter_t.fids):
        kind = int(types[k]) if types[k] is not None else 0
        objects.append(
            Intersection(
                str(fid),
                _polygon(inter_t.geometries[k], f"{where}: intersections fid {fid}"),  # type: ignore[index]
                IntersectionType(kind) if kind in IntersectionType._value2member_map_ else IntersectionType.DEFAULT,
            )
        )
    # a stop line governs the connectors that name it (and those its own row lists, in exported maps)
    governed: dict[str, list[str]] = defaultdict(list)
    for obj in objects:
        if isinstance(obj, LaneConnector):
            for sid in obj.stop_line_ids:
                governed[sid].append(obj.id)
    stop_types = stops_t.optional("stop_polygon_type_fid", int(StopLineType.UNKNOWN))
    listed = stops_t.columns.get("lane_connector_fids")
    for k, fid in enumerate(stops_t.fids):
        kind = int(stop_types[k]) if stop_types[k] is not None else int(StopLineType.UNKNOWN)
        ids = _ids(listed[k]) if listed is not None else governed.get(str(fid), [])
        objects.append(
            StopLine(
                str(fid),
                _polygon(stops_t.geometries[k], f"{where}: stop_polygons fid {fid}"),  # type: ignore[index]
                StopLineType(kind) if kind in StopLineType._value2member_map_ else StopLineType.UNKNOWN,
                ids,
            )
        )
    for table, cls in ((cross_t, Crosswalk), (carpark_t, CarparkArea)):
        for k, fid in enumerate(table.fids):
            objects.append(cls(str(fid), _polygon(table.geometries[k], f"{where}: {cls.__name__} fid {fid}")))  # type: ignore[index, call-arg]
    objects, dropped = drop_dangling(objects)
    if dropped:
        warnings.warn(
            f"{where}: dropped {len(dropped)} references to objects the map does not have, e.g. {dropped[:3]}",
            stacklevel=2,
        )
    try:
        return Map(name or path.parent.parent.name, objects)
    except ValueError as e:
        raise DataFormatError(f"{where}: {e}") from None


_OPTIONAL_ID_FIELDS = ("intersection_id",)


def drop_dangling(objects: list[MapObject]) -> tuple[list[MapObject], list[str]]:
    """Objects with references to missing objects removed (real maps are not always consistent).

    List references (successors, lanes of a block, stop lines, light ids) lose the missing ids, a missing
    intersection becomes none, and a lane or connector whose roadblock is missing is dropped (and with it the
    references to it), until nothing refers to a missing object.

    Returns:
        ``(objects, dropped)``: the cleaned objects and a description of each dropped reference.
    """
    dropped: list[str] = []
    while True:
        present = {(o.layer, o.id) for o in objects}
        kept, changed = [], False
        for obj in objects:
            changes: dict[str, Any] = {}
            remove = False
            for field_name, (layers, ids) in obj.references().items():
                missing = [i for i in ids if not any((layer, i) in present for layer in layers)]
                if not missing:
                    continue
                dropped += [f"{obj.layer.value} {obj.id}.{field_name} -> {i}" for i in missing]
                value = getattr(obj, field_name)
                if isinstance(value, list):
                    changes[field_name] = [i for i in value if i not in missing]
                elif field_name in _OPTIONAL_ID_FIELDS:
                    changes[field_name] = None
                else:  # a required link (the roadblock of a lane): the object cannot stand
                    remove = True
            changed |= remove or bool(changes)
            if not remove:
                kept.append(dataclasses.replace(obj, **changes) if changes else obj)
        objects = kept
        if not changed:
            return objects, dropped
