"""Ray-cast LiDAR: every beam of a spinning sensor against the boxes (slab test) and the ground plane."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import LidarIndex
from irl_vla.data.geometry import transform_points
from sim_bridges.embedded.render.camera import Box3D
from sim_bridges.embedded.render.ground import INTENSITY, GroundTexture
from sim_bridges.embedded.render.rig import LidarConfig

BOX_INTENSITY = 0.35
REFLECTIVE = {(255, 110, 0), (210, 40, 40), (255, 170, 0)}  # cones, barriers, signs return brightly


class LidarRenderer:
    """Casts the rays of ``config`` from its origin in the ego frame."""

    def __init__(self, config: LidarConfig) -> None:
        self.config = config
        self.directions, self.ring = config.directions()  # (R, 3), (R,)
        self.origin = np.asarray(config.origin, dtype=np.float64)
        down = self.directions[:, 2] < -1e-6
        t = np.full(len(self.directions), np.inf)
        t[down] = -self.origin[2] / self.directions[down, 2]
        self._t_ground = t  # (R,) range to the ground plane

    def render(self, ground: GroundTexture, ego_pose: npt.NDArray[np.float64], boxes: list[Box3D]) -> np.ndarray:
        """Point cloud ``(6, N)`` float32 (rows ``LidarIndex``) in the ego frame."""
        t_hit = self._t_ground.copy()
        intensity = np.full(len(t_hit), -1.0, dtype=np.float32)  # -1: ground, filled below
        o, d = self.origin, self.directions
        for box in boxes:
            if np.linalg.norm(box.centre[:2] - o[:2]) - np.linalg.norm(box.size[:2]) / 2 > self.config.max_range:
                continue
            c, s = np.cos(box.heading), np.sin(box.heading)
            rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            o_l = rot.T @ (o - box.centre)  # (3,)
            d_l = d @ rot  # (R, 3) directions in the box frame
            half = box.size / 2
            with np.errstate(divide="ignore", invalid="ignore"):
                t1 = (-half - o_l) / d_l
                t2 = (half - o_l) / d_l
            t_near = np.nanmax(np.minimum(t1, t2), axis=1)
            t_far = np.nanmin(np.maximum(t1, t2), axis=1)
            hit = (t_far >= np.maximum(t_near, 0.0)) & (t_near > 0.0) & (t_near < t_hit)
            t_hit[hit] = t_near[hit]
            intensity[hit] = 0.8 if box.colour in REFLECTIVE else BOX_INTENSITY
        keep = t_hit < self.config.max_range
        points = o + t_hit[keep, None] * d[keep]  # (N, 3)
        inten = intensity[keep]
        on_ground = inten < 0
        if on_ground.any():
            inten[on_ground] = INTENSITY[ground.lookup(transform_points(points[on_ground, :2], ego_pose))]
        out = np.zeros((len(LidarIndex), len(points)), dtype=np.float32)
        out[[LidarIndex.X, LidarIndex.Y, LidarIndex.Z]] = points.T
        out[LidarIndex.INTENSITY] = inten
        out[LidarIndex.RING] = self.ring[keep]
        return out
