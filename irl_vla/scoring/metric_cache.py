"""The metric cache of a split: one ``.npz`` per scene token, built in parallel, resumable, then reused.

Layout: ``<root>/<token>.npz`` plus ``<root>/manifest.json`` (format, version, split, tokens, and per token the
fingerprint of the log it was built from and the SHA-256 of its file). Each file is the ``SceneCache`` of a scene
with its PDM-Closed plan.

What a build trusts and what it redoes:

- A cache is reused only when its file is there, its SHA-256 is the one recorded when it was built, and its log's
  fingerprint is unchanged. Otherwise it is rebuilt: missing, truncated or byte-flipped files, and caches of a
  regenerated log alike.
- The logs themselves are checked first (``SceneSource.log_hash``): a log edited since its split was generated is
  refused, naming the file, instead of being trusted or cached.
- Files are written atomically and each finished scene is appended to ``manifest.journal`` at once, so a killed
  build resumes with what is missing; the manifest is rewritten (and the journal dropped) at the end.
- A scene that cannot be built (its log unreadable, the disk full) fails the build, naming every such scene; no
  scene is left out quietly. ``MetricCacheStore.load`` raises ``MetricCacheError`` (not a ``ValueError``) for a
  file that no longer matches the manifest, so evaluation stops instead of scoring without it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

from irl_vla.common.io import DataFormatError, file_sha256, read_json, write_json
from irl_vla.common.parallel import ExecutorConfig, Task, run_tasks
from irl_vla.data.source import SceneSource, SourceFactory
from irl_vla.data.split import SceneLoader
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.pdm_closed import PDMClosedPlanner, plan_scene
from irl_vla.scoring.scene_cache import (
    CACHE_FORMAT,
    CACHE_SUFFIX,
    CACHE_VERSION,
    SceneCache,
    build_scene_cache,
    load_scene_cache,
    save_scene_cache,
)

MANIFEST = "manifest.json"
JOURNAL = "manifest.journal"  # one JSON line per scene built since the manifest was last written
#: Held (flock) while a process builds the cache, so that parallel builders of one cache take turns.
BUILD_LOCK = ".build.lock"
#: A scene key: its token, and whether the scene is the window one frame before that token's scene.
SceneKey = tuple[str, bool]

log = logging.getLogger(__name__)


class MetricCacheError(RuntimeError):
    """A metric cache file that a build verified no longer reads back (changed or damaged since): not a score."""


class MetricCacheStore:
    """Cached scenes of one split under ``root``, loaded on demand (LRU in memory).

    Args:
        root: cache directory of the split.
        keep: caches kept in memory.
    """

    def __init__(self, root: str | os.PathLike[str], keep: int = 64) -> None:
        self.root = Path(root)
        self._memory: OrderedDict[str, SceneCache] = OrderedDict()
        self._keep = keep
        self._files: dict[str, str] | None = None  # token -> SHA-256 recorded by the build

    def path(self, token: str) -> Path:
        """File of a token's cache."""
        return self.root / f"{token}{CACHE_SUFFIX}"

    def has(self, token: str) -> bool:
        """Whether the token's cache file exists."""
        return self.path(token).is_file()

    def load(self, token: str) -> SceneCache:
        """The cache of ``token``.

        Raises:
            KeyError: naming the token and directory when it was not built.
            DataFormatError: naming the file when it is corrupt.
        """
        if token in self._memory:
            self._memory.move_to_end(token)
            return self._memory[token]
        if not self.has(token):
            raise KeyError(f"metric cache {self.root}: no scene {token!r} (build it: irl-vla eval builds missing ones)")
        if self._files is None:
            self._files = _read_manifest(self.root).get("files", {}) if (self.root / MANIFEST).is_file() else {}
        path = self.path(token)
        expected = self._files.get(token)
        if expected is not None and file_sha256(path) != expected:
            raise MetricCacheError(f"{path}: changed since it was built (damaged?): re-run the command to rebuild it")
        try:
            cache = load_scene_cache(path)
        except DataFormatError as e:
            raise MetricCacheError(f"{e} (re-run the command to rebuild it)") from None
        if cache.token != token:
            raise MetricCacheError(f"{path}: holds scene {cache.token}, expected {token}")
        self._memory[token] = cache
        while len(self._memory) > self._keep:
            self._memory.popitem(last=False)
        return cache


# ---------------------------------------------------------------------------------------------- building
def build_one(loader: SceneSource, key: SceneKey, root: Path) -> str:
    """Build and save the cache of one scene (the previous-frame window if ``key[1]``); returns its token."""
    token, previous = key
    scene = loader.get_previous_scene(token) if previous else loader.get_scene(token)
    if scene is None:
        raise KeyError(f"scene {token} has no previous frame in its log")
    cache = plan_scene(build_scene_cache(scene), PDMClosedPlanner(FastScorer()))
    save_scene_cache(cache, root / f"{cache.token}{CACHE_SUFFIX}")
    return cache.token


def _build_task(loader: SceneSource, key: SceneKey, root: str) -> dict[str, str]:
    """Executor task: build one scene's cache; returns its token and the SHA-256 of the written file."""
    token = build_one(loader, key, Path(root))
    return {"token": token, "file": file_sha256(Path(root) / f"{token}{CACHE_SUFFIX}")}


def _key_token(loader: SceneSource, key: SceneKey) -> str | None:
    token, previous = key
    if not previous:
        return token
    scene = loader.get_previous_scene(token)
    return None if scene is None else scene.token


def _read_manifest(root: Path) -> dict[str, Any]:
    """The cache manifest; empty (everything is rebuilt) when missing, unreadable or of another cache version."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        return {}
    try:
        doc = read_json(manifest)
    except DataFormatError as e:
        log.warning("%s: rebuilding every cache under %s", e, root)
        return {}
    if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT or doc.get("version") != CACHE_VERSION:
        found = (doc.get("format"), doc.get("version")) if isinstance(doc, dict) else (None, None)
        log.warning("%s: cache format %s v%s, not %s v%s: rebuilding", manifest, *found, CACHE_FORMAT, CACHE_VERSION)
        return {}
    return doc


def _read_journal(root: Path) -> list[dict[str, str]]:
    """Scenes built since the manifest was written (a torn last line, from a kill, and other versions are ignored)."""
    path = root / JOURNAL
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        with suppress(json.JSONDecodeError):
            item = json.loads(line)
            if (
                isinstance(item, dict)
                and {"token", "source", "file"} <= set(item)
                and item.get("version") == CACHE_VERSION
            ):
                out.append(item)
    return out


def _readable(path: Path) -> bool:
    try:
        load_scene_cache(path)
    except (DataFormatError, FileNotFoundError):
        return False
    return True


def build_metric_cache(
    source: SourceFactory | str | os.PathLike[str],
    root: str | os.PathLike[str],
    keys: list[SceneKey],
    executor: ExecutorConfig | int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Build the caches of ``keys`` that are missing, unreadable or stale under ``root``.

    Args:
        source: a split directory (embedded) or a picklable factory of a ``SceneSource``.
        root: the cache directory.
        keys: the scenes: ``(token, previous)``; ``previous`` for the window one frame before the token's.
        executor: where scenes are built; an int ``N`` means ``N`` processes.
        progress: ``(done, total)`` callback.

    Returns:
        Tokens of every requested scene that exists (previous-frame windows at a log's start are skipped).

    Raises:
        LogChangedError: naming the log file when a log no longer matches its split's manifest.
        TaskError: naming every scene whose cache could not be built, with its error.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if isinstance(executor, int):
        executor = ExecutorConfig(workers=executor)
    with build_lock(root):  # another process building this cache (a parallel pipeline step) finishes first
        return _build_metric_cache(source, root, keys, executor, progress)


@contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """Hold the cache directory's build lock (an exclusive ``flock`` of ``<root>/.build.lock``; waits for it).

    Two processes that build one cache at the same time would each rewrite the manifest from their own view; under
    the lock the second reads the first's manifest and builds only what is still missing.
    """
    with (root / BUILD_LOCK).open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build_metric_cache(
    source: str | os.PathLike[str] | SourceFactory,
    root: Path,
    keys: list[SceneKey],
    executor: ExecutorConfig,
    progress: Callable[[int, int], None] | None,
) -> list[str]:
    """``build_metric_cache`` under the build lock."""
    doc = _read_manifest(root)
    sources: dict[str, str] = dict(doc.get("sources", {}))  # token -> fingerprint of the log it was built from
    files: dict[str, str] = dict(doc.get("files", {}))  # token -> SHA-256 of its cache file
    for item in _read_journal(root):
        sources[item["token"]], files[item["token"]] = item["source"], item["file"]
    factory: SourceFactory = source if callable(source) else partial(SceneLoader, str(source))
    loader = factory()
    tokens = [_key_token(loader, k) for k in keys]
    # checks every log against its split's manifest: an edited log stops the build here, named
    hashes = {t: loader.log_hash(k[0]) for k, t in zip(keys, tokens, strict=True) if t is not None}
    # one task per scene: a previous-frame window may itself be a listed scene (keys (s, True) and (p, False))
    tasks = list({t: Task(t, (k, str(root))) for k, t in zip(keys, tokens, strict=True) if t is not None}.values())
    damaged: list[str] = []

    def done(task: Task) -> str | None:
        path = root / f"{task.name}{CACHE_SUFFIX}"
        if not path.is_file() or sources.get(task.name) != hashes[task.name]:
            return None  # missing, or built from another version of its log
        recorded = files.get(task.name)
        if recorded is None and _readable(path):  # a manifest from before file hashes were recorded
            files[task.name] = recorded = file_sha256(path)
        if recorded != file_sha256(path):
            damaged.append(task.name)
            return None  # truncated, byte-flipped or replaced: rebuilt like a missing one
        return task.name

    journal = (root / JOURNAL).open("a")

    def record(token: str, built: dict[str, str]) -> None:
        sources[token], files[token] = hashes[token], built["file"]
        line = {"token": token, "source": hashes[token], "file": built["file"], "version": CACHE_VERSION}
        journal.write(json.dumps(line) + "\n")
        journal.flush()  # survives a kill of this process

    try:
        outcome = run_tasks(_build_task, tasks, executor, done=done, setup=factory, on_result=record, progress=progress)
    finally:
        journal.close()
    if damaged:
        log.warning("metric cache %s: rebuilt %d unreadable or changed files: %s", root, len(damaged), damaged[:5])
    write_json(
        root / MANIFEST,
        {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "split": loader.name,
            "tokens": sorted(sources),
            "sources": dict(sorted(sources.items())),
            "files": dict(sorted(files.items())),
        },
    )
    (root / JOURNAL).unlink(missing_ok=True)
    outcome.raise_failures(f"metric cache {root}")
    return [t.name for t in tasks]
