"""Hand-built test data: a signalised T-junction map and a straight-driving scene."""

from __future__ import annotations

import numpy as np
from shapely.geometry import box

from irl_vla.data.enums import DrivingCommand
from irl_vla.data.map import (
    Crosswalk,
    Intersection,
    IntersectionType,
    Lane,
    LaneConnector,
    Map,
    Roadblock,
    RoadblockConnector,
    StopLine,
    StopLineType,
)
from irl_vla.data.map.map_builder import bezier_path, lane_geometry, straight_path, union_polygon
from irl_vla.data.scene import Annotations, EgoStatus, Frame, Scene, SceneMetadata, one_hot_command

W = 3.5  # lane width [m]
PI = np.pi


def _lane(lid: str, rb: str, start, end, index: int = 0, speed: float = 13.9) -> Lane:
    c, left, right, poly = lane_geometry(straight_path(np.array(start), np.array(end)), W)
    return Lane(lid, poly, c, left, right, speed, rb, lane_index=index)


def _connector(cid: str, rbc: str, src: Lane, dst: Lane, turn: str, stop: list[str]) -> LaneConnector:
    xy = bezier_path(src.centerline[-1], dst.centerline[0], spacing=0.5)
    c, left, right, poly = lane_geometry(xy, W)
    src.outgoing_ids.append(cid)
    dst.incoming_ids.append(cid)
    return LaneConnector(
        cid, poly, c, left, right, 8.0, rbc, [src.id], [dst.id], stop_line_ids=stop, intersection_id="int", turn=turn
    )


def build_t_junction() -> Map:
    """A T-junction: an east-west road (two lanes eastbound, one westbound) and a south arm, signalised.

    The intersection box spans x in [-10, 10], y in [-10, 3.5]. Eastbound lanes run at y = -1.75 (lane index 0)
    and y = -5.25 (index 1); westbound at y = +1.75. The south arm runs northbound at x = +1.75 and southbound
    at x = -1.75. Ids: roadblocks ``w_in, w_out, e_in, e_out, s_in, s_out``; lanes ``<rb>_<index>``.
    """
    lanes = {
        "w_in_0": _lane("w_in_0", "w_in", (-60, -1.75), (-10, -1.75), 0),
        "w_in_1": _lane("w_in_1", "w_in", (-60, -5.25), (-10, -5.25), 1),
        "w_out_0": _lane("w_out_0", "w_out", (-10, 1.75), (-60, 1.75), 0),
        "e_out_0": _lane("e_out_0", "e_out", (10, -1.75), (60, -1.75), 0),
        "e_out_1": _lane("e_out_1", "e_out", (10, -5.25), (60, -5.25), 1),
        "e_in_0": _lane("e_in_0", "e_in", (60, 1.75), (10, 1.75), 0),
        "s_in_0": _lane("s_in_0", "s_in", (1.75, -60), (1.75, -10), 0),
        "s_out_0": _lane("s_out_0", "s_out", (-1.75, -10), (-1.75, -60), 0),
    }
    stop_w = StopLine("stop_w", box(-10.5, -7.0, -10.0, 0.0), StopLineType.TRAFFIC_LIGHT)
    stop_s = StopLine("stop_s", box(0.0, -10.5, 3.5, -10.0), StopLineType.TRAFFIC_LIGHT)
    spec = [  # (connector, roadblock connector, from, to, turn, stop lines)
        ("c_w_e_0", "rbc_w_e", "w_in_0", "e_out_0", "straight", ["stop_w"]),
        ("c_w_e_1", "rbc_w_e", "w_in_1", "e_out_1", "straight", ["stop_w"]),
        ("c_w_s", "rbc_w_s", "w_in_1", "s_out_0", "right", ["stop_w"]),
        ("c_e_w", "rbc_e_w", "e_in_0", "w_out_0", "straight", []),
        ("c_e_s", "rbc_e_s", "e_in_0", "s_out_0", "left", []),
        ("c_s_w", "rbc_s_w", "s_in_0", "w_out_0", "left", ["stop_s"]),
        ("c_s_e", "rbc_s_e", "s_in_0", "e_out_1", "right", ["stop_s"]),
    ]
    connectors = [_connector(c, rbc, lanes[a], lanes[b], t, s) for c, rbc, a, b, t, s in spec]
    stop_w.lane_connector_ids = [c.id for c in connectors if "stop_w" in c.stop_line_ids]
    stop_s.lane_connector_ids = [c.id for c in connectors if "stop_s" in c.stop_line_ids]
    roadblocks = {}
    for rb in ("w_in", "w_out", "e_in", "e_out", "s_in", "s_out"):
        members = sorted((ln for ln in lanes.values() if ln.roadblock_id == rb), key=lambda ln: ln.lane_index)
        roadblocks[rb] = Roadblock(rb, union_polygon([m.polygon for m in members]), [m.id for m in members])
    rbcs = []
    for rbc in sorted({c.roadblock_id for c in connectors}):
        members = [c for c in connectors if c.roadblock_id == rbc]
        src = lanes[members[0].incoming_ids[0]].roadblock_id
        dst = lanes[members[0].outgoing_ids[0]].roadblock_id
        roadblocks[src].outgoing_ids.append(rbc)
        roadblocks[dst].incoming_ids.append(rbc)
        rbcs.append(
            RoadblockConnector(
                rbc, union_polygon([m.polygon for m in members]), [m.id for m in members], [src], [dst], "int"
            )
        )
    intersection = Intersection("int", box(-10, -10, 10, 3.5), IntersectionType.TRAFFIC_LIGHT)
    crosswalk = Crosswalk("cw_e", box(10.5, -7.0, 13.5, 3.5))
    return Map(
        "t_junction",
        [*lanes.values(), *connectors, *roadblocks.values(), *rbcs, intersection, crosswalk, stop_w, stop_s],
    )


def build_straight_scene(num_history: int = 4, num_future: int = 10, speed: float = 10.0) -> Scene:
    """A scene of the ego driving east at constant ``speed`` [m/s] along the T-junction's lane ``w_in_0``."""
    frames = []
    for i in range(num_history + num_future):
        x = -55.0 + speed * 0.5 * i
        status = EgoStatus(
            np.array([x, -1.75, 0.0]),
            np.array([speed, 0.0]),
            np.zeros(2),
            one_hot_command(DrivingCommand.STRAIGHT),
            in_global_frame=True,
        )
        frames.append(
            Frame(
                f"{i:016x}",
                1_000_000 + 500_000 * i,
                ["w_in", "rbc_w_e", "e_out"],
                [("c_w_e_0", False)],
                Annotations.empty(),
                status,
            )
        )
    meta = SceneMetadata("log_a", "scene_a", "t_junction", frames[num_history - 1].token, num_history, num_future)
    return Scene(meta, frames)

