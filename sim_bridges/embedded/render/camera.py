"""Pinhole camera rendering of a logged frame: textured ground plane, then boxes far to near.

Per camera, the ground point hit by every pixel's ray is fixed in the ego frame (the camera is rigidly
mounted and the ground is flat), so it is computed once; a frame then costs one rigid transform and one
raster look-up per ground pixel, plus a PIL polygon fill per visible box face.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from irl_vla.data.enums import AgentClass
from irl_vla.data.geometry import transform_points
from irl_vla.data.sensors import CameraCalibration
from sim_bridges.embedded.render.ground import PALETTE, GroundTexture

SKY_TOP, SKY_HORIZON = np.array([110, 150, 205]), np.array([185, 205, 225])
HAZE = np.array([170, 185, 200])
NEAR = 0.2  # [m] near clipping plane
HAZE_LEVELS = 32

CAR_COLOURS = np.array(
    [(180, 30, 30), (30, 60, 150), (200, 200, 205), (40, 40, 45), (120, 125, 130), (20, 100, 60), (230, 230, 235)]
)
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    AgentClass.PEDESTRIAN.value: (200, 120, 60),
    AgentClass.BICYCLE.value: (40, 160, 200),
    AgentClass.TRAFFIC_CONE.value: (255, 110, 0),
    AgentClass.BARRIER.value: (210, 40, 40),
    AgentClass.CZONE_SIGN.value: (255, 170, 0),
    AgentClass.GENERIC_OBJECT.value: (130, 100, 70),
}
LIGHT_COLOURS = {True: (255, 20, 20), False: (20, 230, 60)}  # is_red -> lit lamp colour
HOUSING = (35, 35, 35)

# Box faces as corner indices (corners: bit 0 = +x, bit 1 = +y, bit 2 = +z half extents), outward normals.
FACES = (
    ((1, 3, 7, 5), (1.0, 0.0, 0.0)),
    ((0, 4, 6, 2), (-1.0, 0.0, 0.0)),
    ((2, 6, 7, 3), (0.0, 1.0, 0.0)),
    ((0, 1, 5, 4), (0.0, -1.0, 0.0)),
    ((4, 5, 7, 6), (0.0, 0.0, 1.0)),
)
SHADE = np.array([0.95, 0.6, 0.8, 0.75, 1.1])  # per face: light from the front-left and above
CORNER_SIGNS = np.array([[(i & 1) * 2 - 1, (i >> 1 & 1) * 2 - 1, (i >> 2 & 1) * 2 - 1] for i in range(8)], float)


@dataclass
class Box3D:
    """A box to draw, in the ego frame: centre ``(3,)`` [m], size (length, width, height) [m], heading [rad].

    ``front_colour`` overrides the colour of the +x face (a traffic light's lamp).
    """

    centre: npt.NDArray[np.float64]
    size: npt.NDArray[np.float64]
    heading: float
    colour: tuple[int, int, int]
    front_colour: tuple[int, int, int] | None = None

    def corners(self) -> npt.NDArray[np.float64]:
        """Corners ``(8, 3)`` in the ego frame."""
        local = CORNER_SIGNS * (self.size / 2)
        c, s = np.cos(self.heading), np.sin(self.heading)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        return local @ rot.T + self.centre


def object_colour(name: str, track_token: str) -> tuple[int, int, int]:
    """Colour of an annotated object: by class, vehicles by a stable hash of their track token."""
    if name == AgentClass.VEHICLE.value:
        return tuple(int(v) for v in CAR_COLOURS[zlib.crc32(track_token.encode()) % len(CAR_COLOURS)])  # type: ignore[return-value]
    return CLASS_COLOURS.get(name, (128, 128, 128))


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
        self._background = sky.reshape(height, width, 3)

    def project(self, points_ego: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Pixel coordinates ``(N, 2)`` and depth ``(N,)`` [m] of ego-frame points ``(N, 3)``."""
        cam = (np.asarray(points_ego, dtype=np.float64) - self.origin) @ self.rotation  # (N, 3)
        depth = cam[:, 2]
        uvw = cam @ self.intrinsics.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[:, :2] / uvw[:, 2:3]
        return uv, depth

    def render(self, ground: GroundTexture, ego_pose: npt.NDArray[np.float64], boxes: list[Box3D]) -> np.ndarray:
        """Image ``(H, W, 3)`` uint8 of the scene seen from the ego at global rear-axle pose ``ego_pose``."""
        image = self._background.reshape(-1, 3).copy()
        classes = ground.lookup(transform_points(self._ground_xy, ego_pose))
        image[self._ground_idx] = self._hazed_palette[self._haze_offset + classes]
        pil = Image.fromarray(image.reshape(self.height, self.width, 3))
        self.draw_boxes(ImageDraw.Draw(pil), boxes)
        return np.asarray(pil)

    def draw_boxes(self, draw: ImageDraw.ImageDraw, boxes: list[Box3D]) -> None:
        """Paint visible faces of ``boxes``, farthest first (visibility and culling vectorised over boxes)."""
        if not boxes:
            return
        corners = np.stack([b.corners() for b in boxes])  # (B, 8, 3) ego frame
        cam = (corners - self.origin) @ self.rotation  # (B, 8, 3) camera frame
        depth = cam[..., 2]
        uvw = cam @ self.intrinsics.T
        with np.errstate(divide="ignore", invalid="ignore"):
            u = uvw[..., 0] / uvw[..., 2]
        in_front = depth >= NEAR
        # Cull boxes wholly behind the camera, or in front but wholly left or right of the image.
        off_side = np.all(in_front, axis=1) & ((np.max(u, axis=1) < 0) | (np.min(u, axis=1) > self.width))
        keep = np.any(in_front, axis=1) & ~off_side
        headings = np.array([b.heading for b in boxes])
        c, s = np.cos(headings), np.sin(headings)  # (B,)
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
        dist = np.linalg.norm(corners.mean(axis=1) - self.origin, axis=1)
        for b in np.argsort(-dist):
            if not keep[b]:
                continue
            box = boxes[b]
            for k in np.flatnonzero(visible[b]):
                idx = face_idx[k]
                if in_front[b, idx].all():
                    pts = uvw[b, idx]
                    uv = pts[:, :2] / pts[:, 2:3]
                else:
                    poly = _clip_near(cam[b, idx])
                    if len(poly) < 3:
                        continue
                    pts = poly @ self.intrinsics.T
                    uv = pts[:, :2] / pts[:, 2:3]
                colour = box.front_colour if (k == 0 and box.front_colour is not None) else box.colour
                shaded = tuple(int(min(255, v * SHADE[k])) for v in colour)
                draw.polygon(uv.ravel().tolist(), fill=shaded)


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
