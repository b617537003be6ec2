"""Placing road users on lane sequences of a ``RoadNetwork`` (paths and their stop lines)."""

from __future__ import annotations

from irl_vla.data.enums import AgentClass
from irl_vla.data.map import LaneConnector, MapLayer, StopLine, StopLineType
from sim_bridges.embedded.idm import IDMParams
from sim_bridges.embedded.road_network import RoadNetwork
from sim_bridges.embedded.road_users import RoadUser, StopPoint

#: (length, width, height) [m] per class.
DIMENSIONS: dict[AgentClass, tuple[float, float, float]] = {
    AgentClass.VEHICLE: (4.6, 1.9, 1.6),
    AgentClass.BICYCLE: (1.8, 0.7, 1.7),
    AgentClass.PEDESTRIAN: (0.6, 0.6, 1.75),
    AgentClass.TRAFFIC_CONE: (0.4, 0.4, 0.7),
    AgentClass.BARRIER: (0.6, 2.0, 1.0),
    AgentClass.GENERIC_OBJECT: (1.0, 1.0, 1.0),
    AgentClass.CZONE_SIGN: (0.3, 0.8, 1.5),
}


def stop_points(net: RoadNetwork, lane_ids: list[str]) -> list[StopPoint]:
    """Stop lines along a lane sequence, at the arc length where each gated connector begins."""
    stops, s = [], 0.0
    for lid in lane_ids:
        lane = net.map.get_lane(lid)
        if isinstance(lane, LaneConnector):
            for sid in lane.stop_line_ids:
                line = net.map.get(MapLayer.STOP_LINE, sid)
                assert isinstance(line, StopLine)
                kind = "light" if line.stop_line_type is StopLineType.TRAFFIC_LIGHT else "yield"
                stops.append(StopPoint(s, lid, kind))
        s += net.paths[lid].length
    return stops


def make_road_user(
    net: RoadNetwork,
    lane_ids: list[str],
    *,
    token: str,
    s: float,
    speed: float,
    target_speed: float,
    agent_class: AgentClass = AgentClass.VEHICLE,
    idm: IDMParams | None = None,
    lateral: float = 0.0,
    dimensions: tuple[float, float, float] | None = None,
) -> RoadUser:
    """A vehicle or cyclist following ``lane_ids`` from arc length ``s`` [m] at ``speed`` [m/s]."""
    length, width, height = dimensions or DIMENSIONS[agent_class]
    return RoadUser(
        track_token=token,
        agent_class=agent_class,
        length=length,
        width=width,
        height=height,
        path=net.lane_sequence_path(lane_ids),
        s=s,
        speed=speed,
        target_speed=target_speed,
        idm=idm or IDMParams(),
        lateral=lateral,
        stops=stop_points(net, lane_ids),
    )
