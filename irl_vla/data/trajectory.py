"""Plans: ``TrajectorySampling`` and ``Trajectory`` (poses in the current ego rear-axle frame)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import SE2Index
from irl_vla.data.validation import check_array


@dataclass(frozen=True)
class TrajectorySampling:
    """Time sampling of a plan; give any two of the three fields and the third is derived.

    Attributes:
        num_poses: number of poses, the current pose excluded.
        time_horizon: duration covered [s].
        interval_length: time between poses [s].
    """

    num_poses: int | None = None
    time_horizon: float | None = None
    interval_length: float | None = None

    def __post_init__(self) -> None:
        n, h, dt = self.num_poses, self.time_horizon, self.interval_length
        given = sum(v is not None for v in (n, h, dt))
        if given < 2:
            raise ValueError("TrajectorySampling: give at least two of num_poses, time_horizon, interval_length")
        if n is None:
            assert h is not None and dt is not None
            n = round(h / dt)
        if dt is None:
            assert h is not None and n is not None
            dt = h / n if n else 0.0
        if h is None:
            h = n * dt
        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"TrajectorySampling.num_poses: expected a positive int, got {n!r}")
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"TrajectorySampling.interval_length: expected > 0 [s], got {dt!r}")
        if not math.isclose(n * dt, h, rel_tol=1e-9, abs_tol=1e-9):
            raise ValueError(f"TrajectorySampling: num_poses={n} x interval_length={dt} != time_horizon={h}")
        object.__setattr__(self, "num_poses", int(n))
        object.__setattr__(self, "time_horizon", float(h))
        object.__setattr__(self, "interval_length", float(dt))

    @property
    def times(self) -> npt.NDArray[np.float64]:
        """Time stamps of the poses [s] relative to the current frame ``(T,)``; the first is ``+interval``."""
        assert self.num_poses is not None and self.interval_length is not None
        return np.arange(1, self.num_poses + 1, dtype=np.float64) * self.interval_length


#: The plan sampling of the whole suite: 8 poses over 4 s (DESIGN §2).
DEFAULT_SAMPLING = TrajectorySampling(num_poses=8, interval_length=0.5)


@dataclass
class Trajectory:
    """A plan: poses ``(T, 3)`` = (x [m], y [m], heading [rad]) in the current ego rear-axle frame.

    The current pose is not included; the first pose is at ``+sampling.interval_length``.
    """

    poses: npt.NDArray[np.float32]  # (T, 3)
    trajectory_sampling: TrajectorySampling = field(default_factory=lambda: DEFAULT_SAMPLING)

    def __post_init__(self) -> None:
        check_array(self.poses, "Trajectory.poses", (self.trajectory_sampling.num_poses, len(SE2Index)))
