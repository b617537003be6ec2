"""Atomic writes and format errors for the suite's own files (no pickle anywhere)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

_hashes: dict[tuple[str, int, int, int, int], str] = {}  # (path, device, inode, size, mtime [ns]) -> SHA-256


class DataFormatError(ValueError):
    """A file of one of the suite's formats is missing a field, has a wrong value or is corrupt.

    The message always names the file, and where known the field or token.
    """


def _umask() -> int:
    """The process's file-creation mask (read without changing it where ``/proc`` allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: read by setting and restoring (not thread-safe, brief)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike[str], *, directory: bool = False) -> None:
    """Give ``path`` the mode an ordinary ``open``/``mkdir`` would have (``tempfile`` makes 0600 / 0700)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds.

    A crash or exception inside the block leaves any previous ``path`` untouched and no temporary file behind.
    The file gets the mode the umask gives new files (as with ``open``), not ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    follow_umask(tmp)  # the renamed file gets the mode other tools' files get, not mkstemp's 0600
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a file that replaces ``path`` atomically when the block succeeds (see ``replacing``)."""
    with replacing(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 1) -> None:
    """Write ``data`` as JSON atomically."""
    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=indent)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file.

    Raises:
        FileNotFoundError: naming the file when it does not exist.
        DataFormatError: naming the file when it is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with path.open() as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{path}: not valid JSON ({e})") from e


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file, remembered for this process while the file's identity, size and mtime stay.

    Raises:
        FileNotFoundError: when the file does not exist.
    """
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        _hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _hashes[key]
