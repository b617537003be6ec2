"""Array checks used by every data-model constructor; errors name the offending field."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def check_array(
    value: object,
    field: str,
    shape: Sequence[int | None],
    *,
    dtype_kind: str = "f",
    finite: bool = True,
) -> npt.NDArray:
    """Return ``value`` as an array after checking its shape, dtype kind and finiteness.

    Args:
        value: the candidate array.
        field: name of the field, used in the error message (e.g. ``"Trajectory.poses"``).
        shape: expected shape; ``None`` entries accept any size.
        dtype_kind: numpy dtype kinds accepted (``"f"`` floats, ``"iu"`` integers, ``"b"`` booleans, ``"fiu"``...).
        finite: whether NaN and infinite values are refused (float arrays only).

    Returns:
        The value as a numpy array (not copied when it already is one).

    Raises:
        ValueError: if the value is not an array of that shape and kind, or holds non-finite numbers.
    """
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{field}: expected a numpy array, got {type(value).__name__}")
    if value.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(value.shape, shape, strict=True)
    ):
        parts = ["*" if s is None else str(s) for s in shape]
        want_str = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        raise ValueError(f"{field}: expected shape {want_str}, got {tuple(value.shape)}")
    if value.dtype.kind not in dtype_kind:
        raise ValueError(f"{field}: expected dtype kind {dtype_kind!r}, got {value.dtype}")
    if finite and value.dtype.kind == "f" and not np.isfinite(value).all():
        bad = np.argwhere(~np.isfinite(value))[0]
        raise ValueError(f"{field}: non-finite value at index {tuple(int(i) for i in bad)}")
    return value


def check_length(items: Sequence[object], field: str, length: int) -> None:
    """Raise ``ValueError`` naming ``field`` unless ``len(items) == length``."""
    if len(items) != length:
        raise ValueError(f"{field}: expected {length} entries, got {len(items)}")
