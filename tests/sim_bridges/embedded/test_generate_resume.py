"""Re-running ``generate`` over existing data: counts as an uninterrupted run, changed settings, edited logs."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest

from irl_vla.common.parallel import TaskError
from irl_vla.data.log_io import LogChangedError
from irl_vla.data.split import MANIFEST, SceneLoader, SplitManifest
from sim_bridges.embedded import generate as gen
from sim_bridges.embedded.audit import Auditor
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, Task, generate_split, task_seed

SPEC = SplitSpec(logs_per_family=2, frame_interval=6)
SPLIT = "synth_navtest"


def config(root: Path, **changes) -> GenerateConfig:
    cfg = GenerateConfig(data_root=str(root), families=["lead_vehicle"], num_log_frames=16, workers=1, progress=False)
    return replace(cfg, **changes)


def _mtimes(split_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (split_dir / "logs").iterdir()}


@pytest.fixture
def picky_audit(monkeypatch: pytest.MonkeyPatch) -> int:
    """Rejects the first two attempts of log 1 and the first of log 0 (3 rejections), whatever the drive."""
    rejected = {
        task_seed(0, Task(SPLIT, "lead_vehicle", 1, False), 0),
        task_seed(0, Task(SPLIT, "lead_vehicle", 1, False), 1),
        task_seed(0, Task(SPLIT, "lead_vehicle", 0, False), 0),
    }
    build = gen.build_scenario

    def build_and_tag(family, seed):
        inst = build(family, seed)
        inst.world.test_seed = seed
        return inst

    class PickyAuditor(Auditor):
        def check(self) -> None:
            super().check()
            if self.world.test_seed in rejected:
                self.report.comfort.append((self.world.time, "rejected by the test", 0.0))

    monkeypatch.setattr(gen, "build_scenario", build_and_tag)
    monkeypatch.setattr(gen, "Auditor", PickyAuditor)
    return len(rejected)


def test_rejected_counts_equal_an_uninterrupted_run(tmp_path: Path, picky_audit: int) -> None:
    cfg, split_dir = config(tmp_path), tmp_path / SPLIT
    assert generate_split(SPLIT, SPEC, cfg).rejected == picky_audit
    (split_dir / MANIFEST).unlink()  # a run killed before its manifest was written, then resumed
    before = _mtimes(split_dir)
    assert generate_split(SPLIT, SPEC, cfg).rejected == picky_audit
    assert _mtimes(split_dir) == before  # nothing was regenerated
    sorted((split_dir / "logs").iterdir())[1].unlink()  # the log with two rejections, deleted and regenerated
    assert generate_split(SPLIT, SPEC, cfg).rejected == picky_audit
    assert SplitManifest.read(split_dir).counts()["rejected"] == picky_audit


def test_changed_settings_are_refused_until_regenerate(tmp_path: Path) -> None:
    split_dir = tmp_path / SPLIT
    first = generate_split(SPLIT, SPEC, config(tmp_path))
    manifest_bytes, before = (split_dir / MANIFEST).read_bytes(), _mtimes(split_dir)
    with pytest.raises(ValueError, match=r"2 existing logs .*base_seed: 0 -> 1.*generate\.regenerate=true"):
        generate_split(SPLIT, SPEC, config(tmp_path, base_seed=1))
    with pytest.raises(ValueError, match=r"num_log_frames: 16 -> 18"):
        generate_split(SPLIT, SPEC, config(tmp_path, num_log_frames=18))
    with pytest.raises(ValueError, match=r"frame_interval: 6 -> 5"):
        generate_split(SPLIT, replace(SPEC, frame_interval=5), config(tmp_path))
    (split_dir / MANIFEST).unlink()  # each log carries its settings: refused without the manifest too
    with pytest.raises(ValueError, match=r"base_seed: 0 -> 1"):
        generate_split(SPLIT, SPEC, config(tmp_path, base_seed=1))
    (split_dir / MANIFEST).write_bytes(manifest_bytes)
    assert _mtimes(split_dir) == before and SplitManifest.read(split_dir).settings["base_seed"] == 0

    again = generate_split(SPLIT, SPEC, config(tmp_path, base_seed=1, regenerate=True))
    fresh = generate_split(SPLIT, SPEC, config(tmp_path / "fresh", base_seed=1))
    assert again.settings["base_seed"] == 1
    assert [e.sha256 for e in again.logs] == [e.sha256 for e in fresh.logs]  # as if generated from scratch
    assert not {e.sha256 for e in again.logs} & {e.sha256 for e in first.logs}
    assert generate_split(SPLIT, SPEC, config(tmp_path, base_seed=1)).to_dict() == again.to_dict()  # now settled


def test_an_edited_log_is_refused_on_load_and_regenerated_by_generate(tmp_path: Path) -> None:
    split_dir = tmp_path / SPLIT
    first = generate_split(SPLIT, SPEC, config(tmp_path))
    log = sorted((split_dir / "logs").iterdir())[0]
    doc = json.loads(gzip.decompress(log.read_bytes()))
    for frame in doc["frames"]:  # still a valid log, but the ego drives three times as fast
        frame["ego_status"]["ego_velocity"] = [3 * v for v in frame["ego_status"]["ego_velocity"]]
    log.write_bytes(gzip.compress(json.dumps(doc).encode()))
    loader = SceneLoader(split_dir)
    token = first.logs[0].scene_tokens[0]
    with pytest.raises(LogChangedError, match=log.name):
        loader.get_scene(token)
    with pytest.raises(LogChangedError, match=log.name):
        loader.log_hash(token)
    assert generate_split(SPLIT, SPEC, config(tmp_path)).to_dict() == first.to_dict()
    assert SceneLoader(split_dir).get_scene(token).token == token


_real_generate_log = gen.generate_log


def failing_second_log(task, *args):
    if task.index == 1:
        raise RuntimeError("the world fell over")
    return _real_generate_log(task, *args)


def test_a_failing_log_is_named_and_the_others_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gen, "generate_log", failing_second_log)
    with pytest.raises(TaskError, match=r"1 of 2 tasks failed: synth_navtest-lead_vehicle-00001: RuntimeError: the"):
        generate_split(SPLIT, SPEC, config(tmp_path))
    split_dir = tmp_path / SPLIT
    assert not (split_dir / MANIFEST).exists() and list(_mtimes(split_dir)) == [
        f"{SPLIT}-lead_vehicle-00000.log.json.gz"
    ]
    before = _mtimes(split_dir)
    monkeypatch.setattr(gen, "generate_log", _real_generate_log)
    assert generate_split(SPLIT, SPEC, config(tmp_path)).counts()["logs"] == 2
    assert all(_mtimes(split_dir)[name] == t for name, t in before.items())  # the first log was kept
