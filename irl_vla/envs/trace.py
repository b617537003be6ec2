"""The ego trace: ego samples at the simulation rate (10 Hz), the source of comfort and rolling sub-scores."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt

from irl_vla.data.validation import check_array


class TraceIndex(IntEnum):
    """Columns of an ego trace ``(N, len(TraceIndex))``; poses are global rear-axle poses."""

    TIME = 0  # [s] since the reset
    X = 1  # [m]
    Y = 2  # [m]
    HEADING = 3  # [rad]
    VELOCITY_X = 4  # [m/s], ego frame
    VELOCITY_Y = 5  # [m/s], ego frame
    ACCELERATION_X = 6  # [m/s^2], ego frame
    ACCELERATION_Y = 7  # [m/s^2], ego frame
    YAW_RATE = 8  # [rad/s]


#: The pose columns ``(x, y, heading)`` of a trace, usable as ``trace[:, TRACE_POSE]``.
TRACE_POSE = slice(TraceIndex.X, TraceIndex.HEADING + 1)


def check_trace(trace: npt.NDArray[np.float64], where: str) -> npt.NDArray[np.float64]:
    """``trace`` as float64 after checking its shape, finiteness and increasing times.

    Raises:
        ValueError: naming ``where`` on a bad shape, non-finite values or times that do not increase.
    """
    trace = np.asarray(trace, dtype=np.float64)
    check_array(trace, where, (None, len(TraceIndex)))
    if len(trace) > 1 and np.any(np.diff(trace[:, TraceIndex.TIME]) <= 0):
        raise ValueError(f"{where}: times must increase")
    return trace
