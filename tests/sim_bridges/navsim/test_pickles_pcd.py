"""The restricted unpickler, numpy-1.x-loadable pickles, and PCD files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from irl_vla.common.io import DataFormatError
from sim_bridges.navsim import pickles
from sim_bridges.navsim.openscene import read_log_pickle
from sim_bridges.navsim.pcd import parse_pcd, pcd_bytes, read_pcd, write_pcd


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_naming_file_and_global(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([{"token": "a", "payload": _RunsCode(marker)}]))
    with pytest.raises(DataFormatError, match=r"evil.pkl: refusing to unpickle global (posix|nt)\.system"):
        read_log_pickle(path)
    assert not marker.exists()


def test_real_format_pickles_load_and_written_ones_name_only_numpy_1_modules(tmp_path: Path) -> None:
    frames = [
        {
            "token": "0" * 16,
            "ego2global_translation": np.arange(3.0),
            "gt_names": np.array(["vehicle", "bicycle"]),
            "scalar": np.float64(2.5),
            "fortran": np.asfortranarray(np.ones((2, 3))),
            "ints": np.arange(4, dtype=np.int64),
        }
    ]
    for protocol in (2, 4, 5):  # what others write under numpy 2 (numpy._core names)
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(frames, protocol=protocol))
        back = read_log_pickle(path)
        assert np.array_equal(back[0]["gt_names"], frames[0]["gt_names"]) and back[0]["scalar"] == 2.5
    data = pickles.dumps(frames)
    names = pickles.globals_in(data, pickles.LOG_GLOBALS)
    assert names and all(not m.startswith("numpy._core") for m, _ in names)
    assert {m for m, _ in names} <= {"numpy", "numpy.core.multiarray", "numpy.core.numeric"}
    back = pickle.loads(data)  # the plain unpickler resolves numpy.core.* too
    for key, value in frames[0].items():
        assert np.array_equal(back[0][key], value) and np.asarray(back[0][key]).dtype == np.asarray(value).dtype


def test_a_truncated_pickle_is_a_named_format_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickles.dumps([{"a": np.zeros(100)}])[:-40])
    with pytest.raises(DataFormatError, match="cut.pkl: not a readable pickle"):
        read_log_pickle(path)
    path.write_bytes(pickles.dumps({"not": "a list"}))
    with pytest.raises(DataFormatError, match="list of frame dicts"):
        read_log_pickle(path)


def test_pcd_round_trip_and_header_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(6, 500)).astype(np.float32)
    write_pcd(tmp_path / "a.pcd", points)
    assert np.array_equal(read_pcd(tmp_path / "a.pcd"), points)
    empty = np.zeros((6, 0), np.float32)
    assert parse_pcd(pcd_bytes(empty)).shape == (6, 0)
    data = pcd_bytes(points)
    with pytest.raises(DataFormatError, match="only 'binary'"):
        parse_pcd(data.replace(b"DATA binary", b"DATA ascii"), "x.pcd")
    with pytest.raises(DataFormatError, match=r"lacks the fields \['lidar_info'\]"):
        parse_pcd(data.replace(b"lidar_info", b"lidar_id"), "x.pcd")
    with pytest.raises(DataFormatError, match="unknown PCD header key 'EXTRA'"):
        parse_pcd(b"EXTRA 1\n" + data, "x.pcd")
    with pytest.raises(DataFormatError, match="500 points need more"):
        parse_pcd(data[:-10], "x.pcd")
