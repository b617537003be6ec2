"""Test-wide settings: outputs and data go to temporary folders, never into the working tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


@pytest.fixture(autouse=True)
def _isolated_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRL_VLA_OUTPUT_ROOT", str(tmp_path / "outputs"))
    monkeypatch.setenv("IRL_VLA_DATA_ROOT", str(tmp_path / "data"))
