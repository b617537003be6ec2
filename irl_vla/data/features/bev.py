"""``BevGrid``: the bird's-eye grid around the ego shared by the LiDAR histogram and the BEV semantic map.

Cell ``[i, j]`` covers x in ``[x_min + i * resolution, x_min + (i + 1) * resolution)`` (x forward) and y in
``[y_min + j * resolution, ...)`` (y left), in the current ego rear-axle frame: the first axis (H) runs forward,
the second (W) to the left.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class BevGrid:
    """A square-celled grid in the ego frame.

    Attributes:
        x_min: rear edge [m].
        x_max: front edge [m].
        y_min: right edge [m].
        y_max: left edge [m].
        resolution: cell size [m].
    """

    x_min: float = -32.0
    x_max: float = 32.0
    y_min: float = -32.0
    y_max: float = 32.0
    resolution: float = 0.5

    def __post_init__(self) -> None:
        if not self.resolution > 0:
            raise ValueError(f"BevGrid.resolution: expected > 0 [m], got {self.resolution}")
        if not (self.x_max > self.x_min and self.y_max > self.y_min):
            raise ValueError(
                f"BevGrid: empty range x [{self.x_min}, {self.x_max}], y [{self.y_min}, {self.y_max}] [m]"
            )
        for name, extent in (("x", self.x_max - self.x_min), ("y", self.y_max - self.y_min)):
            cells = extent / self.resolution
            if abs(cells - round(cells)) > 1e-6:
                raise ValueError(f"BevGrid: the {name} range {extent} m is not a whole number of {self.resolution} m")

    @property
    def height(self) -> int:
        """Cells along x (H)."""
        return round((self.x_max - self.x_min) / self.resolution)

    @property
    def width(self) -> int:
        """Cells along y (W)."""
        return round((self.y_max - self.y_min) / self.resolution)

    @property
    def radius(self) -> float:
        """Distance from the ego to the farthest corner [m] (for map queries)."""
        return float(np.hypot(max(-self.x_min, self.x_max), max(-self.y_min, self.y_max)))

    def cell_indices(self, xy: FloatArray) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_]]:
        """Row and column of points ``(P, 2)`` [m] and whether each lies on the grid ``(P,)``."""
        i = np.floor((xy[:, 0] - self.x_min) / self.resolution).astype(np.int64)
        j = np.floor((xy[:, 1] - self.y_min) / self.resolution).astype(np.int64)
        inside = (i >= 0) & (i < self.height) & (j >= 0) & (j < self.width)
        return i, j, inside

    def centres(self) -> tuple[FloatArray, FloatArray]:
        """Coordinates x and y [m] of every cell centre, each ``(H, W)``."""
        x = self.x_min + (np.arange(self.height) + 0.5) * self.resolution
        y = self.y_min + (np.arange(self.width) + 0.5) * self.resolution
        return np.meshgrid(x, y, indexing="ij")

    def mask(self, geometries: Iterable[BaseGeometry]) -> npt.NDArray[np.bool_]:
        """Cells ``(H, W)`` whose centre lies in (or on the boundary of) any of the ego-frame ``geometries``."""
        out = np.zeros((self.height, self.width), dtype=bool)
        xs, ys = self.centres()
        for geometry in geometries:
            if geometry.is_empty:
                continue
            x0, y0, x1, y1 = geometry.bounds
            i0, i1 = np.clip(np.searchsorted(xs[:, 0], [x0, x1], side="left"), 0, self.height)
            j0, j1 = np.clip(np.searchsorted(ys[0], [y0, y1], side="left"), 0, self.width)
            i1, j1 = min(i1 + 1, self.height), min(j1 + 1, self.width)
            if i0 >= i1 or j0 >= j1:
                continue
            shapely.prepare(geometry)
            out[i0:i1, j0:j1] |= shapely.intersects_xy(geometry, xs[i0:i1, j0:j1], ys[i0:i1, j0:j1])
        return out
