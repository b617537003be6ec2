"""nuPlan GeoPackage maps: a hand-made map in nuPlan's schema read right, and embedded maps round-tripped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import LineString, Polygon, box

from irl_vla.common.io import DataFormatError
from irl_vla.data.map import LaneConnector, MapLayer, StopLine, StopLineType
from sim_bridges.embedded.road_network import RoadNetwork, build_corridor, build_intersection
from sim_bridges.navsim.gpkg import GeoPackage, Table, write_geopackage
from sim_bridges.navsim.nuplan_map import MAP_LOCATIONS, map_path, read_map, write_map_root

pyproj = pytest.importorskip("pyproj")  # the `navsim` extra: real maps are stored in lon/lat
ORIGIN = np.array([664777.8, 3999698.4])  # a Las Vegas position in EPSG:32611 [m]


def _lonlat(geom: object) -> object:
    """A geometry given in local metres, as lon/lat of (ORIGIN + local) in UTM zone 11N."""
    import shapely

    to_wgs = pyproj.Transformer.from_crs("EPSG:32611", "EPSG:4326", always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(to_wgs.transform(*(xy + ORIGIN).T)))


def _lane(y: float, x0: float, x1: float) -> tuple[Polygon, LineString, LineString, LineString]:
    return (
        box(x0, y - 1.75, x1, y + 1.75),
        LineString([(x0, y), (x1, y)]),
        LineString([(x0, y + 1.75), (x1, y + 1.75)]),
        LineString([(x0, y - 1.75), (x1, y - 1.75)]),
    )


def write_fixture(path: Path) -> None:
    """Two roadblocks of two lanes each, joined through a signalised intersection by two lane connectors."""
    lanes = {11: (1.75, 0, 50), 12: (-1.75, 0, 50), 21: (1.75, 70, 120), 22: (-1.75, 70, 120)}
    lane_rows, lane_geoms, bounds, baselines, baseline_rows = [], [], [], [], []
    for k, (fid, (y, x0, x1)) in enumerate(lanes.items()):
        poly, centre, left, right = _lane(y, x0, x1)
        group = 1 if fid < 20 else 2
        speed = None if fid == 12 else 13.4
        lane_rows.append([fid, group, fid % 10 - 1, 101 + 2 * k, 102 + 2 * k, speed, 7, "lane"])
        lane_geoms.append(poly)
        bounds += [left, right]
        baselines.append(centre)
        baseline_rows.append([fid, None])
    connectors = {31: (11, 21, 1.75), 32: (12, 22, -1.75)}
    conn_rows, conn_lines, conn_polys, conn_poly_rows = [], [], [], []
    for fid, (src, dst, y) in connectors.items():
        line = LineString([(50, y), (60, y), (70, y)])
        conn_rows.append([src, dst, 3, None if fid == 32 else 8.0, "5", 4, 0])
        conn_lines.append(line)
        conn_polys.append(box(50, y - 1.75, 70, y + 1.75))
        conn_poly_rows.append([fid])
        baselines.append(line)
        baseline_rows.append([None, fid])
    tables = [
        Table(
            "lanes_polygons",
            [
                ("lane_fid", "INTEGER"),
                ("lane_group_fid", "INTEGER"),
                ("lane_index", "INTEGER"),
                ("left_boundary_fid", "INTEGER"),
                ("right_boundary_fid", "INTEGER"),
                ("speed_limit_mps", "REAL"),
                ("creator_id", "INTEGER"),
                ("name", "TEXT"),
            ],
            lane_rows,
            "POLYGON",
            [_lonlat(g) for g in lane_geoms],
            list(lanes),
        ),
        Table(
            "lane_connectors",
            [
                ("exit_lane_fid", "INTEGER"),
                ("entry_lane_fid", "INTEGER"),
                ("lane_group_connector_fid", "INTEGER"),
                ("speed_limit_mps", "REAL"),
                ("traffic_light_stop_line_fids", "TEXT"),
                ("intersection_fid", "INTEGER"),
                ("turn_type_fid", "INTEGER"),
            ],
            conn_rows,
            "LINESTRING",
            [_lonlat(g) for g in conn_lines],
            list(connectors),
        ),
        Table(
            "gen_lane_connectors_scaled_width_polygons",
            [("lane_connector_fid", "INTEGER")],
            conn_poly_rows,
            "POLYGON",
            [_lonlat(g) for g in conn_polys],
            [301, 302],
        ),
        Table(
            "baseline_paths",
            [("lane_fid", "INTEGER"), ("lane_connector_fid", "INTEGER")],
            baseline_rows,
            "LINESTRING",
            [_lonlat(g) for g in baselines],
            list(range(201, 201 + len(baselines))),
        ),
        Table("boundaries", [], [[]] * len(bounds), "LINESTRING", [_lonlat(g) for g in bounds], list(range(101, 109))),
        Table(
            "lane_groups_polygons",
            [],
            [[], []],
            "POLYGON",
            [_lonlat(box(0, -3.5, 50, 3.5)), _lonlat(box(70, -3.5, 120, 3.5))],
            [1, 2],
        ),
        Table(
            "lane_group_connectors",
            [("from_lane_group_fid", "INTEGER"), ("to_lane_group_fid", "INTEGER"), ("intersection_fid", "INTEGER")],
            [[1, 2, 4]],
            "POLYGON",
            [_lonlat(box(50, -3.5, 70, 3.5))],
            [3],
        ),
        Table(
            "intersections",
            [("intersection_type_fid", "INTEGER")],
            [[1]],
            "POLYGON",
            [_lonlat(box(50, -10, 70, 10))],
            [4],
        ),
        Table(
            "stop_polygons",
            [("stop_polygon_type_fid", "INTEGER")],
            [[2]],
            "POLYGON",
            [_lonlat(box(49, -3.5, 50, 3.5))],
            [5],
        ),
        Table("crosswalks", [], [[]], "POLYGON", [_lonlat(box(72, -6, 76, 6))], [6]),
        Table("carpark_areas", [], [], "POLYGON", []),
        Table("meta", [("key", "TEXT"), ("value", "TEXT")], [["projectedCoordSystem", "EPSG:32611"]]),
    ]
    write_geopackage(path, tables, 4326)


def test_a_hand_made_nuplan_map_reads_into_the_map_model(tmp_path: Path) -> None:
    path = tmp_path / "map.gpkg"
    write_fixture(path)
    amap = read_map(path, name="us-nv-las-vegas-strip")
    assert sorted(o.id for o in amap.objects(MapLayer.LANE)) == ["11", "12", "21", "22"]
    assert amap.get(MapLayer.ROADBLOCK, "1").lane_ids == ["11", "12"]  # type: ignore[attr-defined]
    conn = amap.get_lane("31")
    assert isinstance(conn, LaneConnector)
    assert conn.incoming_ids == ["11"] and conn.outgoing_ids == ["21"] and conn.roadblock_id == "3"
    assert conn.stop_line_ids == ["5"] and conn.intersection_id == "4" and conn.turn == "straight"
    assert amap.get_lane("11").outgoing_ids == ["31"] and amap.get_lane("21").incoming_ids == ["31"]
    assert amap.get_lane("32").speed_limit is None and amap.get_lane("12").speed_limit is None
    assert amap.get_lane("11").speed_limit == pytest.approx(13.4)
    stop = amap.get(MapLayer.STOP_LINE, "5")
    assert isinstance(stop, StopLine) and stop.stop_line_type is StopLineType.TRAFFIC_LIGHT
    assert sorted(stop.lane_connector_ids) == ["31", "32"]  # the traffic-light ids, from the connectors' column
    rbc = amap.get(MapLayer.ROADBLOCK_CONNECTOR, "3")
    assert rbc.incoming_ids == ["1"] and rbc.outgoing_ids == ["2"] and rbc.intersection_id == "4"  # type: ignore[attr-defined]
    # reprojected from lon/lat into the map's metres
    np.testing.assert_allclose(amap.get_lane("11").centerline[0, :2], ORIGIN + np.array([0.0, 1.75]), atol=1e-3)
    line = amap.route_centerline(["1", "3", "2"], np.array([*(ORIGIN + np.array([1.0, 1.75])), 0.0]))
    assert line[-1, 0] - ORIGIN[0] == pytest.approx(120.0, abs=1e-3)


@pytest.mark.parametrize("build", [build_intersection, lambda: build_corridor(curve_angle=0.6, drop_lane_at=150.0)])
def test_embedded_maps_round_trip_and_gdal_reads_them(tmp_path: Path, build: Callable[[], RoadNetwork]) -> None:
    amap = build().map
    path = write_map_root(tmp_path, amap)
    assert read_map(path, name=amap.name) == amap  # every object, field and array
    for location in MAP_LOCATIONS:  # the stubs nuPlan opens at start-up exist with the two tables it reads
        with GeoPackage(map_path(tmp_path, location)) as gpkg:
            assert gpkg.has_table("meta") and gpkg.has_table("lane_connectors")
    pyogrio = pytest.importorskip("pyogrio")
    info = pyogrio.read_info(path, layer="lanes_polygons")
    assert info["crs"] == "EPSG:32611" and info["features"] == len(amap.objects(MapLayer.LANE))
    _, fids, _, fields = pyogrio.raw.read(path, layer="lane_connectors", return_fids=True)
    names = list(pyogrio.read_info(path, layer="lane_connectors")["fields"])
    assert fields[names.index("exit_lane_fid")].dtype == np.int64  # id columns never turn into floats
    assert sorted(str(f) for f in fids) == sorted(o.id for o in amap.objects(MapLayer.LANE_CONNECTOR))


def test_bad_map_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "junk.gpkg").write_bytes(b"not sqlite at all" * 10)
    with pytest.raises(DataFormatError, match="junk.gpkg: not a GeoPackage"):
        read_map(tmp_path / "junk.gpkg")
    path = tmp_path / "partial.gpkg"
    write_geopackage(
        path, [Table("meta", [("key", "TEXT"), ("value", "TEXT")], [["projectedCoordSystem", "EPSG:32611"]])], 32611
    )
    with pytest.raises(DataFormatError, match="partial.gpkg: nuPlan map table 'lanes_polygons' is missing"):
        read_map(path)
    with pytest.raises(FileNotFoundError):
        read_map(tmp_path / "absent.gpkg")


def test_dangling_references_of_real_maps_are_dropped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "map.gpkg"
    write_fixture(path)
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("UPDATE lane_connectors SET traffic_light_stop_line_fids = '5,77' WHERE fid = 31")  # no stop line 77
    con.execute("UPDATE lane_group_connectors SET intersection_fid = 99")  # no intersection 99
    con.execute("UPDATE lanes_polygons SET lane_group_fid = 42 WHERE fid = 22")  # lane 22 in a missing roadblock
    con.commit()
    con.close()
    with pytest.warns(UserWarning, match="dropped 4 references"):
        amap = read_map(path)
    assert amap.get_lane("31").stop_line_ids == ["5"]  # type: ignore[attr-defined]
    assert amap.get(MapLayer.ROADBLOCK_CONNECTOR, "3").intersection_id is None  # type: ignore[attr-defined]
    assert not amap.has(MapLayer.LANE, "22") and amap.get_lane("32").outgoing_ids == []
