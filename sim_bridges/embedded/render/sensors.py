"""``SensorRenderer``: cameras and LiDAR of a logged frame, from its map, ego pose, boxes and light states.

Nothing about the sensors is stored in a scene record: they are rendered when a scene is loaded, from what the
frame holds (annotations, traffic-light states) and the map (ground raster, light positions), so a record
stays small and a different rig needs no regeneration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irl_vla.data.enums import BoundingBoxIndex
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.map import LaneConnector, Map, MapLayer, StopLine, StopLineType
from irl_vla.data.scene import Frame, Scene
from irl_vla.data.sensors import Camera, Cameras, Lidar, SensorConfig
from sim_bridges.embedded.render.camera import HOUSING, LIGHT_COLOURS, Box3D, CameraRenderer
from sim_bridges.embedded.render.ground import GroundTexture
from sim_bridges.embedded.render.lidar import LidarRenderer
from sim_bridges.embedded.render.rig import LidarConfig, RigConfig
from sim_bridges.embedded.render.shapes import BoxSet, object_colour, object_parts

LIGHT_HEIGHT = 5.2  # [m] centre of a signal head above the road
HEAD_SIZE = np.array([0.35, 0.45, 1.2])  # [m] depth, width, height of a signal head
LAMP_OFFSET = 0.38  # [m] red lamp this far above the head's centre, green this far below
HEAD_SPACING = 0.6  # [m] between the heads over one lane (one per connector: lefts on the left)
BEYOND_JUNCTION = 2.0  # [m] heads hang this far beyond the far edge of the junction
POLE_OUTSIDE = 1.0  # [m] a pole stands this far outside the road's right edge
POLE_SIZE, ARM_SIZE = 0.25, 0.2  # [m] pole and mast-arm cross-sections
POLE_COLOUR = (110, 112, 118)
ARM_HEIGHT = LIGHT_HEIGHT + HEAD_SIZE[2] / 2 + ARM_SIZE / 2  # [m] centre of the mast arm
LIGHT_RANGE = 110.0  # [m] signal heads farther than this are not drawn


@dataclass(frozen=True)
class SignalHead:
    """A traffic light: the lane connector it governs and its global pose.

    Attributes:
        connector_id: the signalised connector.
        pose: ``(3,)`` global x, y [m] of the head's centre and the heading its lamps face [rad].
    """

    connector_id: str
    pose: np.ndarray


@dataclass(frozen=True)
class Signals:
    """A map's traffic lights: the heads and the poles and mast arms they hang from (global boxes)."""

    heads: list[SignalHead]
    supports: BoxSet  # global frame


def _far_side(map_api: Map, lane_id: str) -> tuple[np.ndarray, str] | None:
    """Where the straight continuation of ``lane_id`` leaves the junction (global pose) and the lane it enters."""
    lane = map_api.get_lane(lane_id)
    for cid in lane.outgoing_ids:
        conn = map_api.get_lane(cid)
        if isinstance(conn, LaneConnector) and conn.turn == "straight":
            exit_lane = conn.outgoing_ids[0]
            x, y, h = map_api.get_lane(exit_lane).centerline[0]
            return np.array([x + BEYOND_JUNCTION * np.cos(h), y + BEYOND_JUNCTION * np.sin(h), h]), exit_lane
    return None


def signals(map_api: Map) -> Signals:
    """The heads of every signalised approach lane, on a mast arm across the junction from it.

    Each incoming lane gets one head per connector it feeds (lefts on the left), hanging ``LIGHT_HEIGHT`` above
    the road just beyond the far edge of the junction, in line with the lane, facing it; so a driver sees its
    lights from far away and still when stopped at the line. The arm reaches over the lanes from a pole
    beside the far road's right edge. Where a lane has no straight continuation (the stem of a T) its heads
    hang over the end of the lane itself.
    """
    heads: list[SignalHead] = []
    centres, sizes, headings = [], [], []
    for obj in map_api.objects(MapLayer.STOP_LINE):
        if not isinstance(obj, StopLine) or obj.stop_line_type is not StopLineType.TRAFFIC_LIGHT:
            continue
        by_lane: dict[str, list[str]] = {}
        for cid in obj.lane_connector_ids:
            conn = map_api.get_lane(cid)
            assert isinstance(conn, LaneConnector)
            by_lane.setdefault(conn.incoming_ids[0], []).append(cid)
        arm_heads: list[np.ndarray] = []
        kerb: np.ndarray | None = None
        for lane_id, cids in by_lane.items():
            far = _far_side(map_api, lane_id)
            if far is None:
                x, y, h = map_api.get_lane(lane_id).centerline[-1]
                anchor = np.array([x, y, h])
            else:
                anchor, exit_lane = far
                block = map_api.get(MapLayer.ROADBLOCK, map_api.get_lane(exit_lane).roadblock_id)
                edge = np.asarray(map_api.get_lane(block.lane_ids[-1]).right_boundary)[0, :2]  # type: ignore[attr-defined]
                h = anchor[2]
                kerb = edge + (BEYOND_JUNCTION * np.array([np.cos(h), np.sin(h)]))
                kerb = kerb + POLE_OUTSIDE * np.array([np.sin(h), -np.cos(h)])
            x, y, h = anchor
            for k, cid in enumerate(sorted(cids, key=lambda c: map_api.get_lane(c).turn != "left")):
                lateral = ((len(cids) - 1) / 2 - k) * HEAD_SPACING  # lefts on the left
                pose = np.array([x - np.sin(h) * lateral, y + np.cos(h) * lateral, h + np.pi])
                heads.append(SignalHead(cid, pose))
                arm_heads.append(pose)
        if kerb is not None and arm_heads:
            # Pole at the kerb, arm from it over the heads (to the farthest one, plus a little).
            h = arm_heads[0][2] - np.pi
            left = np.array([-np.sin(h), np.cos(h)])
            reach = max(float(np.dot(p[:2] - kerb, left)) for p in arm_heads) + 0.5
            centres.append((*kerb, ARM_HEIGHT / 2 + ARM_SIZE / 2))
            sizes.append((POLE_SIZE, POLE_SIZE, ARM_HEIGHT + ARM_SIZE))
            headings.append(h)
            mid = kerb + left * reach / 2
            centres.append((*mid, ARM_HEIGHT))
            sizes.append((ARM_SIZE, reach, ARM_SIZE))
            headings.append(h)
    n = len(centres)
    supports = (
        BoxSet(
            np.array(centres),
            np.array(sizes),
            np.array(headings),
            np.tile(np.array(POLE_COLOUR, dtype=np.int64), (n, 1)),
            np.arange(n, dtype=np.int64),
        )
        if n
        else BoxSet.empty()
    )
    return Signals(heads, supports)


def signal_heads(map_api: Map) -> list[SignalHead]:
    """The traffic-light heads of a map (see ``signals``)."""
    return signals(map_api).heads


def _to_ego(boxes: BoxSet, ego: np.ndarray) -> BoxSet:
    """Global boxes in the frame of the ego's rear-axle pose ``ego`` ``(3,)``."""
    rel = absolute_to_relative(np.column_stack([boxes.centre[:, :2], boxes.heading]), ego)  # (B, 3)
    return BoxSet(
        np.column_stack([rel[:, :2], boxes.centre[:, 2]]),
        boxes.size,
        rel[:, 2],
        boxes.colour,
        boxes.group,
        boxes.lamp_z,
        boxes.lamp_colour,
    )


class SensorRenderer:
    """Renders a frame's cameras (rig) and LiDAR; caches ground rasters and signal heads per map."""

    def __init__(self, rig: RigConfig | None = None, lidar: LidarConfig | None = None) -> None:
        self.rig = rig or RigConfig()
        self.calibrations = self.rig.calibrations()
        self.cameras = {
            name: CameraRenderer(cal, self.rig.width, self.rig.height, self.rig.max_range)
            for name, cal in self.calibrations.items()
        }
        self.lidar = LidarRenderer(lidar or LidarConfig())
        self._maps: list[tuple[Map, GroundTexture, list[SignalHead]]] = []

    def _map_assets(self, map_api: Map) -> tuple[GroundTexture, Signals]:
        for cached, ground, sigs in self._maps:
            if cached is map_api:
                return ground, sigs
        entry = (map_api, GroundTexture(map_api), signals(map_api))
        self._maps = [entry, *self._maps[:3]]
        return entry[1], entry[2]

    def boxes(self, frame: Frame) -> list[Box3D]:
        """Annotated objects as one ego-frame box each (what the LiDAR sees)."""
        ann = frame.annotations
        out = []
        for k, box in enumerate(ann.boxes):
            size = box[[BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]]
            centre = box[[BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.Z]]
            colour = object_colour(ann.names[k], ann.track_tokens[k])
            out.append(Box3D(centre, size, float(box[BoundingBoxIndex.HEADING]), colour))
        return out

    def scene_boxes(self, frame: Frame, sigs: Signals) -> BoxSet:
        """What the cameras draw: objects as their parts, signal supports and heads with the lit lamps."""
        ego = frame.ego_status.ego_pose
        ann = frame.annotations
        objects = object_parts(ann.boxes, ann.names, ann.track_tokens)
        states = dict(frame.traffic_lights)
        near = [hd for hd in sigs.heads if np.hypot(*(hd.pose[:2] - ego[:2])) < LIGHT_RANGE]
        heads = BoxSet.empty()
        if near:
            red = [states.get(hd.connector_id) for hd in near]
            n = len(near)
            heads = BoxSet(
                np.column_stack([np.stack([hd.pose[:2] for hd in near]), np.full(n, LIGHT_HEIGHT)]),
                np.tile(HEAD_SIZE, (n, 1)),
                np.array([hd.pose[2] for hd in near]),
                np.tile(np.array(HOUSING, dtype=np.int64), (n, 1)),
                np.arange(n, dtype=np.int64),
                np.array([np.nan if r is None else (LAMP_OFFSET if r else -LAMP_OFFSET) for r in red]),
                np.array([LIGHT_COLOURS[bool(r)] for r in red], dtype=np.int64),
            )
        world = BoxSet.concat([sigs.supports, heads])
        return BoxSet.concat([objects, _to_ego(world, ego)]) if len(world) else objects

    def render_cameras(self, frame: Frame, map_api: Map, names: list[str] | None = None) -> Cameras:
        """Camera images of ``frame`` (all rig cameras, or ``names``)."""
        ground, sigs = self._map_assets(map_api)
        boxes = self.scene_boxes(frame, sigs)
        out: Cameras = {}
        for name in names if names is not None else list(self.cameras):
            if name not in self.cameras:
                raise KeyError(f"camera {name!r} is not in the rig {list(self.cameras)}")
            image = self.cameras[name].render(ground, frame.ego_status.ego_pose, boxes)
            out[name] = Camera(self.calibrations[name], image)
        return out

    def render_lidar(self, frame: Frame, map_api: Map) -> Lidar:
        """LiDAR point cloud of ``frame`` (objects only: signal heads are not cast)."""
        ground, _ = self._map_assets(map_api)
        return Lidar(self.lidar.render(ground, frame.ego_status.ego_pose, self.boxes(frame)))

    def attach(self, scene: Scene, sensor_config: SensorConfig) -> Scene:
        """Fill the history frames' cameras and LiDAR that ``sensor_config`` asks for (in place); returns it."""
        if scene.map_api is None:
            raise ValueError(f"scene {scene.token}: rendering sensors needs the scene's map")
        for index, frame in enumerate(scene.frames[: scene.current_index + 1]):
            names = sensor_config.cameras_at(index)
            if names:
                frame.cameras = self.render_cameras(frame, scene.map_api, names)
            if sensor_config.lidar_at(index):
                frame.lidar = self.render_lidar(frame, scene.map_api)
        return scene
