"""The metric cache of a split: one ``.npz`` per scene token, built in parallel, resumable, then reused.

Layout: ``<root>/<token>.npz`` plus ``<root>/manifest.json`` (format, version, split, tokens, and per token
the fingerprint of the log it was built from). Each file is the ``SceneCache`` of a scene with its PDM-Closed plan.
Files are written atomically, so a killed build resumes where it stopped; a cache whose log has changed since
(the split was regenerated) is rebuilt.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from irl_vla.common.io import DataFormatError, read_json, write_json
from irl_vla.data.source import SceneSource, SourceFactory
from irl_vla.data.split import SceneLoader
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.pdm_closed import PDMClosedPlanner
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
#: A scene key: its token, and whether the scene is the window one frame before that token's scene.
SceneKey = tuple[str, bool]


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
        cache = load_scene_cache(self.path(token))
        if cache.token != token:
            raise DataFormatError(f"{self.path(token)}: holds scene {cache.token}, expected {token}")
        self._memory[token] = cache
        while len(self._memory) > self._keep:
            self._memory.popitem(last=False)
        return cache


# ---------------------------------------------------------------------------------------------- building
_worker_loader: SceneSource | None = None


def _init_worker(source: SourceFactory) -> None:
    global _worker_loader
    _worker_loader = source()


def build_one(loader: SceneSource, key: SceneKey, root: Path) -> str:
    """Build and save the cache of one scene (the previous-frame window if ``key[1]``); returns its token."""
    token, previous = key
    scene = loader.get_previous_scene(token) if previous else loader.get_scene(token)
    if scene is None:
        raise KeyError(f"scene {token} has no previous frame in its log")
    cache = build_scene_cache(scene)
    cache.pdm_plan = PDMClosedPlanner(FastScorer()).plan(cache)
    save_scene_cache(cache, root / f"{cache.token}{CACHE_SUFFIX}")
    return cache.token


def _build_in_worker(key: SceneKey, root: str) -> str:
    assert _worker_loader is not None
    return build_one(_worker_loader, key, Path(root))


def _key_token(loader: SceneSource, key: SceneKey) -> str | None:
    token, previous = key
    if not previous:
        return token
    scene = loader.get_previous_scene(token)
    return None if scene is None else scene.token


def build_metric_cache(
    source: SourceFactory | str | os.PathLike[str],
    root: str | os.PathLike[str],
    keys: list[SceneKey],
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Build the caches of ``keys`` that are missing under ``root`` (in ``workers`` processes).

    Args:
        source: a split directory (embedded) or a picklable factory of a ``SceneSource``.
        root: the cache directory.
        keys: the scenes: ``(token, previous)``; ``previous`` for the window one frame before the token's.
        workers: processes.
        progress: ``(done, total)`` callback.

    Returns:
        Tokens of every requested scene that exists (previous-frame windows at a log's start are skipped).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / MANIFEST
    doc: dict = {}
    if manifest.is_file():
        doc = read_json(manifest)
        if doc.get("format") != CACHE_FORMAT or doc.get("version") != CACHE_VERSION:
            raise DataFormatError(
                f"{manifest}: cache format {doc.get('format')} v{doc.get('version')}, expected {CACHE_FORMAT} "
                f"v{CACHE_VERSION}: delete {root} to rebuild"
            )
    built: dict[str, str] = dict(doc.get("sources", {}))  # token -> fingerprint of the log it was built from
    factory: SourceFactory = source if callable(source) else partial(SceneLoader, str(source))
    loader = factory()
    tokens = [_key_token(loader, k) for k in keys]
    hashes = {t: loader.log_hash(k[0]) for k, t in zip(keys, tokens, strict=True) if t is not None}
    # a cache is rebuilt when missing or when its log changed since (a regenerated split keeps its tokens)
    todo = [
        k
        for k, t in zip(keys, tokens, strict=True)
        if t is not None and (not (root / f"{t}{CACHE_SUFFIX}").is_file() or built.get(t) != hashes[t])
    ]
    present = [t for t in tokens if t is not None]
    done = len(present) - len(todo)
    if progress:
        progress(done, len(present))
    if workers <= 1 or len(todo) < 2:
        for key in todo:
            build_one(loader, key, root)
            done += 1
            if progress:
                progress(done, len(present))
    else:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(factory,)) as pool:
            for _ in pool.map(_build_in_worker, todo, [str(root)] * len(todo), chunksize=4):
                done += 1
                if progress:
                    progress(done, len(present))
    built.update(hashes)
    write_json(
        manifest,
        {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "split": loader.name,
            "tokens": sorted(built),
            "sources": dict(sorted(built.items())),
        },
    )
    return present
