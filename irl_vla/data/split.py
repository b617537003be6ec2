"""A split on disk (``<data_root>/<split>/``): ``manifest.json`` plus one log record per log under ``logs/``.

The manifest (format ``irl_vla.split``) names the split, its generator settings and seeds, the counts, and per
log its file, family, seed, SHA-256 and scene tokens. ``SceneLoader`` serves scenes by token from it, reading
each log once (LRU-cached); a missing or corrupt log raises an error naming the file, and so does a log whose
SHA-256 is not the manifest's (edited in place since generation): it is checked on every read and by
``log_hash``, the fingerprint metric caches are keyed by.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from irl_vla.common.io import DataFormatError, read_json
from irl_vla.data.log_io import LOG_FORMAT_VERSION, LogRecord, read_log, verify_log
from irl_vla.data.rendered_sensors import RenderedSensors
from irl_vla.data.scene import Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.source import SceneSources
from irl_vla.data.two_stage import TWO_STAGE_FILE, two_stage_dir

T = TypeVar("T")

SPLIT_FORMAT = "irl_vla.split"
SPLIT_FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass
class LogEntry:
    """One log of a split's manifest."""

    log_name: str
    file: str  # relative to the split directory
    family: str
    seed: int
    sha256: str
    scene_tokens: list[str]
    hard: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "log_name": self.log_name,
            "file": self.file,
            "family": self.family,
            "seed": self.seed,
            "sha256": self.sha256,
            "hard": self.hard,
            "scene_tokens": list(self.scene_tokens),
        }


@dataclass
class SplitManifest:
    """Everything about a split except the logs' content."""

    split: str
    logs: list[LogEntry]
    settings: dict[str, Any] = field(default_factory=dict)
    rejected: int = 0  # logs regenerated with another seed because the expert's rollout failed its audit

    @property
    def tokens(self) -> list[str]:
        """Every scene token, in log order."""
        return [t for entry in self.logs for t in entry.scene_tokens]

    def counts(self) -> dict[str, Any]:
        """Logs and scenes, in total and per family."""
        by_family: dict[str, dict[str, int]] = {}
        for e in self.logs:
            c = by_family.setdefault(e.family, {"logs": 0, "scenes": 0})
            c["logs"] += 1
            c["scenes"] += len(e.scene_tokens)
        return {
            "logs": len(self.logs),
            "scenes": sum(len(e.scene_tokens) for e in self.logs),
            "rejected": self.rejected,
            "by_family": dict(sorted(by_family.items())),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with the flat token list NAVSIM-style tools expect)."""
        return {
            "format": SPLIT_FORMAT,
            "version": SPLIT_FORMAT_VERSION,
            "log_format_version": LOG_FORMAT_VERSION,
            "split": self.split,
            "settings": self.settings,
            "counts": self.counts(),
            "logs": [e.to_dict() for e in self.logs],
            "tokens": self.tokens,
        }

    @classmethod
    def read(cls, split_dir: str | os.PathLike[str]) -> SplitManifest:
        """Read ``<split_dir>/manifest.json``.

        Raises:
            FileNotFoundError: when the split has no manifest (not generated, or generation interrupted).
            DataFormatError: naming the file and field when the manifest is malformed.
        """
        path = Path(split_dir) / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: generate the split first (irl-vla generate)")
        doc = read_json(path)
        if not isinstance(doc, dict) or doc.get("format") != SPLIT_FORMAT:
            raise DataFormatError(f"{path}: not an {SPLIT_FORMAT} manifest")
        if doc.get("version") != SPLIT_FORMAT_VERSION or doc.get("log_format_version") != LOG_FORMAT_VERSION:
            raise DataFormatError(
                f"{path}: manifest version {doc.get('version')} / log format {doc.get('log_format_version')}, "
                f"expected {SPLIT_FORMAT_VERSION} / {LOG_FORMAT_VERSION}: regenerate the split"
            )
        try:
            logs = [
                LogEntry(
                    str(e["log_name"]),
                    str(e["file"]),
                    str(e["family"]),
                    int(e["seed"]),
                    str(e["sha256"]),
                    [str(t) for t in e["scene_tokens"]],
                    bool(e.get("hard", False)),
                )
                for e in doc["logs"]
            ]
            return cls(str(doc["split"]), logs, dict(doc.get("settings", {})), int(doc["counts"]["rejected"]))
        except (KeyError, TypeError, ValueError) as e:
            raise DataFormatError(f"{path}: bad field ({type(e).__name__}: {e})") from None


class SceneLoader:
    """Scenes of a split by token.

    Args:
        split_dir: the split's directory.
        cache_logs: how many decoded logs to keep in memory.
        renderer: renders the sensors a scene is asked for (the command gives it; without one, asking for
            sensors is an error).
    """

    def __init__(
        self, split_dir: str | os.PathLike[str], cache_logs: int = 8, renderer: RenderedSensors | None = None
    ) -> None:
        self.split_dir = Path(split_dir)
        self.renderer = renderer
        self.manifest = SplitManifest.read(self.split_dir)
        self._log_of: dict[str, LogEntry] = {}
        for entry in self.manifest.logs:
            for token in entry.scene_tokens:
                if token in self._log_of:
                    raise DataFormatError(f"{self.split_dir / MANIFEST}: scene token {token} appears twice")
                self._log_of[token] = entry
        self._cache: OrderedDict[str, LogRecord] = OrderedDict()
        self._cache_size = cache_logs

    @property
    def name(self) -> str:
        """The split's name."""
        return self.manifest.split

    @property
    def tokens(self) -> list[str]:
        """Every scene token of the split."""
        return self.manifest.tokens

    def log_hash(self, token: str) -> str:
        """SHA-256 of the log file holding scene ``token``, checked against the manifest.

        Raises:
            FileNotFoundError: naming the log file when it is missing.
            LogChangedError: naming the log file when it no longer has the manifest's SHA-256.
        """
        entry = self.entry(token)
        verify_log(self.split_dir / entry.file, entry.sha256)
        return entry.sha256

    def __len__(self) -> int:
        return len(self._log_of)

    def entry(self, token: str) -> LogEntry:
        """Manifest entry of the log holding scene ``token``."""
        try:
            return self._log_of[token]
        except KeyError:
            raise KeyError(f"split {self.manifest.split}: unknown scene token {token!r}") from None

    def log(self, entry: LogEntry) -> LogRecord:
        """The decoded log of a manifest entry (cached), its SHA-256 checked against the manifest."""
        if entry.log_name in self._cache:
            self._cache.move_to_end(entry.log_name)
            return self._cache[entry.log_name]
        path = self.split_dir / entry.file
        record = read_log(path, entry.sha256)
        if record.log_name != entry.log_name:
            raise DataFormatError(f"{path}: holds log {record.log_name}, the manifest expects {entry.log_name}")
        self._cache[entry.log_name] = record
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return record

    def get_scene(self, token: str, sensors: SensorConfig | None = None) -> Scene:
        """The scene with current-frame ``token`` (map attached), history sensors rendered per ``sensors``."""
        entry = self.entry(token)
        return self._with_sensors(self.log(entry).scene(token), entry, sensors)

    def get_previous_scene(self, token: str, sensors: SensorConfig | None = None) -> Scene | None:
        """The scene one frame (0.5 s) before scene ``token`` in its log (for two-frame comfort), if any."""
        entry = self.entry(token)
        scene = self.log(entry).previous_scene(token)
        return None if scene is None else self._with_sensors(scene, entry, sensors)

    def _with_sensors(self, scene: Scene, entry: LogEntry, sensors: SensorConfig | None) -> Scene:
        if sensors is None or not sensors.needs_any:
            return scene
        if self.renderer is None:
            raise ValueError(
                f"split {self.name}: scene {scene.token} asked for sensors, but this loader renders none "
                "(open it with a renderer, as the irl-vla commands do)"
            )
        return self.renderer.attach(scene, sensors, entry.sha256)


def embedded_sources(split_dir: str | os.PathLike[str], renderer: RenderedSensors | None = None) -> SceneSources:
    """The sources of an embedded split: its scenes and, where it has them, its stage-2 scenes.

    Args:
        split_dir: the split's directory.
        renderer: renders the sensors agents ask for (the command chooses it); ``None``: sensors are refused.
    """
    stage_two = two_stage_dir(split_dir)
    return SceneSources(
        partial(SceneLoader, str(split_dir), renderer=renderer),
        partial(SceneLoader, str(stage_two), renderer=renderer) if (stage_two / TWO_STAGE_FILE).is_file() else None,
    )


def spread(tokens: Sequence[T], count: int) -> list[T]:
    """At most ``count`` tokens (or groups) evenly spread over ``tokens`` (the first and the last included)."""
    if len(tokens) <= count:
        return list(tokens)
    return [tokens[i] for i in np.linspace(0, len(tokens) - 1, count).round().astype(int)]
