"""Leaderboard 2.x route files: read and write ``<routes><route id town>`` with waypoints, weathers and scenarios.

A route file holds ``<route id=".." town="..">`` elements, each with ``<weathers>`` (``<weather route_percentage=..
cloudiness=.. ../>``, interpolated along the route by the leaderboard), ``<waypoints>`` (``<position x y z/>``
keypoints in CARLA coordinates) and ``<scenarios>`` (``<scenario name type>`` with a ``<trigger_point x y z
yaw/>``, optional ``<other_actor ../>`` and free parameter elements such as ``<distance value="40"/>``). Values
stay in CARLA's frame here (the file's frame); ``coordinates`` converts where the suite needs them.

Writing is atomic, and reading what was written gives equal objects. Bad input raises ``DataFormatError`` naming
the file and the route.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from irl_vla.common.io import DataFormatError, atomic_open


@dataclass(frozen=True)
class Element:
    """A free XML element of a scenario (``<distance value="40"/>``, ``<other_actor .../>``): tag and attributes."""

    tag: str
    attributes: tuple[tuple[str, str], ...] = ()

    def get(self, name: str, default: str | None = None) -> str | None:
        """An attribute's value."""
        return dict(self.attributes).get(name, default)


@dataclass(frozen=True)
class Weather:
    """A weather keyframe at ``route_percentage`` [%] of the route.

    ``parameters`` are CARLA's ``WeatherParameters`` fields (``cloudiness``, ``precipitation``, ...).
    """

    route_percentage: float
    parameters: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A scenario of a route: its trigger point (CARLA x, y, z [m], yaw [deg]) and its elements."""

    name: str
    type: str
    trigger: tuple[float, float, float, float]
    elements: tuple[Element, ...] = ()


@dataclass(frozen=True)
class RouteSpec:
    """One leaderboard route: keypoints ``(x, y, z)`` in CARLA coordinates [m], weathers and scenarios."""

    route_id: str
    town: str
    waypoints: tuple[tuple[float, float, float], ...]
    weathers: tuple[Weather, ...] = ()
    scenarios: tuple[Scenario, ...] = field(default_factory=tuple)


def _float(element: ET.Element, name: str, where: str) -> float:
    value = element.get(name)
    if value is None:
        raise DataFormatError(f"{where}: <{element.tag}> has no attribute {name!r}")
    try:
        return float(value)
    except ValueError:
        raise DataFormatError(f"{where}: <{element.tag} {name}={value!r}> is not a number") from None


def _route(element: ET.Element, source: str) -> RouteSpec:
    route_id = element.get("id")
    if route_id is None:
        raise DataFormatError(f"{source}: a <route> has no id")
    where = f"{source}: route {route_id}"
    town = element.get("town")
    if not town:
        raise DataFormatError(f"{where}: no town")
    positions = element.findall("./waypoints/position")
    if len(positions) < 2:
        raise DataFormatError(f"{where}: expected at least 2 <waypoints><position/>, got {len(positions)}")
    waypoints = tuple(tuple(_float(p, axis, where) for axis in "xyz") for p in positions)
    weathers = []
    for w in element.findall("./weathers/weather"):
        params = tuple((k, _float(w, k, where)) for k in w.attrib if k != "route_percentage")
        weathers.append(Weather(_float(w, "route_percentage", where), params))
    scenarios = []
    for s in element.findall("./scenarios/scenario"):
        name, kind = s.get("name"), s.get("type")
        if not name or not kind:
            raise DataFormatError(f"{where}: a <scenario> needs name and type, got {dict(s.attrib)}")
        trigger = s.find("trigger_point")
        if trigger is None:
            raise DataFormatError(f"{where}: scenario {name} has no <trigger_point>")
        tp = tuple(_float(trigger, a, f"{where} scenario {name}") for a in ("x", "y", "z", "yaw"))
        elements = tuple(Element(c.tag, tuple(c.attrib.items())) for c in s if c.tag != "trigger_point")
        scenarios.append(Scenario(name, kind, tp, elements))  # type: ignore[arg-type]
    return RouteSpec(route_id, town, waypoints, tuple(weathers), tuple(scenarios))  # type: ignore[arg-type]


def read_routes(path: str | Path) -> list[RouteSpec]:
    """All routes of a leaderboard 2.x route file, in file order.

    Raises:
        DataFormatError: naming the file (and route) for malformed XML, missing fields or duplicate ids.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise DataFormatError(f"{path}: not a readable route XML ({err})") from err
    if root.tag != "routes":
        raise DataFormatError(f"{path}: expected a <routes> root, got <{root.tag}>")
    routes = [_route(r, str(path)) for r in root.findall("route")]
    ids = [r.route_id for r in routes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DataFormatError(f"{path}: duplicate route ids {duplicates}")
    return routes


def _fmt(value: float) -> str:
    return repr(float(value))


def routes_to_xml(routes: list[RouteSpec]) -> str:
    """The route file text of ``routes``."""
    root = ET.Element("routes")
    for r in routes:
        route = ET.SubElement(root, "route", id=r.route_id, town=r.town)
        weathers = ET.SubElement(route, "weathers")
        for w in r.weathers:
            attrib = {"route_percentage": _fmt(w.route_percentage)} | {k: _fmt(v) for k, v in w.parameters}
            ET.SubElement(weathers, "weather", attrib=attrib)
        waypoints = ET.SubElement(route, "waypoints")
        for x, y, z in r.waypoints:
            ET.SubElement(waypoints, "position", x=_fmt(x), y=_fmt(y), z=_fmt(z))
        scenarios = ET.SubElement(route, "scenarios")
        for s in r.scenarios:
            scenario = ET.SubElement(scenarios, "scenario", name=s.name, type=s.type)
            x, y, z, yaw = s.trigger
            ET.SubElement(scenario, "trigger_point", x=_fmt(x), y=_fmt(y), z=_fmt(z), yaw=_fmt(yaw))
            for e in s.elements:
                ET.SubElement(scenario, e.tag, attrib=dict(e.attributes))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_routes(path: str | Path, routes: list[RouteSpec]) -> Path:
    """Write ``routes`` as a leaderboard 2.x route file (atomically); returns the path."""
    path = Path(path)
    with atomic_open(path) as f:
        f.write(routes_to_xml(routes))
    return path


def select_routes(routes: list[RouteSpec], selection: str) -> list[RouteSpec]:
    """Routes whose ids are in ``selection`` (the leaderboard's ``"0-5,7"`` form over integer ids, or plain ids).

    Raises:
        ValueError: naming an id that no route has.
    """
    wanted: list[str] = []
    for part in (p.strip() for p in selection.split(",") if p.strip()):
        lo, sep, hi = part.partition("-")
        if sep and lo.isdigit() and hi.isdigit():
            wanted.extend(str(i) for i in range(int(lo), int(hi) + 1))
        else:
            wanted.append(part)
    by_id = {r.route_id: r for r in routes}
    missing = [w for w in wanted if w not in by_id]
    if missing:
        raise ValueError(f"select_routes: no route with id {missing} (have {sorted(by_id)})")
    return [by_id[w] for w in wanted]
