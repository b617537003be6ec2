"""Run directories: each run of a command writes into its own ``<parent>/<timestamp>/``, never into another's.

``parent`` is ``<output_root>/<command>`` or ``<output_root>/<command>/<split>``. A run directory is claimed by
creating it (``mkdir`` fails if it exists), so two runs started in the same second get ``<timestamp>`` and
``<timestamp>_2``. ``<parent>/latest`` is a relative symbolic link to the last run that finished, replaced
atomically (a new link under a temporary name, renamed over the old one), so a reader never sees it missing.
"""

from __future__ import annotations

import itertools
import os
import uuid
from datetime import datetime
from pathlib import Path

#: ``strftime`` format of a run directory's name.
TIMESTAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"
#: Name of the link to the last finished run, beside the run directories.
LATEST = "latest"


def create_run_dir(parent: Path, now: datetime | None = None) -> Path:
    """Create and return a new run directory ``parent/<timestamp>`` (``_2``, ``_3``, ... if that one exists).

    Args:
        parent: where the command's runs live (created if missing).
        now: the run's start time (default: the current local time).
    """
    parent.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now()).strftime(TIMESTAMP_FORMAT)
    for n in itertools.count(1):
        path = parent / (stamp if n == 1 else f"{stamp}_{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def point_latest(run_dir: Path) -> Path:
    """Point ``<run_dir's parent>/latest`` at ``run_dir`` (atomically); returns the link.

    Raises:
        FileExistsError: when ``latest`` exists and is not a symbolic link (it is never replaced then).
    """
    link = run_dir.parent / LATEST
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link}: exists and is not a link to a run directory; move it away")
    tmp = run_dir.parent / f".{LATEST}.{uuid.uuid4().hex}"
    os.symlink(run_dir.name, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return link
