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

    def _rays_towards(self, box: Box3D) -> npt.NDArray[np.intp]:
        """Indices of the rays whose azimuth lies within the box's angular extent seen from the sensor (plus a step).

        Rays are laid out beam by beam, ``azimuths`` per beam from -pi; a box around the sensor gets all rays.
        """
        n_az = self.config.azimuths
        step = 2 * np.pi / n_az
        c, s = np.cos(box.heading), np.sin(box.heading)
        half = box.size[:2] / 2
        local = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]]) * half  # (4, 2)
        corners = local @ np.array([[c, s], [-s, c]]) + box.centre[:2] - self.origin[:2]  # (4, 2)
        if np.linalg.norm(box.centre[:2] - self.origin[:2]) <= np.linalg.norm(half) + 0.5:
            return np.arange(len(self.directions))
        mid = np.arctan2(*(box.centre[1::-1] - self.origin[1::-1]))
        offsets = np.angle(np.exp(1j * (np.arctan2(corners[:, 1], corners[:, 0]) - mid)))  # (4,) wrapped
        lo = int(np.floor((mid + offsets.min() + np.pi) / step)) - 1
        hi = int(np.ceil((mid + offsets.max() + np.pi) / step)) + 1
        az = np.arange(lo, hi + 1) % n_az
        return (np.arange(self.config.beams)[:, None] * n_az + az[None]).ravel()

    def render(self, ground: GroundTexture, ego_pose: npt.NDArray[np.float64], boxes: list[Box3D]) -> np.ndarray:
        """Point cloud ``(6, N)`` float32 (rows ``LidarIndex``) in the ego frame."""
        t_hit = self._t_ground.copy()
        intensity = np.full(len(t_hit), -1.0, dtype=np.float32)  # -1: ground, filled below
        o, d = self.origin, self.directions
        for box in boxes:
            if np.linalg.norm(box.centre[:2] - o[:2]) - np.linalg.norm(box.size[:2]) / 2 > self.config.max_range:
                continue
            rays = self._rays_towards(box)  # (R',) only the azimuths the box spans can hit it
            c, s = np.cos(box.heading), np.sin(box.heading)
            rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            o_l = rot.T @ (o - box.centre)  # (3,)
            d_l = d[rays] @ rot  # (R', 3) directions in the box frame
            half = box.size / 2
            with np.errstate(divide="ignore", invalid="ignore"):
                t1 = (-half - o_l) / d_l
                t2 = (half - o_l) / d_l
            t_near = np.nanmax(np.minimum(t1, t2), axis=1)
            t_far = np.nanmin(np.maximum(t1, t2), axis=1)
            hit = (t_far >= np.maximum(t_near, 0.0)) & (t_near > 0.0) & (t_near < t_hit[rays])
            t_hit[rays[hit]] = t_near[hit]
            intensity[rays[hit]] = 0.8 if box.colour in REFLECTIVE else BOX_INTENSITY
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
