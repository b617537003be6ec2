"""Procedural road networks for the embedded world: corridors and 3- or 4-arm intersections.

Right-hand traffic. Ids are integer-like strings, unique across all layers (as nuPlan GeoPackages need), so
the NAVSIM exporter can write them unchanged. Lanes are indexed from the centre line outwards (0 = leftmost in
the driving direction).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from shapely.geometry import Polygon

from irl_vla.data.geometry import path_arc_length, wrap_angle
from irl_vla.data.map import (
    Crosswalk,
    Intersection,
    IntersectionType,
    Lane,
    LaneConnector,
    Map,
    MapObject,
    Roadblock,
    RoadblockConnector,
    StopLine,
    StopLineType,
)
from irl_vla.data.map.map_builder import bezier_path, lane_geometry, offset_polyline, straight_path, union_polygon
from sim_bridges.embedded.paths import Path

FloatArray = npt.NDArray[np.float64]

#: Arm directions of an intersection [rad], pointing away from the centre.
ARM_ANGLES: dict[str, float] = {"east": 0.0, "north": np.pi / 2, "west": np.pi, "south": -np.pi / 2}


@dataclass
class Arm:
    """One road arm: incoming lanes drive towards the junction (or along a corridor), outgoing away."""

    name: str
    in_roadblock: str
    out_roadblock: str | None
    in_lanes: list[str]
    out_lanes: list[str]
    stop_line: str | None = None
    crosswalk: str | None = None


@dataclass
class RoadNetwork:
    """A generated map with what scenario placement needs.

    Attributes:
        map: the map.
        arms: arms by name (``east``, ... for intersections; ``main`` for corridors).
        paths: centerline ``Path`` of every lane and lane connector.
        signal_phases: per intersection id, the phases as lists of lane-connector ids green together.
        turns: ``(from_arm, to_arm) -> turn`` for intersections.
        junction_half_size: half size of the intersection polygon [m], which reaches the stop lines (0 for
            corridors).
    """

    map: Map
    arms: dict[str, Arm]
    paths: dict[str, Path]
    signal_phases: dict[str, list[list[str]]] = field(default_factory=dict)
    turns: dict[tuple[str, str], str] = field(default_factory=dict)
    junction_half_size: float = 0.0

    def connector(self, from_lane: str, to_arm: str) -> str | None:
        """The lane connector from ``from_lane`` into arm ``to_arm``, if there is one."""
        lane = self.map.get_lane(from_lane)
        targets = set(self.arms[to_arm].out_lanes)
        for cid in lane.outgoing_ids:
            if self.map.get_lane(cid).outgoing_ids[0] in targets:
                return cid
        return None

    def route_ids(self, lane_ids: list[str]) -> list[str]:
        """Route roadblock ids (deduplicated, in order) of a lane sequence."""
        out: list[str] = []
        for lid in lane_ids:
            rb = self.map.get_lane(lid).roadblock_id
            if not out or out[-1] != rb:
                out.append(rb)
        return out

    def lane_sequence_path(self, lane_ids: list[str]) -> Path:
        """One ``Path`` through the centerlines of consecutive lanes/connectors."""
        return Path(np.concatenate([self.paths[lid].xy for lid in lane_ids]))


class _Ids:
    """Integer-like string ids unique over the whole map."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self) -> str:
        return str(next(self._next))


def _reference_line(length: float, curve_angle: float, curve_radius: float, spacing: float = 1.0) -> FloatArray:
    """Centre line (N, 2): straight, then an arc of ``curve_angle`` [rad] (left positive), then straight."""
    if curve_angle == 0.0:
        return straight_path(np.zeros(2), np.array([length, 0.0]), spacing)
    arc_len = abs(curve_angle) * curve_radius
    straight = max(0.0, (length - arc_len) / 2)
    pts = [straight_path(np.zeros(2), np.array([straight, 0.0]), spacing)]
    sign = np.sign(curve_angle)
    centre = np.array([straight, sign * curve_radius])
    n = max(3, int(np.ceil(arc_len / spacing)) + 1)
    phi = np.linspace(0.0, abs(curve_angle), n)[1:]
    arc = centre + curve_radius * np.stack([np.sin(phi), -sign * np.cos(phi)], axis=1)
    pts.append(arc)
    end_heading = curve_angle
    d = np.array([np.cos(end_heading), np.sin(end_heading)])
    tail = straight_path(arc[-1], arc[-1] + d * straight, spacing)[1:] if straight > 0 else np.zeros((0, 2))
    pts.append(tail)
    return np.concatenate(pts)


def _new_lane(
    lane_id: str,
    xy: FloatArray,
    width: float,
    speed_limit: float,
    roadblock_id: str,
    index: int,
    paths: dict[str, Path],
) -> Lane:
    """A lane along ``xy`` (driving order), its centerline path registered in ``paths``."""
    c, left, right, poly = lane_geometry(xy, width)
    paths[lane_id] = Path(xy)
    return Lane(lane_id, poly, c, left, right, speed_limit, roadblock_id, lane_index=index)


def build_corridor(
    *,
    length: float = 300.0,
    lanes_forward: int = 2,
    lanes_backward: int = 1,
    lane_width: float = 3.5,
    speed_limit: float = 13.9,
    curve_angle: float = 0.0,
    curve_radius: float = 120.0,
    drop_lane_at: float | None = None,
    taper_length: float = 40.0,
    name: str = "corridor",
) -> RoadNetwork:
    """A two-way road: ``lanes_forward`` lanes along +x (curving by ``curve_angle``), ``lanes_backward`` back.

    With ``drop_lane_at``, the rightmost forward lane ends there: the forward roadblock is split into one of
    ``lanes_forward`` lanes up to ``drop_lane_at``, a roadblock connector of length ``taper_length`` whose
    rightmost connector tapers into its left neighbour, and one of ``lanes_forward - 1`` lanes after it. Arm
    ``main`` then lists the first roadblock's lanes and ``main_after`` the last one's.

    Args:
        length: length of the centre line [m].
        lanes_forward: lanes in the driving direction of the ego (right of the centre line).
        lanes_backward: oncoming lanes (left of the centre line); 0 for a one-way road.
        lane_width: [m].
        speed_limit: [m/s].
        curve_angle: total heading change of the road [rad], left positive; 0 for straight.
        curve_radius: radius of the curve [m].
        drop_lane_at: arc length where the rightmost forward lane ends [m] (needs ``lanes_forward >= 2``).
        taper_length: length of the merge taper [m].
        name: map name.
    """
    if lanes_forward < 1 or lanes_backward < 0:
        raise ValueError(
            f"build_corridor: need lanes_forward >= 1 and lanes_backward >= 0, got {lanes_forward}, {lanes_backward}"
        )
    if drop_lane_at is not None and (lanes_forward < 2 or not 10.0 <= drop_lane_at <= length - taper_length - 10):
        raise ValueError(
            f"build_corridor: a lane drop needs lanes_forward >= 2 and 10 <= drop_lane_at <= length - taper - 10, "
            f"got lanes_forward={lanes_forward}, drop_lane_at={drop_lane_at}"
        )
    ids = _Ids()
    ref = _reference_line(length, curve_angle, curve_radius)
    objects: list[MapObject] = []
    paths: dict[str, Path] = {}
    arms: dict[str, Arm] = {}
    if lanes_backward:
        rb_id = ids()
        lanes = [
            _new_lane(
                ids(), offset_polyline(ref, (i + 0.5) * lane_width)[::-1], lane_width, speed_limit, rb_id, i, paths
            )
            for i in range(lanes_backward)
        ]
        objects.extend(lanes)
        objects.append(Roadblock(rb_id, union_polygon([ln.polygon for ln in lanes]), [ln.id for ln in lanes]))
        arms["oncoming"] = Arm("oncoming", rb_id, None, [ln.id for ln in lanes], [])
    if drop_lane_at is None:
        sections = [(ref, lanes_forward)]
    else:
        ref_s = path_arc_length(ref)
        k0, k1 = np.searchsorted(ref_s, [drop_lane_at, drop_lane_at + taper_length])
        sections = [(ref[: k0 + 1], lanes_forward), (ref[k1:], lanes_forward - 1)]
    blocks: list[Roadblock] = []
    for section, count in sections:
        rb_id = ids()
        lanes = [
            _new_lane(
                ids(), offset_polyline(section, -(i + 0.5) * lane_width), lane_width, speed_limit, rb_id, i, paths
            )
            for i in range(count)
        ]
        objects.extend(lanes)
        blocks.append(Roadblock(rb_id, union_polygon([ln.polygon for ln in lanes]), [ln.id for ln in lanes]))
    objects.extend(blocks)
    arms["main"] = Arm("main", blocks[0].id, None, list(blocks[0].lane_ids), [])
    if drop_lane_at is not None:
        first, last = blocks
        arms["main_after"] = Arm("main_after", last.id, None, list(last.lane_ids), [])
        taper_ref = ref[k0 : k1 + 1]
        unit_normal = offset_polyline(taper_ref, 1.0) - taper_ref  # (N, 2) left normals
        u = path_arc_length(taper_ref) / path_arc_length(taper_ref)[-1]
        rbc_id, members = ids(), []
        lane_map = {ln.id: ln for ln in objects if isinstance(ln, Lane)}
        for i in range(lanes_forward):
            j = min(i, lanes_forward - 2)
            offset = -(i + 0.5) * lane_width + (i - j) * lane_width * 0.5 * (1.0 - np.cos(np.pi * u))
            xy = taper_ref + unit_normal * offset[:, None]
            c, left, right, poly = lane_geometry(xy, lane_width)
            src, dst = lane_map[first.lane_ids[i]], lane_map[last.lane_ids[j]]
            conn = LaneConnector(ids(), poly, c, left, right, speed_limit, rbc_id, [src.id], [dst.id])
            src.outgoing_ids.append(conn.id)
            dst.incoming_ids.append(conn.id)
            paths[conn.id] = Path(xy)
            objects.append(conn)
            members.append(conn)
        first.outgoing_ids.append(rbc_id)
        last.incoming_ids.append(rbc_id)
        poly = union_polygon([m.polygon for m in members])
        # Like nuPlan's connectors, the taper lies in an intersection polygon (reaching 0.3 m into the
        # roadblocks on both sides), so drivable-area checks over roadblocks and intersections cover it.
        int_id = ids()
        road = union_polygon([first.polygon, poly, last.polygon])
        objects.append(Intersection(int_id, poly.buffer(0.3).intersection(road), IntersectionType.DEFAULT))
        for m in members:
            m.intersection_id = int_id
        objects.append(RoadblockConnector(rbc_id, poly, [m.id for m in members], [first.id], [last.id], int_id))
    return RoadNetwork(Map(name, objects), arms, paths)


def build_intersection(
    *,
    arms: tuple[str, ...] = ("east", "north", "west", "south"),
    arm_length: float = 200.0,
    lanes_in: int = 2,
    lanes_out: int = 2,
    lane_width: float = 3.5,
    speed_limit: float = 13.9,
    turn_speed_limit: float = 8.0,
    signalised: bool = True,
    protected_left: bool = True,
    priority_arms: tuple[str, ...] = ("east", "west"),
    crosswalks: bool = True,
    name: str = "intersection",
) -> RoadNetwork:
    """A 3- or 4-arm intersection centred at the origin, with connectors for every legal turn.

    Args:
        arms: arm names among ``east``, ``north``, ``west``, ``south`` (three or four).
        arm_length: length of each arm [m].
        lanes_in: lanes towards the junction per arm.
        lanes_out: lanes away from the junction per arm.
        lane_width: [m].
        speed_limit: on the arms [m/s].
        turn_speed_limit: on turning connectors [m/s].
        signalised: traffic lights (stop lines of type TRAFFIC_LIGHT) or priority rules.
        protected_left: with lights, left turns get their own phase; else they go with oncoming traffic.
        priority_arms: without lights, arms that have right of way; the others get YIELD stop lines.
        crosswalks: a crosswalk across every arm, just outside the junction box.
        name: map name.
    """
    if len(arms) not in (3, 4) or any(a not in ARM_ANGLES for a in arms):
        raise ValueError(f"build_intersection: arms must be 3 or 4 of {list(ARM_ANGLES)}, got {arms}")
    ids = _Ids()
    w = lane_width
    half = max(lanes_in, lanes_out) * w + 2.0  # junction half size [m]
    crosswalk_width, stop_gap = 3.0, 1.0
    arm_start = half + (crosswalk_width + stop_gap if crosswalks else 0.0)
    objects: list[MapObject] = []
    paths: dict[str, Path] = {}
    net_arms: dict[str, Arm] = {}
    lane_objs: dict[str, Lane] = {}
    for arm in arms:
        u = np.array([np.cos(ARM_ANGLES[arm]), np.sin(ARM_ANGLES[arm])])  # outward
        n_in = np.array([u[1], -u[0]])  # left normal of the inward direction (-u)
        rb_in, rb_out = ids(), ids()
        in_ids, out_ids = [], []
        for i in range(lanes_in):
            off = -n_in * (i + 0.5) * w
            xy = straight_path(u * (arm_start + arm_length) + off, u * arm_start + off)
            lane = _new_lane(ids(), xy, w, speed_limit, rb_in, i, paths)
            lane_objs[lane.id] = lane
            in_ids.append(lane.id)
        for i in range(lanes_out):
            off = n_in * (i + 0.5) * w
            xy = straight_path(u * arm_start + off, u * (arm_start + arm_length) + off)
            lane = _new_lane(ids(), xy, w, speed_limit, rb_out, i, paths)
            lane_objs[lane.id] = lane
            out_ids.append(lane.id)
        net_arms[arm] = Arm(arm, rb_in, rb_out, in_ids, out_ids)
    # Connectors.
    turns: dict[tuple[str, str], str] = {}
    connectors: dict[str, LaneConnector] = {}
    by_pair: dict[tuple[str, str], list[str]] = {}
    for src, dst in itertools.permutations(arms, 2):
        rel = wrap_angle(ARM_ANGLES[dst] - (ARM_ANGLES[src] + np.pi))  # heading change of the manoeuvre
        turn = "straight" if abs(rel) < 0.1 else ("left" if rel > 0 else "right")
        turns[(src, dst)] = turn
        a_in, a_out = net_arms[src], net_arms[dst]
        if turn == "straight":
            pairs = [(i, min(i, lanes_out - 1)) for i in range(lanes_in)]
        elif turn == "left":
            pairs = [(0, 0)]
        else:
            pairs = [(lanes_in - 1, lanes_out - 1)]
        rbc = ids()
        for i, j in pairs:
            src_lane, dst_lane = lane_objs[a_in.in_lanes[i]], lane_objs[a_out.out_lanes[j]]
            xy = bezier_path(src_lane.centerline[-1], dst_lane.centerline[0], spacing=0.5)
            c, left, right, poly = lane_geometry(xy, w)
            limit = speed_limit if turn == "straight" else turn_speed_limit
            conn = LaneConnector(ids(), poly, c, left, right, limit, rbc, [src_lane.id], [dst_lane.id], turn=turn)
            src_lane.outgoing_ids.append(conn.id)
            dst_lane.incoming_ids.append(conn.id)
            connectors[conn.id], paths[conn.id] = conn, Path(xy)
            by_pair.setdefault((src, dst), []).append(conn.id)
        by_pair.setdefault((src, dst), [])
        by_pair[(src, dst)].insert(0, rbc)  # first entry is the roadblock connector id
    int_id = ids()
    itype = IntersectionType.TRAFFIC_LIGHT if signalised else IntersectionType.DEFAULT
    # The junction polygon reaches 0.25 m past the stop lines, overlapping the arms' roadblocks, so crosswalks,
    # connectors and the seams between them all lie strictly inside drivable area.
    box = arm_start + 0.25
    intersection = Intersection(int_id, Polygon([(-box, -box), (box, -box), (box, box), (-box, box)]), itype)
    for conn in connectors.values():
        conn.intersection_id = int_id
    # Roadblocks and roadblock connectors.
    blocks: dict[str, Roadblock] = {}
    for arm in net_arms.values():
        for rb, lane_ids in ((arm.in_roadblock, arm.in_lanes), (arm.out_roadblock, arm.out_lanes)):
            blocks[rb] = Roadblock(rb, union_polygon([lane_objs[i].polygon for i in lane_ids]), list(lane_ids))
    rbcs = []
    for (src, dst), entries in by_pair.items():
        rbc, members = entries[0], entries[1:]
        a_in, a_out = net_arms[src], net_arms[dst]
        blocks[a_in.in_roadblock].outgoing_ids.append(rbc)
        blocks[a_out.out_roadblock].incoming_ids.append(rbc)  # type: ignore[index]
        poly = union_polygon([connectors[c].polygon for c in members])
        rbcs.append(RoadblockConnector(rbc, poly, members, [a_in.in_roadblock], [a_out.out_roadblock], int_id))  # type: ignore[list-item]
    # Stop lines and crosswalks.
    stop_lines, crosswalk_objs = [], []
    for arm_name, arm in net_arms.items():
        u = np.array([np.cos(ARM_ANGLES[arm_name]), np.sin(ARM_ANGLES[arm_name])])
        n_in = np.array([u[1], -u[0]])
        gated = [c for lid in arm.in_lanes for c in lane_objs[lid].outgoing_ids]
        if signalised or arm_name not in priority_arms:
            stype = StopLineType.TRAFFIC_LIGHT if signalised else StopLineType.YIELD
            a, b = arm_start, arm_start + 0.5
            corners = [u * a, u * b, u * b - n_in * lanes_in * w, u * a - n_in * lanes_in * w]
            sl = StopLine(ids(), Polygon(corners), stype, gated)
            for c in gated:
                connectors[c].stop_line_ids.append(sl.id)
            stop_lines.append(sl)
            arm.stop_line = sl.id
        if crosswalks:
            a, b = half + 0.5, half + 0.5 + crosswalk_width
            corners = [
                u * a + n_in * lanes_out * w,
                u * b + n_in * lanes_out * w,
                u * b - n_in * lanes_in * w,
                u * a - n_in * lanes_in * w,
            ]
            cw = Crosswalk(ids(), Polygon(corners))
            crosswalk_objs.append(cw)
            arm.crosswalk = cw.id
    objects = [
        *lane_objs.values(),
        *connectors.values(),
        *blocks.values(),
        *rbcs,
        intersection,
        *stop_lines,
        *crosswalk_objs,
    ]
    net = RoadNetwork(Map(name, objects), net_arms, paths, turns=turns, junction_half_size=arm_start)
    if signalised:
        net.signal_phases[int_id] = _signal_phases(net, by_pair, protected_left)
    return net


def _signal_phases(
    net: RoadNetwork, by_pair: dict[tuple[str, str], list[str]], protected_left: bool
) -> list[list[str]]:
    """Phases: per axis (east-west, north-south) straight+right, then protected lefts (or lefts with them)."""
    phases = []
    for axis in (("east", "west"), ("north", "south")):
        through, left = [], []
        for (src, dst), entries in by_pair.items():
            if src not in axis:
                continue
            (left if net.turns[(src, dst)] == "left" else through).extend(entries[1:])
        if not through and not left:
            continue
        if protected_left:
            phases.extend(p for p in (through, left) if p)
        else:
            phases.append(through + left)
    return phases
