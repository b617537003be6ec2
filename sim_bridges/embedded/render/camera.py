"""Pinhole camera rendering of a logged frame: textured ground plane, then boxes far to near, then lamps.

Per camera, the ground point hit by every pixel's ray is fixed in the ego frame (the camera is rigidly
mounted and the ground is flat), so it is computed once; a frame then costs one rigid transform and one
raster look-up per ground pixel, plus a PIL polygon fill per visible box face, drawn straight into the
image's own memory. A lit lamp is a disc at least ``MIN_LAMP_RADIUS`` pixels wide, as a bright lamp glows on a
real sensor, so a signal's colour shows at a distance even at low resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from irl_vla.data.sensors import CameraCalibration
from sim_bridges.embedded.render.ground import PALETTE, GroundTexture
from sim_bridges.embedded.render.shapes import BoxSet

SKY_TOP, SKY_HORIZON = np.array([110, 150, 205]), np.array([185, 205, 225])
HAZE = np.array([170, 185, 200])
NEAR = 0.2  # [m] near clipping plane
HAZE_LEVELS = 32

LIGHT_COLOURS = {True: (255, 30, 30), False: (40, 240, 90)}  # is_red -> lit lamp colour
HOUSING = (30, 30, 32)
LAMP_RADIUS = 0.15  # [m] of a signal lamp
MIN_LAMP_RADIUS = 1.6  # [px] a lit lamp glows at least this wide

# Box faces as corner indices (corners: bit 0 = +x, bit 1 = +y, bit 2 = +z half extents), outward normals.
FACES = (
    ((1, 3, 7, 5), (1.0, 0.0, 0.0)),
    ((0, 4, 6, 2), (-1.0, 0.0, 0.0)),
    ((2, 6, 7, 3), (0.0, 1.0, 0.0)),
    ((0, 1, 5, 4), (0.0, -1.0, 0.0)),
    ((4, 5, 7, 6), (0.0, 0.0, 1.0)),
)
SHADE = np.array([0.95, 0.6, 0.8, 0.75, 1.1])  # per face: light from the front-left and above


@dataclass
class Box3D:
    """One box in the ego frame: what the LiDAR casts against (one per annotated object).

    Attributes:
        centre: ``(3,)`` [m].
        size: (length, width, height) [m].
        heading: [rad].
        colour: RGB (reflective colours return brightly).
    """

    centre: npt.NDArray[np.float64]
    size: npt.NDArray[np.float64]
    heading: float
    colour: tuple[int, int, int]


class CameraRenderer:
    """Renders one camera ``(H, W, 3)`` uint8 images from ground raster, ego pose and boxes."""

    def __init__(self, calibration: CameraCalibration, width: int, height: int, max_range: float) -> None:
        self.calibration, self.width, self.height = calibration, width, height
        self.rotation = calibration.sensor2lidar_rotation  # camera -> ego
        self.origin = calibration.sensor2lidar_translation
        self.intrinsics = calibration.intrinsics
        u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        pix = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3)
        rays = pix @ np.linalg.inv(self.intrinsics).T @ self.rotation.T  # (P, 3) in the ego frame
        down = rays[:, 2] < -1e-6
        lam = np.where(down, -self.origin[2] / np.where(down, rays[:, 2], -1.0), np.inf)
        ground = self.origin + lam[:, None] * rays  # (P, 3)
        dist = lam * np.linalg.norm(rays, axis=1)
        self._ground_idx = np.flatnonzero(dist < max_range)
        self._ground_xy = ground[self._ground_idx, :2]  # (G, 2) ego frame
        self._ground_x32 = self._ground_xy[:, 0].astype(np.float32)
        self._ground_y32 = self._ground_xy[:, 1].astype(np.float32)
        haze = np.clip(dist[self._ground_idx] / max_range, 0.0, 1.0) ** 1.5
        # Haze quantised to HAZE_LEVELS steps: colour = table[level * 256 + ground class], one gather per pixel.
        level = np.round(haze * (HAZE_LEVELS - 1)).astype(np.int64)
        self._haze_offset = (level * 256).astype(np.int64)  # (G,)
        w = np.linspace(0.0, 1.0, HAZE_LEVELS)[:, None, None]
        self._hazed_palette = (PALETTE[None].astype(np.float64) * (1 - w) + HAZE * w).astype(np.uint8).reshape(-1, 3)
        # Background: sky above the horizon, haze on the ground beyond range.
        elevation = np.clip(rays[:, 2] / np.linalg.norm(rays, axis=1), -1, 1)
        t = np.clip(elevation / 0.5, 0.0, 1.0)[:, None]
        sky = (SKY_HORIZON * (1 - t) + SKY_TOP * t).astype(np.uint8)
        sky[~(rays[:, 2] > -1e-6)] = HAZE.astype(np.uint8)
        self._background = _rgba32(sky)  # (P,) packed RGBA
        self._hazed_palette32 = _rgba32(self._hazed_palette)

    def project(self, points_ego: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Pixel coordinates ``(N, 2)`` and depth ``(N,)`` [m] of ego-frame points ``(N, 3)``."""
        cam = (np.asarray(points_ego, dtype=np.float64) - self.origin) @ self.rotation  # (N, 3)
        depth = cam[:, 2]
        uvw = cam @ self.intrinsics.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[:, :2] / uvw[:, 2:3]
        return uv, depth

    def render(self, ground: GroundTexture, ego_pose: npt.NDArray[np.float64], boxes: BoxSet) -> np.ndarray:
        """Image ``(H, W, 3)`` uint8 of the scene seen from the ego at global rear-axle pose ``ego_pose``."""
        # One packed RGBA word per pixel: whole-pixel copies and gathers, and PIL can draw in place.
        packed = self._background.copy()  # (P,) uint32
        classes = ground.lookup_local(self._ground_x32, self._ground_y32, ego_pose)
        packed[self._ground_idx] = self._hazed_palette32[self._haze_offset + classes]
        # PIL draws into the array's memory (no copy into PIL) and packs RGB out of it in C.
        pil = Image.frombuffer("RGBA", (self.width, self.height), packed, "raw", "RGBA", 0, 1)
        pil.readonly = False
        if len(boxes):
            self.draw_boxes(ImageDraw.Draw(pil), boxes)
        rgb = np.frombuffer(bytearray(pil.tobytes("raw", "RGB")), dtype=np.uint8)
        return rgb.reshape(self.height, self.width, 3)

    def draw_boxes(self, draw: ImageDraw.ImageDraw, boxes: BoxSet) -> None:
        """Paint visible faces of ``boxes``, objects farthest first, then each lit lamp on its box's front."""
        corners = boxes.corners()  # (B, 8, 3) ego frame
        cam = (corners - self.origin) @ self.rotation  # (B, 8, 3) camera frame
        depth = cam[..., 2]
        uvw = cam @ self.intrinsics.T
        with np.errstate(divide="ignore", invalid="ignore"):
            u = uvw[..., 0] / uvw[..., 2]
            v = uvw[..., 1] / uvw[..., 2]
        in_front = depth >= NEAR
        # Cull boxes wholly behind the camera, or in front but wholly left, right or above the image.
        all_front = np.all(in_front, axis=1)
        off = all_front & ((np.max(u, axis=1) < 0) | (np.min(u, axis=1) > self.width) | (np.max(v, axis=1) < 0))
        keep = np.any(in_front, axis=1) & ~off
        if not keep.any():
            return
        c, s = np.cos(boxes.heading), np.sin(boxes.heading)  # (B,)
        normals = np.array([n for _, n in FACES])  # (F, 3)
        world_n = np.stack(
            [
                c[:, None] * normals[:, 0] - s[:, None] * normals[:, 1],
                s[:, None] * normals[:, 0] + c[:, None] * normals[:, 1],
                np.broadcast_to(normals[:, 2], (len(boxes), len(FACES))),
            ],
            axis=-1,
        )  # (B, F, 3)
        face_idx = np.array([idx for idx, _ in FACES])  # (F, 4)
        centres = corners[:, face_idx].mean(axis=2)  # (B, F, 3)
        visible = np.einsum("bfk,bfk->bf", world_n, centres - self.origin) < 0  # (B, F)
        dist = np.linalg.norm(boxes.centre - self.origin, axis=1)  # (B,)
        group_dist = np.full(int(boxes.group.max()) + 1, -np.inf)
        np.maximum.at(group_dist, boxes.group, dist)
        order = np.lexsort((-dist, -group_dist[boxes.group]))
        order = order[keep[order]]  # (K,) the boxes this camera draws, in drawing order
        # Plain lists for the drawing loop (per-element numpy indexing is the slow part of it).
        shaded = np.minimum(255, boxes.colour[order, None, :] * SHADE[None, :, None]).astype(np.int64)  # (K, F, 3)
        fills = [[tuple(face) for face in box] for box in shaded.tolist()]
        uv = np.stack([u[order], v[order]], axis=-1)  # (K, 8, 2)
        uv_faces = uv[:, face_idx].reshape(len(order), len(FACES), -1).tolist()  # (K, F, 8)
        visible_l, all_front_l = visible[order].tolist(), all_front[order].tolist()
        lamps = (~np.isnan(boxes.lamp_z[order])).tolist()
        for i, b in enumerate(order.tolist()):
            faces = visible_l[i]
            for k in range(len(FACES)):
                if not faces[k]:
                    continue
                if all_front_l[i]:
                    draw.polygon(uv_faces[i][k], fill=fills[i][k])
                    continue
                poly = _clip_near(cam[b, face_idx[k]])
                if len(poly) >= 3:
                    pts = poly @ self.intrinsics.T
                    draw.polygon((pts[:, :2] / pts[:, 2:3]).ravel().tolist(), fill=fills[i][k])
            if lamps[i] and faces[0]:
                self._lamp(draw, boxes, b)

    def _lamp(self, draw: ImageDraw.ImageDraw, boxes: BoxSet, b: int) -> None:
        h = boxes.heading[b]
        front = boxes.centre[b] + np.array([np.cos(h), np.sin(h), 0.0]) * (boxes.size[b, 0] / 2 + 0.01)
        front[2] += boxes.lamp_z[b]
        uv, depth = self.project(front[None])
        if depth[0] < NEAR:
            return
        r = max(LAMP_RADIUS * self.intrinsics[0, 0] / depth[0], MIN_LAMP_RADIUS)
        x, y = uv[0]
        draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in boxes.lamp_colour[b]))


def _rgba32(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint32]:
    """Opaque RGBA pixels packed as one ``uint32`` each (bytes R, G, B, A in memory) of ``(N, 3)`` colours."""
    rgba = np.empty((len(rgb), 4), dtype=np.uint8)
    rgba[:, :3], rgba[:, 3] = rgb, 255
    return rgba.view(np.uint32).reshape(-1)


def _clip_near(poly: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Clip a camera-frame polygon ``(N, 3)`` to depth >= NEAR (Sutherland-Hodgman, one plane)."""
    out = []
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        a_in, b_in = a[2] >= NEAR, b[2] >= NEAR
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out) if out else np.zeros((0, 3))
