"""``navsim-export`` resumes: exported logs are kept, missing or changed ones redone, failures named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from irl_vla.common.parallel import TaskError
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.navsim.export import ExportConfig, export_split
from tools.sources import navsim_renderer

SPLIT = "synth_navtest"


def _pickles(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "navsim_logs" / SPLIT).glob("*.pkl")}


def failing_renderer():
    raise OSError("no GPU today")


def test_a_rerun_exports_only_what_is_missing_or_changed(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "navsim"
    gen = GenerateConfig(data_root=str(data), families=["lead_vehicle"], num_log_frames=16, workers=1, progress=False)
    generate_split(SPLIT, SplitSpec(logs_per_family=2, frame_interval=6), gen)
    cfg = ExportConfig(data_root=str(data), out_root=str(out), cameras=["cam_f0"], lidar=False, image_width=32)
    cfg = replace(cfg, workers=1, progress=False)
    first = export_split(cfg, renderer=navsim_renderer(cfg.image_width))
    before = _pickles(out)
    assert len(before) == 2
    assert export_split(cfg, renderer=navsim_renderer(cfg.image_width)) == first
    assert _pickles(out) == before  # nothing redone

    victim = sorted(before)[1]
    (out / "navsim_logs" / SPLIT / victim).unlink()
    assert export_split(cfg, renderer=navsim_renderer(cfg.image_width)) == first
    after = _pickles(out)
    assert [n for n in after if after[n] != before.get(n)] == [victim]  # only the missing log

    changed = replace(cfg, jpeg_quality=80)
    export_split(changed, renderer=navsim_renderer(cfg.image_width))
    assert all(t != after[n] for n, t in _pickles(out).items())  # other settings: every log redone

    with pytest.raises(TaskError, match=r"export synth_navtest: 2 of 2 tasks failed: .*OSError: no GPU today"):
        export_split(replace(changed, jpeg_quality=70), renderer=failing_renderer)
