"""The BEV's pixel grid: ego-frame metres to image pixels (x forward drawn up, y left drawn left)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from irl_vla.common.config import require_at_least
from irl_vla.data.enums import XY, SE2Index


@dataclass
class BevConfig:
    """Size and scale of the bird's-eye view.

    Attributes:
        width: image width [px].
        height: image height [px].
        pixels_per_meter: scale [px/m].
        behind: road shown behind the ego's rear axle [m]; the rest of the height is ahead of it.
        plan_width: line width of the executed plan [px].
        candidate_width: line width of each candidate [px].
        route_width: line width of the route's centreline [px].
    """

    width: int = 600
    height: int = 720
    pixels_per_meter: float = 8.0
    behind: float = 18.0
    plan_width: int = 5
    candidate_width: int = 2
    route_width: int = 2

    def __post_init__(self) -> None:
        require_at_least(self, ("width", "height", "plan_width", "candidate_width", "route_width"), 1)
        if not self.pixels_per_meter > 0:
            raise ValueError(f"BevConfig.pixels_per_meter: expected > 0, got {self.pixels_per_meter}")
        if not 0 <= self.behind * self.pixels_per_meter < self.height:
            raise ValueError(
                f"BevConfig.behind: expected 0 <= behind < height / pixels_per_meter "
                f"({self.height / self.pixels_per_meter:.1f} m), got {self.behind}"
            )

    @property
    def ahead(self) -> float:
        """Road shown ahead of the rear axle [m]."""
        return self.height / self.pixels_per_meter - self.behind

    @property
    def radius(self) -> float:
        """Distance from the rear axle to the view's farthest corner [m] (how far to query the map)."""
        return float(np.hypot(max(self.ahead, self.behind), self.width / (2 * self.pixels_per_meter)))

    def to_pixels(self, xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Pixel coordinates ``(..., 2)`` (column, row) of ego-frame points ``(..., 2)`` [m]."""
        xy = np.asarray(xy, dtype=np.float64)[..., XY]
        # column = width / 2 - y * scale (y left drawn left), row = ahead * scale - x * scale (x forward drawn up)
        scale = self.pixels_per_meter
        axes = np.zeros((len(SE2Index) - 1, 2))  # (2, 2): (x, y) -> (column, row)
        axes[SE2Index.X, 1] = axes[SE2Index.Y, 0] = -scale
        return xy @ axes + np.array([self.width / 2, self.ahead * scale])

    def pixel_of(self, x: float, y: float) -> tuple[int, int]:
        """Integer (row, column) index of the pixel holding ego-frame point ``(x, y)`` [m]."""
        col, row = self.to_pixels([x, y])
        return int(np.floor(row)), int(np.floor(col))
