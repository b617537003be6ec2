"""The metric cache: built once, reused, rebuilt when its log changed or its file is damaged, resumed after a kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from irl_vla.common.parallel import TaskError
from irl_vla.data.log_io import LogChangedError
from irl_vla.data.split import MANIFEST, SceneLoader
from irl_vla.scoring.metric_cache import JOURNAL, MetricCacheError, MetricCacheStore, build_metric_cache
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split

SPEC = SplitSpec(logs_per_family=1, frame_interval=3)


def _generate(root: Path, seed: int = 0) -> list[str]:
    cfg = GenerateConfig(
        data_root=str(root), families=["lead_vehicle", "merge"], num_log_frames=20, workers=1, progress=False
    )
    cfg.base_seed = seed
    return generate_split("synth_navtest", SPEC, cfg).tokens


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny split and its caches, built once; tests work on copies."""
    root = tmp_path_factory.mktemp("made")
    tokens = _generate(root)
    build_metric_cache(root / "synth_navtest", root / "cache", [(t, False) for t in tokens])
    return root


@pytest.fixture
def work(made: Path, tmp_path: Path) -> Path:
    shutil.copytree(made, tmp_path / "work")
    return tmp_path / "work"


def _mtimes(root: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in root.glob("*.npz")}


def _keys(work: Path) -> list[tuple[str, bool]]:
    return [(t, False) for t in SceneLoader(work / "synth_navtest").tokens]


def test_a_regenerated_log_rebuilds_its_caches_and_only_those(work: Path, tmp_path: Path) -> None:
    split, root = work / "synth_navtest", work / "cache"
    keys = _keys(work)
    tokens = [t for t, _ in keys]
    before = _mtimes(root)
    first_state = MetricCacheStore(root).load(tokens[0]).initial_state
    build_metric_cache(split, root, keys)  # nothing changed: nothing rebuilt
    assert _mtimes(root) == before

    # the first log regenerated as another drive (same log name, so the same tokens): its file and manifest entry
    other = _generate(tmp_path / "other", seed=1)
    assert other == tokens
    log = sorted((split / "logs").iterdir())[0]
    shutil.copyfile(tmp_path / "other" / "synth_navtest" / "logs" / log.name, log)
    manifest, regenerated = json.loads((split / MANIFEST).read_text()), json.loads(
        (tmp_path / "other" / "synth_navtest" / MANIFEST).read_text()
    )
    manifest["logs"][0] = regenerated["logs"][0]
    (split / MANIFEST).write_text(json.dumps(manifest))
    build_metric_cache(split, root, keys)
    after = _mtimes(root)
    changed = {t for t in tokens if after[t] != before[t]}
    assert changed == set(manifest["logs"][0]["scene_tokens"])  # the other log's caches were kept
    assert not np.array_equal(MetricCacheStore(root).load(tokens[0]).initial_state, first_state)


def test_damaged_files_are_rebuilt_like_missing_ones(work: Path) -> None:
    split, root = work / "synth_navtest", work / "cache"
    keys = _keys(work)
    truncated, flipped, *_ = sorted(root.glob("*.npz"))
    truncated.write_bytes(truncated.read_bytes()[:300])
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    store = MetricCacheStore(root)  # a damaged file met while scoring stops the run, naming the file
    with pytest.raises(MetricCacheError, match=truncated.name):
        store.load(truncated.stem)
    with pytest.raises(MetricCacheError, match=flipped.name):
        store.load(flipped.stem)
    before = _mtimes(root)
    build_metric_cache(split, root, keys)
    after = _mtimes(root)
    assert {t for t in after if after[t] != before[t]} == {truncated.stem, flipped.stem}
    store = MetricCacheStore(root)
    assert all(store.load(t).token == t for t, _ in keys)


def test_an_edited_log_is_refused_naming_the_file(work: Path) -> None:
    split, root = work / "synth_navtest", work / "cache"
    log = sorted((split / "logs").iterdir())[1]
    data = bytearray(log.read_bytes())
    data[-5] ^= 0x01  # the gzip trailer: the file changes, its content is still the old drive
    log.write_bytes(bytes(data))
    with pytest.raises(LogChangedError, match=log.name):
        build_metric_cache(split, root, _keys(work))  # even though every cache is there


def failing_loader(split_dir: str, bad: str) -> SceneLoader:
    """A loader whose scene ``bad`` cannot be read (a module-level factory, so worker processes can open it)."""
    loader = SceneLoader(split_dir)
    get_scene = loader.get_scene

    def get(token: str):
        if token == bad:
            raise OSError(f"disk error reading scene {token}")
        return get_scene(token)

    loader.get_scene = get  # type: ignore[method-assign]
    return loader


def test_a_scene_that_cannot_be_built_fails_the_build_by_name(work: Path) -> None:
    split, root = work / "synth_navtest", work / "cache"
    keys = _keys(work)
    bad = keys[1][0]
    (root / f"{bad}.npz").unlink()
    with pytest.raises(TaskError, match=rf"1 of {len(keys)} tasks failed: {bad}: OSError: disk error"):
        build_metric_cache(partial(failing_loader, str(split), bad), root, keys)
    assert not (root / f"{bad}.npz").exists()
    build_metric_cache(split, root, keys)  # the others were kept; the failed one is built once it can be
    assert (root / f"{bad}.npz").is_file()


_BUILD = """
import sys
from irl_vla.data.split import SceneLoader
from irl_vla.scoring.metric_cache import build_metric_cache
split, root = sys.argv[1], sys.argv[2]
build_metric_cache(split, root, [(t, False) for t in SceneLoader(split).tokens], 1)
"""


@pytest.mark.slow
def test_a_killed_build_resumes_with_what_is_missing(work: Path) -> None:
    split, root = work / "synth_navtest", work / "fresh"
    keys = _keys(work)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen([sys.executable, "-c", _BUILD, str(split), str(root)], cwd=repo, env=env)
    deadline = time.monotonic() + 120
    while not (root / JOURNAL).is_file() or len((root / JOURNAL).read_text().splitlines()) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "the build ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (root / MANIFEST).exists()  # killed before the end
    finished = len((root / JOURNAL).read_text().splitlines())
    assert finished < len(keys)
    calls: list[tuple[int, int]] = []
    build_metric_cache(split, root, keys, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (finished, len(keys))  # the rerun builds only what is missing
    assert calls[-1] == (len(keys), len(keys)) and not (root / JOURNAL).exists()
    assert sorted(json.loads((root / MANIFEST).read_text())["files"]) == sorted(t for t, _ in keys)


def test_a_second_builder_waits_for_the_first_and_builds_nothing_again(work: Path) -> None:
    # parallel pipeline steps may build one split's cache at once: they take turns on the cache's build lock
    import threading
    import time

    from irl_vla.scoring.metric_cache import build_lock

    split, root = work / "synth_navtest", work / "cache"
    keys = _keys(work)
    missing = sorted(root.glob("*.npz"))[0]
    missing.unlink()
    finished = threading.Event()

    def build() -> None:
        build_metric_cache(split, root, keys)
        finished.set()

    with build_lock(root):  # as if another process were building
        worker = threading.Thread(target=build)
        worker.start()
        time.sleep(1.0)
        assert not finished.is_set() and not missing.exists()
    worker.join(timeout=120)
    assert finished.is_set() and missing.exists()
    store = MetricCacheStore(root)
    assert all(store.load(t).token == t for t, _ in keys)
