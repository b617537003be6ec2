"""Atomic writes keep the previous file when a write fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from irl_vla.common.io import DataFormatError, atomic_open, read_json, write_json


def test_failed_write_keeps_previous_content(tmp_path: Path) -> None:
    path = tmp_path / "a" / "x.json"
    write_json(path, {"v": 1})
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write('{"v": 2')  # half written
        raise RuntimeError("killed")
    assert read_json(path) == {"v": 1}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temp file left


def test_read_json_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe{")
    with pytest.raises(DataFormatError, match="bad.json: not valid JSON"):
        read_json(bad)


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "shared.json", {"v": 1})
        os.umask(0o077)
        write_json(tmp_path / "private.json", {"v": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o644  # readable by colleagues
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
