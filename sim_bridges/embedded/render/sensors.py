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
from sim_bridges.embedded.render.camera import HOUSING, LIGHT_COLOURS, Box3D, CameraRenderer, object_colour
from sim_bridges.embedded.render.ground import GroundTexture
from sim_bridges.embedded.render.lidar import LidarRenderer
from sim_bridges.embedded.render.rig import LidarConfig, RigConfig

LIGHT_HEIGHT = 5.0  # [m] centre of a signal head above the road
LIGHT_SIZE = np.array([0.3, 0.35, 0.9])  # [m] depth, width, height of a signal head
LIGHT_RANGE = 90.0  # [m] signal heads farther than this are not drawn


@dataclass(frozen=True)
class SignalHead:
    """A traffic light over an incoming lane: the lane connector it governs and its global pose."""

    connector_id: str
    pose: np.ndarray  # (3,) global x, y [m] and the heading its lamp faces [rad]


def signal_heads(map_api: Map) -> list[SignalHead]:
    """One head per signalised lane connector, above the end of its incoming lane (side by side per lane)."""
    heads = []
    for obj in map_api.objects(MapLayer.STOP_LINE):
        if not isinstance(obj, StopLine) or obj.stop_line_type is not StopLineType.TRAFFIC_LIGHT:
            continue
        by_lane: dict[str, list[str]] = {}
        for cid in obj.lane_connector_ids:
            conn = map_api.get_lane(cid)
            assert isinstance(conn, LaneConnector)
            by_lane.setdefault(conn.incoming_ids[0], []).append(cid)
        for lane_id, cids in by_lane.items():
            x, y, h = map_api.get_lane(lane_id).centerline[-1]
            for k, cid in enumerate(sorted(cids, key=lambda c: map_api.get_lane(c).turn != "left")):
                lateral = (k - (len(cids) - 1) / 2) * -0.5  # lefts on the left
                px, py = x - np.sin(h) * lateral, y + np.cos(h) * lateral
                heads.append(SignalHead(cid, np.array([px, py, h + np.pi])))
    return heads


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

    def _map_assets(self, map_api: Map) -> tuple[GroundTexture, list[SignalHead]]:
        for cached, ground, heads in self._maps:
            if cached is map_api:
                return ground, heads
        entry = (map_api, GroundTexture(map_api), signal_heads(map_api))
        self._maps = [entry, *self._maps[:3]]
        return entry[1], entry[2]

    def boxes(self, frame: Frame, heads: list[SignalHead]) -> list[Box3D]:
        """Annotated objects and signal heads as ego-frame boxes."""
        ann = frame.annotations
        out = []
        for k, box in enumerate(ann.boxes):
            size = box[[BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]]
            centre = box[[BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.Z]]
            colour = object_colour(ann.names[k], ann.track_tokens[k])
            out.append(Box3D(centre, size, float(box[BoundingBoxIndex.HEADING]), colour))
        states = dict(frame.traffic_lights)
        ego = frame.ego_status.ego_pose
        for head in heads:
            rel = absolute_to_relative(head.pose, ego)
            if rel[0] < -5.0 or np.hypot(rel[0], rel[1]) > LIGHT_RANGE:
                continue
            red = states.get(head.connector_id)
            lamp = LIGHT_COLOURS[red] if red is not None else HOUSING
            centre = np.array([rel[0], rel[1], LIGHT_HEIGHT])
            out.append(Box3D(centre, LIGHT_SIZE, float(rel[2]), HOUSING, front_colour=lamp))
        return out

    def render_cameras(self, frame: Frame, map_api: Map, names: list[str] | None = None) -> Cameras:
        """Camera images of ``frame`` (all rig cameras, or ``names``)."""
        ground, heads = self._map_assets(map_api)
        boxes = self.boxes(frame, heads)
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
        boxes = self.boxes(frame, [])
        return Lidar(self.lidar.render(ground, frame.ego_status.ego_pose, boxes))

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
