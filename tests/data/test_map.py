"""Map model on a hand-built T-junction: containment, radius queries, routes, references, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import box

from irl_vla.common.io import DataFormatError
from irl_vla.data.map import Crosswalk, Lane, Map, MapLayer, load_map, save_map
from irl_vla.data.map.map_builder import lane_geometry, offset_polyline, straight_path
from tests.fixtures import build_t_junction


@pytest.fixture(scope="module")
def t_map() -> Map:
    return build_t_junction()


def test_lanes_containing_a_point(t_map: Map) -> None:
    assert [ln.id for ln in t_map.lanes_containing((-30.0, -1.75))] == ["w_in_0"]
    assert [ln.id for ln in t_map.lanes_containing((-30.0, -5.25))] == ["w_in_1"]
    assert [ln.id for ln in t_map.lanes_containing((-30.0, 1.75))] == ["w_out_0"]
    assert t_map.lanes_containing((-30.0, 20.0)) == []
    assert [ln.id for ln in t_map.lanes_containing((1.75, -30.0))] == ["s_in_0"]
    # Inside the intersection several connectors overlap.
    inside = {ln.id for ln in t_map.lanes_containing((0.0, -1.75))}
    assert "c_w_e_0" in inside and all(i.startswith("c_") for i in inside)


def test_containment_is_strict_and_layered(t_map: Map) -> None:
    assert t_map.is_in_layer((0.0, 0.0), MapLayer.INTERSECTION)
    assert not t_map.is_in_layer((10.0, 0.0), MapLayer.INTERSECTION)  # on the boundary: not contained
    assert t_map.is_in_layer((-30.0, -3.0), MapLayer.ROADBLOCK)
    assert not t_map.is_in_layer((-30.0, -8.0), MapLayer.ROADBLOCK)
    assert [o.id for o in t_map.objects_containing((12.0, 0.0), MapLayer.CROSSWALK)] == ["cw_e"]


def test_radius_query(t_map: Map) -> None:
    near = t_map.query_radius((-30.0, -1.75), 3.0, [MapLayer.LANE, MapLayer.INTERSECTION])
    assert {o.id for o in near[MapLayer.LANE]} == {"w_in_0", "w_in_1", "w_out_0"}
    assert near[MapLayer.INTERSECTION] == []
    far = t_map.query_radius((-30.0, -1.75), 25.0, [MapLayer.INTERSECTION, MapLayer.STOP_LINE])
    assert [o.id for o in far[MapLayer.INTERSECTION]] == ["int"]
    assert [o.id for o in far[MapLayer.STOP_LINE]] == ["stop_w"]  # stop_s is about 31 m away
    farther = t_map.query_radius((-30.0, -1.75), 35.0, [MapLayer.STOP_LINE])
    assert [o.id for o in farther[MapLayer.STOP_LINE]] == ["stop_w", "stop_s"]


def test_graph_links(t_map: Map) -> None:
    lane = t_map.get_lane("w_in_1")
    assert sorted(lane.outgoing_ids) == ["c_w_e_1", "c_w_s"]
    conn = t_map.get_lane("c_s_w")
    assert conn.incoming_ids == ["s_in_0"] and conn.outgoing_ids == ["w_out_0"] and conn.turn == "left"
    assert t_map.get(MapLayer.STOP_LINE, "stop_w").lane_connector_ids == ["c_w_e_0", "c_w_e_1", "c_w_s"]
    assert t_map.get(MapLayer.ROADBLOCK, "w_in").lane_ids == ["w_in_0", "w_in_1"]
    with pytest.raises(KeyError, match="no lane with id 'nope'"):
        t_map.get(MapLayer.LANE, "nope")


def test_route_to_lane_sequence_and_centerline(t_map: Map) -> None:
    route = ["s_in", "rbc_s_w", "w_out"]
    start = np.array([1.75, -40.0, np.pi / 2])
    assert t_map.route_lane_sequence(route, start) == ["s_in_0", "c_s_w", "w_out_0"]
    line = t_map.route_centerline(route, start)
    np.testing.assert_allclose(line[0, :2], [1.75, -60.0])
    np.testing.assert_allclose(line[-1], [-60.0, 1.75, np.pi], atol=1e-9)
    assert np.all(np.linalg.norm(np.diff(line[:, :2], axis=0), axis=1) > 0)  # no duplicate joints
    # Straight through in the right lane stays in the right lane.
    seq = t_map.route_lane_sequence(["w_in", "rbc_w_e", "e_out"], np.array([-40.0, -5.25, 0.0]))
    assert seq == ["w_in_1", "c_w_e_1", "e_out_1"]
    # A right turn needs the right lane; from the left lane the route cannot be followed past w_in.
    assert t_map.route_lane_sequence(["w_in", "rbc_w_s", "s_out"], np.array([-40.0, -1.75, 0.0])) == ["w_in_0"]
    # Off-road start: nearest route lane.
    assert t_map.route_lane_sequence(["w_in"], np.array([-40.0, -12.0, 0.0])) == ["w_in_1"]


def test_dangling_references_and_duplicates_are_refused(t_map: Map) -> None:
    objs = t_map.all_objects()
    with pytest.raises(ValueError, match="duplicate crosswalk id 'cw_e'"):
        Map("x", [*objs, Crosswalk("cw_e", box(0, 0, 1, 1))])
    c, left, right, poly = lane_geometry(straight_path(np.array([0, 0]), np.array([10, 0])), 3.5)
    orphan = Lane("orphan", poly, c, left, right, 10.0, "no_such_block")
    with pytest.raises(ValueError, match="lane 'orphan' field 'roadblock_id' refers to unknown roadblock id"):
        Map("x", [*objs, orphan])


def test_save_load_round_trip_is_exact(t_map: Map, tmp_path: Path) -> None:
    path = tmp_path / "maps" / "t.json"
    save_map(t_map, path)
    loaded = load_map(path)
    assert loaded == t_map
    for obj in t_map.all_objects():
        other = loaded.get(obj.layer, obj.id)
        assert type(other) is type(obj)
        assert other.polygon.equals_exact(obj.polygon, tolerance=0.0)
        if hasattr(obj, "centerline"):
            assert np.array_equal(other.centerline, obj.centerline)
            assert np.array_equal(other.left_boundary, obj.left_boundary)
    assert (
        loaded.get(MapLayer.INTERSECTION, "int").intersection_type
        == t_map.get(MapLayer.INTERSECTION, "int").intersection_type
    )
    assert loaded.route_lane_sequence(["s_in", "rbc_s_w", "w_out"], np.array([1.75, -40.0, np.pi / 2])) == [
        "s_in_0",
        "c_s_w",
        "w_out_0",
    ]


def test_load_errors_name_file_and_object(t_map: Map, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    with pytest.raises(FileNotFoundError, match="t.json"):
        load_map(path)
    path.write_text('{"format": "irl_vla.map", "vers')
    with pytest.raises(DataFormatError, match=r"t.json: not valid JSON"):
        load_map(path)
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataFormatError, match="t.json: not an irl_vla.map file"):
        load_map(path)
    save_map(t_map, path)
    data = json.loads(path.read_text())
    data["layers"]["lane"][2]["centerline"][1][0] = None
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"t.json: lane 'w_out_0': .*centerline"):
        load_map(path)
    save_map(t_map, path)
    data = json.loads(path.read_text())
    del data["layers"]["lane"][0]["polygon"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"lane 'w_in_0': missing field 'polygon'"):
        load_map(path)
    save_map(t_map, path)
    data = json.loads(path.read_text())
    data["layers"]["lane"] = [la for la in data["layers"]["lane"] if la.get("id") != "w_in_0"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match="refers to unknown lane id 'w_in_0'"):
        load_map(path)


def test_offset_polyline_keeps_distance_around_corners() -> None:
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])
    left = offset_polyline(xy, 1.0)
    np.testing.assert_allclose(left[0], [0.0, 1.0])
    np.testing.assert_allclose(left[1], [9.0, 1.0], atol=1e-9)  # inner corner of a left turn
    np.testing.assert_allclose(left[2], [9.0, 10.0], atol=1e-9)


def test_array_fields_are_decoded_under_a_pep695_ndarray_alias() -> None:
    # numpy >= 2.3 on Python >= 3.12 defines ``NDArray`` as a ``type`` alias, so ``get_origin(NDArray[...])`` is the
    # alias, not ``np.ndarray``: map files then failed to load there ("Lane.centerline: expected a numpy array").
    import typing

    import typing_extensions

    from irl_vla.data.map.map_io import _array_or

    scalar = typing.TypeVar("scalar")
    alias = typing_extensions.TypeAliasType(
        "NDArray", np.ndarray[tuple[int, ...], np.dtype[scalar]], type_params=(scalar,)
    )
    assert _array_or(alias[np.float64]) is np.ndarray
    assert _array_or(int | None) == int | None


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ({"exterior": [], "interiors": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]]}, "holes but no exterior"),
        ({"exterior": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]}, "'interiors'"),
        ({"exterior": [1.0, 2.0], "interiors": []}, r"shape \(2,\)"),
        ({"exterior": [[0.0, 0.0], [1.0, 0.0]], "interiors": []}, "linearring requires"),  # too few points
        ({"exterior": [[float("nan"), 0.0], [1.0, 0.0], [1.0, 1.0]], "interiors": []}, "closed linestring"),  # GEOS
    ],
)
def test_malformed_polygons_name_file_and_object(t_map: Map, tmp_path: Path, polygon: dict, message: str) -> None:
    path = tmp_path / "t.json"
    save_map(t_map, path)
    doc = json.loads(path.read_text())
    doc["layers"]["lane"][0]["polygon"] = polygon
    path.write_text(json.dumps(doc))
    lane = doc["layers"]["lane"][0]["id"]
    with pytest.raises(DataFormatError, match=rf"t.json: lane '{lane}': .*{message}"):
        load_map(path)
