"""The code example of ``docs/viewer.md`` runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.viz.views import junction_view

DOC = Path(__file__).resolve().parents[2] / "docs" / "viewer.md"

pytest.importorskip("imageio")


def test_the_documented_example_renders_and_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    scope = {"__name__": "docs_example", "view": junction_view()}
    exec(compile(blocks[0], str(DOC), "exec"), scope)
    assert scope["frame"].shape == (720, 1280, 3)
    assert (tmp_path / "episode.mp4").stat().st_size > 0
