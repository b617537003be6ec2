"""Leaderboard 2.x route XML: read a fixture in the leaderboard's format, write, read back equal."""

from __future__ import annotations

from pathlib import Path

import pytest

from irl_vla.common.io import DataFormatError
from sim_bridges.carla.routes import read_routes, routes_to_xml, select_routes, write_routes

FIXTURE = Path(__file__).parent / "fixtures" / "routes_lb2.xml"


def test_fixture_is_read_with_waypoints_weathers_and_scenarios() -> None:
    routes = read_routes(FIXTURE)
    assert [r.route_id for r in routes] == ["0", "1"]
    first = routes[0]
    assert first.town == "Town12"
    assert first.waypoints[0] == (-508.2, 3218.6, 365.5) and len(first.waypoints) == 3
    assert [w.route_percentage for w in first.weathers] == [0.0, 100.0]
    assert dict(first.weathers[1].parameters)["precipitation"] == 20.0
    left_turn = first.scenarios[1]
    assert (left_turn.name, left_turn.type) == ("SignalizedJunctionLeftTurn_2", "SignalizedJunctionLeftTurn")
    assert left_turn.trigger == (-462.1, 3218.9, 364.8, 0.2)
    interval = next(e for e in left_turn.elements if e.tag == "source_dist_interval")
    assert (interval.get("from"), interval.get("to")) == ("25", "50")
    assert routes[1].scenarios == ()


def test_write_then_read_is_the_identity(tmp_path: Path) -> None:
    routes = read_routes(FIXTURE)
    out = write_routes(tmp_path / "out.xml", routes)
    again = read_routes(out)
    assert again == routes
    assert routes_to_xml(again) == out.read_text()


def test_selection_by_ranges_and_ids() -> None:
    routes = read_routes(FIXTURE)
    assert [r.route_id for r in select_routes(routes, "0-1")] == ["0", "1"]
    assert [r.route_id for r in select_routes(routes, "1")] == ["1"]
    with pytest.raises(ValueError, match=r"\['7'\]"):
        select_routes(routes, "0,7")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<routes><route town='T'><waypoints/></route></routes>", "no id"),
        (
            "<routes><route id='3' town='T'><waypoints><position x='1' y='2' z='0'/></waypoints></route></routes>",
            "route 3: expected at least 2",
        ),
        (
            "<routes><route id='4' town='T'><waypoints><position x='a' y='2' z='0'/><position x='1' y='2' z='0'/>"
            "</waypoints></route></routes>",
            "route 4: <position x='a'> is not a number",
        ),
        (
            "<routes><route id='5' town='T'><waypoints><position x='1' y='2' z='0'/><position x='1' y='3' z='0'/>"
            "</waypoints><scenarios><scenario name='A' type='B'/></scenarios></route></routes>",
            "scenario A has no",
        ),
        ("<notroutes/>", "expected a <routes> root"),
        ("<routes><route", "not a readable route XML"),
    ],
)
def test_bad_files_name_the_file_and_route(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(DataFormatError, match="bad.xml") as err:
        read_routes(path)
    assert message in str(err.value)
