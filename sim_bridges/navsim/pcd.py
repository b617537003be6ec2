"""LiDAR ``.pcd`` files as nuPlan's point-cloud reader accepts them (``reference/nuplan_openscene_formats.md`` §2.5).

Binary PCD v0.7 with fields ``x y z intensity ring lidar_info`` (``LidarIndex`` order), each a 4-byte float,
``VIEWPOINT 0 0 0 1 0 0 0`` written with integers, ``DATA binary``. The reader takes any header nuPlan's takes
(the same keys, I/U/F fields of any size, ``DATA binary``) and returns the ``(6, N)`` float32 array.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from irl_vla.common.io import DataFormatError, atomic_open
from irl_vla.data.enums import LidarIndex

FIELDS = ("x", "y", "z", "intensity", "ring", "lidar_info")
HEADER_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")
_KINDS = {"F": "f", "I": "i", "U": "u"}


def pcd_bytes(points: npt.NDArray[np.float32]) -> bytes:
    """A binary PCD of ``points`` ``(6, N)`` (rows by ``LidarIndex``)."""
    if points.ndim != 2 or points.shape[0] != len(LidarIndex):
        raise ValueError(f"pcd_bytes: expected ({len(LidarIndex)}, N) points, got {points.shape}")
    n = points.shape[1]
    header = "\n".join(
        [
            "# .PCD v0.7 - Point Cloud Data file format",
            "VERSION 0.7",
            f"FIELDS {' '.join(FIELDS)}",
            "SIZE " + " ".join(["4"] * len(FIELDS)),
            "TYPE " + " ".join(["F"] * len(FIELDS)),
            "COUNT " + " ".join(["1"] * len(FIELDS)),
            f"WIDTH {n}",
            "HEIGHT 1",
            "VIEWPOINT 0 0 0 1 0 0 0",
            f"POINTS {n}",
            "DATA binary",
            "",
        ]
    )
    body = np.ascontiguousarray(points.T, dtype="<f4").tobytes()  # one record per point
    return header.encode("ascii") + body


def write_pcd(path: str | os.PathLike[str], points: npt.NDArray[np.float32]) -> None:
    """Write ``points`` to ``path`` atomically."""
    data = pcd_bytes(points)
    with atomic_open(path, "wb") as f:
        f.write(data)


def parse_pcd(data: bytes, source: str = "<bytes>") -> npt.NDArray[np.float32]:
    """Points ``(6, N)`` float32 of a binary PCD.

    Raises:
        DataFormatError: naming ``source`` and the header key or field that is wrong.
    """
    header: dict[str, list[str]] = {}
    offset = 0
    while True:
        end = data.find(b"\n", offset)
        if end < 0:
            raise DataFormatError(f"{source}: PCD header ends before DATA")
        line = data[offset:end].decode("ascii", errors="replace").strip()
        offset = end + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        if key not in HEADER_KEYS:
            raise DataFormatError(f"{source}: unknown PCD header key {key!r}")
        header[key] = values
        if key == "DATA":
            break
    missing = [k for k in HEADER_KEYS if k not in header]
    if missing:
        raise DataFormatError(f"{source}: PCD header lacks {missing}")
    if header["DATA"] != ["binary"]:
        raise DataFormatError(f"{source}: PCD DATA {' '.join(header['DATA'])!r}, only 'binary' is supported")
    fields, sizes, types = header["FIELDS"], header["SIZE"], header["TYPE"]
    if any(c != "1" for c in header["COUNT"]) or not len(fields) == len(sizes) == len(types):
        raise DataFormatError(f"{source}: PCD FIELDS/SIZE/TYPE/COUNT disagree")
    absent = [f for f in FIELDS if f not in fields]
    if absent:
        raise DataFormatError(f"{source}: PCD lacks the fields {absent}")
    try:
        dtype = np.dtype([(f, f"<{_KINDS[t]}{int(s)}") for f, s, t in zip(fields, sizes, types, strict=True)])
        n = int(header["POINTS"][0])
    except (KeyError, ValueError, TypeError) as e:
        raise DataFormatError(f"{source}: bad PCD field types ({e})") from None
    if len(data) - offset < n * dtype.itemsize:
        raise DataFormatError(f"{source}: PCD holds {len(data) - offset} bytes of points, {n} points need more")
    records = np.frombuffer(data, dtype=dtype, count=n, offset=offset)
    return np.stack([records[f].astype(np.float32) for f in FIELDS])


def read_pcd(path: str | os.PathLike[str]) -> npt.NDArray[np.float32]:
    """Points ``(6, N)`` of the PCD at ``path`` (see ``parse_pcd``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LiDAR file {path} does not exist")
    return parse_pcd(path.read_bytes(), str(path))
