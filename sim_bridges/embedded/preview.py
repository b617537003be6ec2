"""Preview pictures of a scene: every camera of the rig, and a bird's-eye view of the current frame.

The BEV (ego frame, x up) shows the map (lanes, connectors, crosswalks), traffic-light states on the
signalised connectors (red/green), the annotated objects, the ego, its route centreline, history and the
expert's future, with the meta-action, navigation instruction and scene description as the title. The LiDAR
picture shows the channels of the ``lidar_bev`` feature (returns below and above the split height, and the ground
returns' intensity) over the same range, with the expert's future: what a policy's LiDAR branch is given.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Polygon as PolygonPatch
from PIL import Image

from irl_vla.common.io import replacing
from irl_vla.data.enums import BoundingBoxIndex, SE2Index
from irl_vla.data.features.bev import BevGrid
from irl_vla.data.features.lidar import LidarBevBuilder, LidarBevChannel
from irl_vla.data.geometry import box_corners, points_to_local
from irl_vla.data.map import MapLayer
from irl_vla.data.scene import Scene
from irl_vla.data.vehicle import PACIFICA
from sim_bridges.embedded.render.sensors import SensorRenderer
from sim_bridges.embedded.render.shapes import object_colour

BEV_RANGE = (-20.0, 60.0, -35.0, 35.0)  # x_min, x_max, y_min, y_max in the ego frame [m]


def _plot(ax: plt.Axes, xy: np.ndarray, **kw: object) -> None:
    # Ego frame x forward is drawn upwards, y left is drawn to the left.
    ax.plot(-xy[:, 1], xy[:, 0], **kw)


def _fill(ax: plt.Axes, xy: np.ndarray, **kw: object) -> None:
    ax.add_patch(PolygonPatch(np.stack([-xy[:, 1], xy[:, 0]], axis=1), closed=True, **kw))


def bev_figure(scene: Scene, title: str = "") -> plt.Figure:
    """Bird's-eye view of the scene's current frame."""
    if scene.map_api is None:
        raise ValueError(f"scene {scene.token}: the BEV needs the scene's map")
    frame = scene.current_frame
    ego = frame.ego_status.ego_pose
    fig, ax = plt.subplots(figsize=(6.4, 7.2), dpi=100)
    ax.set_facecolor((0.38, 0.44, 0.33))
    x0, x1, y0, y1 = BEV_RANGE
    centre = ego[:2] + PACIFICA.rear_axle_to_center * np.array([np.cos(ego[2]), np.sin(ego[2])])
    layers = [MapLayer.INTERSECTION, MapLayer.LANE, MapLayer.LANE_CONNECTOR, MapLayer.CROSSWALK]
    near = scene.map_api.query_radius(centre, 110.0, layers)
    for layer in (MapLayer.INTERSECTION, MapLayer.LANE, MapLayer.LANE_CONNECTOR):
        for obj in near.get(layer, []):
            _fill(ax, points_to_local(np.asarray(obj.polygon.exterior.coords), ego), fc=(0.35, 0.35, 0.37), ec="none")
    for obj in near.get(MapLayer.LANE, []):
        for boundary in (obj.left_boundary, obj.right_boundary):
            _plot(ax, points_to_local(boundary, ego), color=(0.85, 0.85, 0.8), lw=0.6)
    for obj in near.get(MapLayer.CROSSWALK, []):
        _fill(
            ax, points_to_local(np.asarray(obj.polygon.exterior.coords), ego), fc="none", ec="white", hatch="||", lw=0.5
        )
    for cid, red in frame.traffic_lights:
        if scene.map_api.has(MapLayer.LANE_CONNECTOR, cid):
            line = points_to_local(scene.map_api.get_lane(cid).centerline[:, :2], ego)
            if np.any(np.abs(line[:, 0] - 20) < 45):
                _plot(ax, line[:12], color="red" if red else "limegreen", lw=2.5, alpha=0.9)
    if frame.roadblock_ids:
        try:
            route = scene.map_api.route_centerline(frame.roadblock_ids, ego)
            _plot(ax, points_to_local(route[:, :2], ego), color="deepskyblue", lw=1.2, ls="--", label="route")
        except (KeyError, ValueError):
            pass
    ann = frame.annotations
    for k, box in enumerate(ann.boxes):
        corners = box_corners(
            box[[BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]],
            box[BoundingBoxIndex.LENGTH],
            box[BoundingBoxIndex.WIDTH],
        )
        colour = np.array(object_colour(ann.names[k], ann.track_tokens[k])) / 255
        _fill(ax, corners, fc=colour, ec="black", lw=0.6)
        v = ann.velocity_3d[k, :2]
        if np.hypot(*v) > 0.5:
            start = box[[BoundingBoxIndex.X, BoundingBoxIndex.Y]]
            _plot(ax, np.stack([start, start + v]), color="black", lw=0.8)
    ego_box = box_corners([PACIFICA.rear_axle_to_center, 0.0, 0.0], PACIFICA.length, PACIFICA.width)
    _fill(ax, ego_box, fc="white", ec="black", lw=1.0)
    history = scene.get_history_trajectory().poses[:, : SE2Index.HEADING]
    _plot(ax, history, color="orange", lw=1.5, marker="o", ms=3, label="history")
    future = scene.get_future_trajectory().poses[:, : SE2Index.HEADING]
    _plot(ax, np.concatenate([[[0.0, 0.0]], future]), color="magenta", lw=2, marker="o", ms=3, label="expert future")
    ax.set_xlim(-y1, -y0)
    ax.set_ylim(x0, x1)
    ax.set_aspect("equal")
    ax.set_xlabel("-y [m] (right)")
    ax.set_ylabel("x [m] (forward)")
    ax.legend(loc="lower left", fontsize=7)
    label = frame.meta_action.value if frame.meta_action is not None else "-"
    text = f"[{label}] {frame.instruction} | {frame.scene_description}"
    wrapped = "\n".join(textwrap.wrap(text, 80))
    ax.set_title(f"{title}\n{wrapped}" if title else wrapped, fontsize=7, loc="left")
    fig.tight_layout()
    return fig


#: Colour-scale tops of the LiDAR channels: counts are scaled to [0, 1]; road (0.1) and verge (0.05) differ
#: visibly only on a short intensity scale (lane paint, 0.6, saturates it).
LIDAR_SCALE = {LidarBevChannel.BELOW: 1.0, LidarBevChannel.ABOVE: 1.0, LidarBevChannel.INTENSITY: 0.15}


def lidar_figure(scene: Scene, lidar_pc: np.ndarray, title: str = "") -> plt.Figure:
    """The ``lidar_bev`` channels of one sweep ``(6, P)`` (with intensity) over ``BEV_RANGE``, x up, y left."""
    x0, x1, y0, y1 = BEV_RANGE
    grid = BevGrid(x_min=x0, x_max=x1, y_min=y0, y_max=y1, resolution=0.5)
    channels = LidarBevBuilder(grid=grid, intensity=True).histogram(lidar_pc)  # (3, H, W)
    future = np.concatenate([[[0.0, 0.0]], scene.get_future_trajectory().poses[:, : SE2Index.HEADING]])
    fig, axes = plt.subplots(1, len(LidarBevChannel), figsize=(4.2 * len(LidarBevChannel), 5.0))
    names = {
        LidarBevChannel.BELOW: "returns below the split height (counts)",
        LidarBevChannel.ABOVE: "returns above it (counts)",
        LidarBevChannel.INTENSITY: "largest ground-return intensity",
    }
    for ax, channel in zip(axes, LidarBevChannel, strict=True):
        # Rows run along x, columns along y; drawn with y to the left, as in the BEV.
        ax.imshow(
            channels[channel],
            origin="lower",
            extent=(-y0, -y1, x0, x1),
            cmap="magma",
            vmin=0.0,
            vmax=LIDAR_SCALE[channel],
            interpolation="nearest",
        )
        _plot(ax, future, color="lime", lw=1.0, marker="o", ms=2)
        ax.plot([0.0], [0.0], "w^", ms=6)
        ax.set_xlim(-y1, -y0)
        ax.set_ylim(x0, x1)
        ax.set_title(names[channel], fontsize=8)
        ax.set_xlabel("-y [m] (left of the ego is left)")
    axes[0].set_ylabel("x [m]")
    fig.suptitle(title or scene.token, fontsize=8)
    fig.tight_layout()
    return fig


def write_preview(scene: Scene, renderer: SensorRenderer, out_dir: str | Path, title: str = "") -> list[Path]:
    """Write the scene's pictures: cameras, BEV and LiDAR BEV.

    ``<token>_<camera>.png`` per camera, ``<token>_cameras.png`` (side by side), ``<token>_bev.png`` and
    ``<token>_lidar.png``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if scene.map_api is None:
        raise ValueError(f"scene {scene.token}: the preview needs the scene's map")
    cams = renderer.render_cameras(scene.current_frame, scene.map_api)
    written = []
    for name, cam in cams.items():
        assert cam.image is not None
        path = out_dir / f"{scene.token}_{name}.png"
        with replacing(path) as tmp:
            Image.fromarray(cam.image).save(tmp, format="PNG")
        written.append(path)
    strip = np.concatenate([c.image for c in cams.values() if c.image is not None], axis=1)
    path = out_dir / f"{scene.token}_cameras.png"
    with replacing(path) as tmp:
        Image.fromarray(strip).save(tmp, format="PNG")
    written.append(path)
    lidar = renderer.render_lidar(scene.current_frame, scene.map_api)
    for suffix, fig in (("bev", bev_figure(scene, title)), ("lidar", lidar_figure(scene, lidar.lidar_pc, title))):
        path = out_dir / f"{scene.token}_{suffix}.png"
        with replacing(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        written.append(path)
    return written
