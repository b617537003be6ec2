"""The ground of a map as a class raster: road, lane markings, crosswalks, stop lines, off-road.

A ``GroundTexture`` is built once per map (PIL polygon and line fills) and looked up per pixel or LiDAR
return; the camera turns classes into colours with ``PALETTE``.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw
from shapely.geometry import Polygon

from irl_vla.data.map import Lane, Map, MapLayer, StopLine, StopLineType
from irl_vla.data.map.map_objects import DRIVABLE_LAYERS, LANE_LAYERS


class GroundClass(IntEnum):
    """Classes of the ground raster."""

    OFF_ROAD = 0
    ROAD = 1
    WHITE_MARKING = 2
    YELLOW_MARKING = 3
    CROSSWALK = 4
    STOP_LINE = 5


#: RGB colour of each ground class.
PALETTE = np.zeros((256, 3), dtype=np.uint8)
PALETTE[GroundClass.OFF_ROAD] = (96, 112, 84)
PALETTE[GroundClass.ROAD] = (88, 88, 92)
PALETTE[GroundClass.WHITE_MARKING] = (225, 225, 220)
PALETTE[GroundClass.YELLOW_MARKING] = (220, 180, 40)
PALETTE[GroundClass.CROSSWALK] = (215, 215, 210)
PALETTE[GroundClass.STOP_LINE] = (235, 235, 230)

#: LiDAR return intensity of each ground class.
INTENSITY = np.zeros(256, dtype=np.float32)
INTENSITY[[GroundClass.OFF_ROAD, GroundClass.ROAD]] = (0.05, 0.1)
INTENSITY[[GroundClass.WHITE_MARKING, GroundClass.YELLOW_MARKING, GroundClass.CROSSWALK, GroundClass.STOP_LINE]] = 0.6

DASH, GAP = 3.0, 6.0  # [m] dashed lane lines


class GroundTexture:
    """Class raster of a map's ground at ``resolution`` [m/px], with a margin around the map's bounds."""

    def __init__(self, map_api: Map, resolution: float = 0.1, margin: float = 20.0) -> None:
        x0, y0, x1, y1 = map_api.bounds
        self.resolution = resolution
        self.x0, self.y1 = x0 - margin, y1 + margin
        self.width = int(np.ceil((x1 - x0 + 2 * margin) / resolution))
        self.height = int(np.ceil((y1 - y0 + 2 * margin) / resolution))
        image = Image.new("L", (self.width, self.height), int(GroundClass.OFF_ROAD))
        draw = ImageDraw.Draw(image)
        for layer in (*DRIVABLE_LAYERS, *LANE_LAYERS):
            for obj in map_api.objects(layer):
                self._polygon(draw, obj.polygon, GroundClass.ROAD)
        for obj in map_api.objects(MapLayer.CROSSWALK):
            self._zebra(draw, obj.polygon)
        for obj in map_api.objects(MapLayer.STOP_LINE):
            assert isinstance(obj, StopLine)
            if obj.stop_line_type in (StopLineType.TRAFFIC_LIGHT, StopLineType.STOP_SIGN, StopLineType.YIELD):
                self._polygon(draw, obj.polygon, GroundClass.STOP_LINE)
        self._lane_lines(draw, map_api)
        self.classes = np.asarray(image, dtype=np.uint8)  # (H, W)
        # The raster framed by one off-road pixel, flat: clamped indices then need no bounds mask.
        framed = np.full((self.height + 2, self.width + 2), int(GroundClass.OFF_ROAD), dtype=np.uint8)
        framed[1:-1, 1:-1] = self.classes
        self._framed = framed.ravel()

    # ------------------------------------------------------------------ drawing
    def _px(self, xy: npt.ArrayLike) -> list[tuple[float, float]]:
        xy = np.asarray(xy, dtype=np.float64)
        cols = (xy[:, 0] - self.x0) / self.resolution
        rows = (self.y1 - xy[:, 1]) / self.resolution
        return list(zip(cols.tolist(), rows.tolist(), strict=True))

    def _polygon(self, draw: ImageDraw.ImageDraw, polygon: Polygon, value: int) -> None:
        for part in getattr(polygon, "geoms", [polygon]):
            draw.polygon(self._px(np.asarray(part.exterior.coords)), fill=int(value))

    def _zebra(self, draw: ImageDraw.ImageDraw, polygon: Polygon) -> None:
        """Bars 0.5 m wide every 1 m along the crosswalk's long side, each across its short side."""
        corners = np.asarray(polygon.minimum_rotated_rectangle.exterior.coords)[:4]
        e1, e2 = corners[1] - corners[0], corners[3] - corners[0]
        long_, short = (e1, e2) if np.linalg.norm(e1) >= np.linalg.norm(e2) else (e2, e1)
        n = np.linalg.norm(long_)
        u = long_ / n
        for k in range(int(n // 1.0)):
            a = corners[0] + u * (k + 0.25)
            b = a + u * 0.5
            draw.polygon(self._px([a, b, b + short, a + short]), fill=int(GroundClass.CROSSWALK))

    def _line(self, draw: ImageDraw.ImageDraw, xy: np.ndarray, value: int, dashed: bool) -> None:
        width = max(1, round(0.15 / self.resolution))
        if not dashed:
            draw.line(self._px(xy), fill=int(value), width=width)
            return
        seg = np.linalg.norm(np.diff(xy, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        start = 0.0
        while start < s[-1]:
            ts = np.linspace(start, min(start + DASH, s[-1]), 4)
            pts = np.stack([np.interp(ts, s, xy[:, 0]), np.interp(ts, s, xy[:, 1])], axis=1)
            draw.line(self._px(pts), fill=int(value), width=width)
            start += DASH + GAP

    def _lane_lines(self, draw: ImageDraw.ImageDraw, map_api: Map) -> None:
        """Edges solid white; between same-direction lanes dashed white; between directions solid yellow."""
        lanes = [obj for obj in map_api.objects(MapLayer.LANE) if isinstance(obj, Lane)]
        by_block: dict[str, list[Lane]] = {}
        for lane in lanes:
            by_block.setdefault(lane.roadblock_id, []).append(lane)
        for block in by_block.values():
            block.sort(key=lambda ln: ln.lane_index)
            for i, lane in enumerate(block):
                if i > 0:
                    self._line(draw, lane.left_boundary, GroundClass.WHITE_MARKING, dashed=True)
                if i == len(block) - 1:
                    self._line(draw, lane.right_boundary, GroundClass.WHITE_MARKING, dashed=False)
            leftmost = block[0]
            # A left edge shared with an opposite-direction lane is the centre line.
            shared = self._opposite_neighbour(map_api, leftmost)
            value = GroundClass.YELLOW_MARKING if shared else GroundClass.WHITE_MARKING
            self._line(draw, leftmost.left_boundary, value, dashed=False)

    @staticmethod
    def _opposite_neighbour(map_api: Map, lane: Lane) -> bool:
        mid = lane.centerline[len(lane.centerline) // 2]
        probe = mid[:2] + 3.5 * np.array([-np.sin(mid[2]), np.cos(mid[2])])
        return any(
            isinstance(other, Lane) and other.roadblock_id != lane.roadblock_id
            for other in map_api.objects_containing(probe, MapLayer.LANE)
        )

    # ------------------------------------------------------------------ lookup
    def lookup_local(
        self, x: npt.NDArray[np.float32], y: npt.NDArray[np.float32], pose: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.uint8]:
        """Ground class at points ``x``, ``y`` ``(N,)`` [m] given in the frame of the global ``pose`` (fast path).

        One affine map to raster cells in float32 (cells are 0.1 m; float32 keeps far better than that over
        any map) and one gather; outside the raster is off-road.
        """
        c, s, r = np.cos(pose[2]), np.sin(pose[2]), self.resolution
        f = np.float32
        # Truncation maps (-1, 0) to 0 instead of -1: the raster's off-road margin, so no matter.
        col = (x * f(c / r) - y * f(s / r) + f((pose[0] - self.x0) / r)).astype(np.int32)
        row = (-(x * f(s / r)) - y * f(c / r) + f((self.y1 - pose[1]) / r)).astype(np.int32)
        np.clip(col, -1, self.width, out=col)
        np.clip(row, -1, self.height, out=row)
        return self._framed[(row + 1) * (self.width + 2) + (col + 1)]

    def lookup(self, xy: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """Ground class at world points ``(..., 2)`` [m] (off-road outside the raster)."""
        cols = np.floor((xy[..., 0] - self.x0) / self.resolution).astype(np.int64)
        rows = np.floor((self.y1 - xy[..., 1]) / self.resolution).astype(np.int64)
        inside = (cols >= 0) & (cols < self.width) & (rows >= 0) & (rows < self.height)
        out = np.zeros(xy.shape[:-1], dtype=np.uint8)
        out[inside] = self.classes[rows[inside], cols[inside]]
        return out
