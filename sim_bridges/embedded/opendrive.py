"""OpenDRIVE (1.4) export of an embedded road network, so one scenario runs in the embedded world and in CARLA.

Coordinates: the xodr uses the suite's frame unchanged (x east, y north, right-handed, as OpenDRIVE is); CARLA
mirrors OpenDRIVE's y axis, so a CARLA waypoint at ``(x, y)`` is the suite point ``(x, -y)``.

What becomes what:
- a **road** per two-way (or one-way) carriageway: a corridor is one road (the ego's direction on the right,
  lanes ``-1 .. -n``; oncoming lanes on the left, ``1 .. m``); an intersection arm is one road starting at the
  junction box, outgoing lanes on the right and incoming lanes on the left. Its reference line is the boundary
  between the two directions, written as ``<line>`` pieces of the embedded polyline (collinear pieces merged).
  Road ids are the embedded roadblock ids of the right-hand (forward / outgoing) side.
- **lane sections**: a corridor with a lane drop has three: ``n`` lanes, the taper (the ending lane's width goes
  from the lane width to 0 along a cubic), ``n - 1`` lanes. Lanes are linked across sections.
- a **junction** per signalised or unsignalised intersection (its embedded intersection id), with one
  **connecting road** per lane connector (road id = connector id, one lane ``-1`` whose centre is the connector's
  centreline) and the junction's connection records (incoming road, connecting road, lane links).
- **signals**: a traffic light (type 1000001, dynamic) per signalised stop line, a yield sign (type 205) per
  yield line, on the arm road at the junction end, valid for the incoming lanes; signal id = stop-line id.

Lane centres agree with the embedded centrelines (a test parses every family with ``carla.Map`` and checks
within 0.1 m), except the ending lane inside a lane-drop taper: the embedded taper overlaps its neighbour,
which OpenDRIVE lanes cannot, so its centre there follows the narrowing lane instead.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path as FsPath

import numpy as np
import numpy.typing as npt

from irl_vla.common.io import atomic_open
from irl_vla.data.geometry import path_arc_length
from irl_vla.data.map import LaneConnector, MapLayer, StopLine, StopLineType
from sim_bridges.embedded.road_network import RoadNetwork

FloatArray = npt.NDArray[np.float64]

#: OpenDRIVE signal types written for stop lines (CARLA reads 1000001 as a traffic light).
SIGNAL_TYPE = {StopLineType.TRAFFIC_LIGHT: "1000001", StopLineType.YIELD: "205", StopLineType.STOP_SIGN: "206"}
#: Lateral distance of a signal from the outer edge of the lanes it governs [m].
SIGNAL_MARGIN = 1.0
#: The projection CARLA reads for GNSS (its default origin, lat 42 / lon 2, stated so that no warning is printed);
#: CARLA only reads it from a CDATA section, which ElementTree cannot write, hence the placeholder.
GEO_REFERENCE = "+proj=tmerc +lat_0=42.0 +lon_0=2.0 +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
GEO_REFERENCE_MARK = "@GEO_REFERENCE@"
#: Heading change [rad] below which consecutive polyline pieces are written as one ``<line>``.
COLLINEAR_TOLERANCE = 1e-9


@dataclass
class _LaneSpec:
    """One OpenDRIVE lane of a lane section."""

    lane_id: int
    width: tuple[float, float, float, float]  # cubic a, b, c, d of the width over ds [m]
    predecessor: int | None = None
    successor: int | None = None
    speed: float | None = None


@dataclass
class _Section:
    s: float
    lanes: list[_LaneSpec] = field(default_factory=list)


@dataclass
class _Road:
    road_id: str
    reference: FloatArray  # (N, 2)
    sections: list[_Section]
    junction: str = "-1"
    predecessor: tuple[str, str, str] | None = None  # (elementType, elementId, contactPoint or "")
    successor: tuple[str, str, str] | None = None
    signals: list[ET.Element] = field(default_factory=list)


def _constant(width: float) -> tuple[float, float, float, float]:
    return (width, 0.0, 0.0, 0.0)


def _lane_width(net: RoadNetwork, lane_id: str) -> float:
    lane = net.map.get_lane(lane_id)
    return float(np.linalg.norm(lane.left_boundary[0] - lane.right_boundary[0]))


def _left_edge(net: RoadNetwork, lane_id: str) -> FloatArray:
    return np.asarray(net.map.get_lane(lane_id).left_boundary, dtype=np.float64)


def _speed(net: RoadNetwork, lane_id: str) -> float | None:
    return net.map.get_lane(lane_id).speed_limit


def _corridor_roads(net: RoadNetwork) -> list[_Road]:
    """A corridor: one road, one to three lane sections (a lane drop adds the taper and the narrower part)."""
    main = net.arms["main"].in_lanes
    oncoming = net.arms["oncoming"].in_lanes if "oncoming" in net.arms else []
    after = net.arms["main_after"].in_lanes if "main_after" in net.arms else None
    pieces = [_left_edge(net, main[0])]
    if after is not None:
        taper = net.map.get_lane(main[0]).outgoing_ids[0]
        pieces += [_left_edge(net, taper)[1:], _left_edge(net, after[0])[1:]]
    reference = np.concatenate(pieces)
    left = [
        _LaneSpec(i + 1, _constant(_lane_width(net, lid)), speed=_speed(net, lid)) for i, lid in enumerate(oncoming)
    ]
    n = len(main)

    def right(lanes: list[str], count: int) -> list[_LaneSpec]:
        return [
            _LaneSpec(-(i + 1), _constant(_lane_width(net, lanes[i])), speed=_speed(net, lanes[i]))
            for i in range(count)
        ]

    sections = [_Section(0.0, left + right(main, n))]
    if after is not None:
        taper_id = net.map.get_lane(main[0]).outgoing_ids[0]
        s_taper = float(path_arc_length(_left_edge(net, main[0]))[-1])
        s_after = s_taper + float(path_arc_length(_left_edge(net, taper_id))[-1])
        span = s_after - s_taper
        w = _lane_width(net, main[-1])
        # The ending lane's width follows w (1 - 3 u^2 + 2 u^3), u = ds / span: w at the start, 0 at the end.
        taper_lanes = [*right(main, n - 1), _LaneSpec(-n, (w, 0.0, -3.0 * w / span**2, 2.0 * w / span**3))]
        for spec in taper_lanes:
            spec.speed = _speed(net, main[0])
        sections += [
            _Section(s_taper, [_copy(lane) for lane in left] + taper_lanes),
            _Section(s_after, [_copy(lane) for lane in left] + right(after, n - 1)),
        ]
    _link_sections(sections)
    return [_Road(net.map.get_lane(main[0]).roadblock_id, reference, sections)]


def _copy(lane: _LaneSpec) -> _LaneSpec:
    return _LaneSpec(lane.lane_id, lane.width, speed=lane.speed)


def _link_sections(sections: list[_Section]) -> None:
    """Link each lane to the lane of the same id in the neighbouring sections (where it exists)."""
    for prev, nxt in itertools.pairwise(sections):
        ids_prev = {lane.lane_id for lane in prev.lanes}
        ids_next = {lane.lane_id for lane in nxt.lanes}
        for lane in prev.lanes:
            lane.successor = lane.lane_id if lane.lane_id in ids_next else None
        for lane in nxt.lanes:
            lane.predecessor = lane.lane_id if lane.lane_id in ids_prev else None


def _junction_roads(net: RoadNetwork) -> tuple[list[_Road], ET.Element]:
    """An intersection: a road per arm, a connecting road per lane connector, the junction record."""
    junction_id = next(iter({c.intersection_id for c in _connectors(net)}))
    roads: list[_Road] = []
    arm_road: dict[str, str] = {}  # embedded lane id -> road id
    arm_lane: dict[str, int] = {}  # embedded lane id -> OpenDRIVE lane id
    lanes_of_road: dict[str, list[str]] = {}
    for arm in net.arms.values():
        out, inc = arm.out_lanes, arm.in_lanes
        road_id = arm.out_roadblock or arm.in_roadblock
        reference = _left_edge(net, out[0]) if out else _left_edge(net, inc[0])[::-1]
        lanes = [
            _LaneSpec(-(i + 1), _constant(_lane_width(net, lid)), speed=_speed(net, lid)) for i, lid in enumerate(out)
        ]
        lanes += [
            _LaneSpec(i + 1, _constant(_lane_width(net, lid)), speed=_speed(net, lid)) for i, lid in enumerate(inc)
        ]
        for i, lid in enumerate(out):
            arm_road[lid], arm_lane[lid] = road_id, -(i + 1)
        for i, lid in enumerate(inc):
            arm_road[lid], arm_lane[lid] = road_id, i + 1
        lanes_of_road[road_id] = list(inc)
        road = _Road(road_id, reference, [_Section(0.0, lanes)], predecessor=("junction", junction_id, ""))
        if arm.stop_line is not None:
            road.signals.append(_signal(net, arm.stop_line, inc))
        roads.append(road)
    junction = ET.Element("junction", id=junction_id, name=f"junction {junction_id}")
    for k, conn in enumerate(_connectors(net)):
        src, dst = conn.incoming_ids[0], conn.outgoing_ids[0]
        lane = _LaneSpec(-1, _constant(_lane_width(net, conn.id)), arm_lane[src], arm_lane[dst], conn.speed_limit)
        roads.append(
            _Road(
                conn.id,
                _left_edge(net, conn.id),
                [_Section(0.0, [lane])],
                junction=junction_id,
                predecessor=("road", arm_road[src], "start"),
                successor=("road", arm_road[dst], "start"),
            )
        )
        connection = ET.SubElement(
            junction, "connection", id=str(k), incomingRoad=arm_road[src], connectingRoad=conn.id, contactPoint="start"
        )
        ET.SubElement(connection, "laneLink", attrib={"from": str(arm_lane[src]), "to": "-1"})
    return roads, junction


def _connectors(net: RoadNetwork) -> list[LaneConnector]:
    return [c for c in net.map.objects(LaneConnector.layer) if isinstance(c, LaneConnector) and c.intersection_id]


def _signal(net: RoadNetwork, stop_line_id: str, incoming: list[str]) -> ET.Element:
    """The signal of one stop line, at the junction end (s = 0) of its arm road, left of the incoming lanes."""
    stop = net.map.get(MapLayer.STOP_LINE, stop_line_id)
    assert isinstance(stop, StopLine)
    dynamic = stop.stop_line_type == StopLineType.TRAFFIC_LIGHT
    t = sum(_lane_width(net, lid) for lid in incoming) + SIGNAL_MARGIN
    signal = ET.Element(
        "signal",
        s="0.0",
        t=f"{t:.4f}",
        id=stop_line_id,
        name=f"{stop.stop_line_type.name.lower()} {stop_line_id}",
        dynamic="yes" if dynamic else "no",
        orientation="-",
        zOffset="0.0",
        country="OpenDRIVE",
        type=SIGNAL_TYPE.get(stop.stop_line_type, "206"),
        subtype="-1",
        value="-1",
        height="3.0" if dynamic else "1.0",
        width="0.5",
    )
    ET.SubElement(signal, "validity", fromLane="1", toLane=str(len(incoming)))
    return signal


# ------------------------------------------------------------------------------------------------ writing
def _geometry(plan_view: ET.Element, xy: FloatArray) -> float:
    """Append ``<geometry><line/>`` pieces for the polyline ``xy`` (N, 2); returns its length [m]."""
    d = np.diff(xy, axis=0)  # (N - 1, 2)
    seg = np.hypot(d[:, 0], d[:, 1])
    keep = seg > 1e-6
    starts, d, seg = xy[:-1][keep], d[keep], seg[keep]
    headings = np.arctan2(d[:, 1], d[:, 0])
    s = 0.0
    k = 0
    while k < len(seg):
        j = k + 1
        while j < len(seg) and abs(math.remainder(headings[j] - headings[k], 2 * math.pi)) < COLLINEAR_TOLERANCE:
            j += 1
        length = float(seg[k:j].sum())
        geometry = ET.SubElement(
            plan_view,
            "geometry",
            s=f"{s:.6f}",
            x=f"{starts[k, 0]:.6f}",
            y=f"{starts[k, 1]:.6f}",
            hdg=f"{headings[k]:.9f}",
            length=f"{length:.6f}",
        )
        ET.SubElement(geometry, "line")
        s += length
        k = j
    return s


def _lane_element(parent: ET.Element, lane: _LaneSpec) -> None:
    element = ET.SubElement(parent, "lane", id=str(lane.lane_id), type="driving", level="false")
    if lane.predecessor is not None or lane.successor is not None:
        link = ET.SubElement(element, "link")
        if lane.predecessor is not None:
            ET.SubElement(link, "predecessor", id=str(lane.predecessor))
        if lane.successor is not None:
            ET.SubElement(link, "successor", id=str(lane.successor))
    a, b, c, d = lane.width
    ET.SubElement(element, "width", sOffset="0.0", a=f"{a:.6f}", b=f"{b:.9g}", c=f"{c:.9g}", d=f"{d:.9g}")
    ET.SubElement(element, "roadMark", sOffset="0.0", type="broken", weight="standard", color="standard", width="0.15")
    if lane.speed is not None:
        ET.SubElement(element, "speed", sOffset="0.0", max=f"{lane.speed:.4f}", unit="m/s")


def _road_element(root: ET.Element, road: _Road) -> None:
    element = ET.Element("road", name=f"road {road.road_id}", id=road.road_id, junction=road.junction)
    if road.predecessor or road.successor:
        link = ET.SubElement(element, "link")
        for tag, target in (("predecessor", road.predecessor), ("successor", road.successor)):
            if target is not None:
                kind, target_id, contact = target
                attrib = {"elementType": kind, "elementId": target_id}
                if contact:
                    attrib["contactPoint"] = contact
                ET.SubElement(link, tag, attrib=attrib)
    ET.SubElement(element, "type", s="0.0", type="town")
    length = _geometry(ET.SubElement(element, "planView"), road.reference)
    element.set("length", f"{length:.6f}")
    lanes = ET.SubElement(element, "lanes")
    for section in road.sections:
        xml_section = ET.SubElement(lanes, "laneSection", s=f"{section.s:.6f}")
        left = sorted((lane for lane in section.lanes if lane.lane_id > 0), key=lambda lane: lane.lane_id)
        right = sorted((lane for lane in section.lanes if lane.lane_id < 0), key=lambda lane: -lane.lane_id)
        if left:
            side = ET.SubElement(xml_section, "left")
            for lane in reversed(left):
                _lane_element(side, lane)
        center = ET.SubElement(ET.SubElement(xml_section, "center"), "lane", id="0", type="none", level="false")
        ET.SubElement(
            center, "roadMark", sOffset="0.0", type="solid", weight="standard", color="standard", width="0.15"
        )
        if right:
            side = ET.SubElement(xml_section, "right")
            for lane in right:
                _lane_element(side, lane)
    if road.signals:
        signals = ET.SubElement(element, "signals")
        signals.extend(road.signals)
    root.append(element)


def to_opendrive(net: RoadNetwork, name: str | None = None) -> str:
    """The network as an OpenDRIVE 1.4 document (a string ``carla.Map(name, xodr)`` and CARLA servers read).

    Raises:
        ValueError: when the network is neither a corridor nor a single intersection (naming the map).
    """
    map_name = name or net.map.name
    if "main" in net.arms:
        roads, junctions = _corridor_roads(net), []
    elif net.junction_half_size > 0 and _connectors(net):
        roads, junction = _junction_roads(net)
        junctions = [junction]
    else:
        raise ValueError(f"to_opendrive: map {map_name!r} is neither a corridor nor an intersection network")
    x0, y0, x1, y1 = net.map.bounds
    root = ET.Element("OpenDRIVE")
    header = ET.SubElement(
        root,
        "header",
        revMajor="1",
        revMinor="4",
        name=map_name,
        version="1",
        north=f"{y1:.3f}",
        south=f"{y0:.3f}",
        east=f"{x1:.3f}",
        west=f"{x0:.3f}",
        vendor="irl-vla",
    )
    ET.SubElement(header, "geoReference").text = GEO_REFERENCE_MARK
    for road in roads:
        _road_element(root, road)
    root.extend(junctions)
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode").replace(GEO_REFERENCE_MARK, f"<![CDATA[{GEO_REFERENCE}]]>")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


def write_opendrive(net: RoadNetwork, path: str | FsPath, name: str | None = None) -> FsPath:
    """Write ``to_opendrive(net)`` to ``path`` atomically; returns the path."""
    path = FsPath(path)
    with atomic_open(path) as f:
        f.write(to_opendrive(net, name))
    return path


# ------------------------------------------------------------------------------------------------ CARLA scenarios
@dataclass(frozen=True)
class ScenarioActor:
    """A road user of an embedded scenario at its start, for spawning in CARLA.

    Attributes:
        token: its track token.
        agent_class: ``AgentClass`` value (``vehicle``, ``bicycle``, ``pedestrian``, ...).
        pose: box-centre pose (x [m], y [m], heading [rad]) in the suite frame ``(3,)``.
        speed: speed at the start [m/s].
        target_speed: desired speed [m/s] (0: it stands, e.g. parked cars and obstacles).
        length, width, height: box size [m].
    """

    token: str
    agent_class: str
    pose: tuple[float, float, float]
    speed: float
    target_speed: float
    length: float
    width: float
    height: float


@dataclass(frozen=True)
class OpenDriveScenario:
    """An embedded scenario as the CARLA env loads it (``sim_bridges.carla.env.CarlaScenario``).

    Attributes:
        xodr: the scenario's road network as OpenDRIVE.
        route_poses: the ego's route centreline (x, y, heading) in the suite frame ``(N, 3)``.
        roadblock_ids: the route's roadblocks (the embedded ids).
        map_api: the embedded ``Map`` (the runner's and viewer's map).
        map_name: the map's name.
        light_connectors: per signal (stop-line) id of a traffic light, the lane connectors it governs.
        road_users: the scenario's road users at the start (the background included).
    """

    xodr: str
    route_poses: npt.NDArray[np.float64]
    roadblock_ids: list[str]
    map_api: object
    map_name: str
    light_connectors: dict[str, list[str]] = field(default_factory=dict)
    road_users: list[ScenarioActor] = field(default_factory=list)


def carla_scenario(route_id: str) -> OpenDriveScenario:
    """The scenario ``<family>/<seed>`` of ``scenarios/families`` for the CARLA env (``configs/sim/carla.yaml``).

    Raises:
        ValueError: naming the route when it is not ``<family>/<seed>`` of a known family.
    """
    from scenarios.registry import load_families
    from sim_bridges.embedded.scenario_world import build_scenario

    family, _, seed = route_id.partition("/")
    families = load_families()
    if family not in families or not seed.isdigit():
        raise ValueError(f"sim=carla: route {route_id!r} is not <family>/<seed> of {sorted(families)}")
    instance = build_scenario(families[family], int(seed))
    name = f"{family}_{seed}"
    lights = {
        stop.id: list(stop.lane_connector_ids)
        for stop in instance.network.map.objects(MapLayer.STOP_LINE)
        if isinstance(stop, StopLine) and stop.stop_line_type == StopLineType.TRAFFIC_LIGHT
    }
    users = [
        ScenarioActor(
            u.track_token,
            u.agent_class.value,
            tuple(float(v) for v in u.pose),  # type: ignore[arg-type]
            float(u.speed),
            float(u.target_speed),
            float(u.length),
            float(u.width),
            float(u.height),
        )
        for u in instance.world.road_users
    ]
    return OpenDriveScenario(
        to_opendrive(instance.network, name),
        np.asarray(instance.route_centerline, dtype=np.float64),
        list(instance.route_ids),
        instance.network.map,
        name,
        lights,
        users,
    )


def carla_scenario_ids(seeds: range) -> list[str]:
    """``<family>/<seed>`` of every family for ``seeds`` (the CARLA env's default routes)."""
    from scenarios.registry import load_families

    return [f"{family}/{seed}" for family in sorted(load_families()) for seed in seeds]
