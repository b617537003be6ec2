"""Where a command's scenes come from: the settings every command that reads a split shares, validated once.

``irl-vla eval``, ``submit``, ``cache``, ``label``, ``report`` and ``train`` (every stage) read a split of scenes,
from an embedded split under ``data_root`` or from a NAVSIM data root. Their settings dataclasses inherit these
fields (the keys users type stay ``eval.split=...``, ``label.navsim_root=...``), their descriptions in ``--help``
and their validation; a command re-declares a field only to give it another default. ``tools/sources.py`` turns
them into the scene readers. A split's derived data live beside it, under ``<data_root>/<kind>/<split>``
(``DataKind``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from irl_vla.common.config import require_at_least_or_none

#: Where a command can read its split from: the embedded splits, or a NAVSIM data root (``sim_bridges.navsim``).
SOURCE_KINDS = ("embedded", "navsim")


class DataKind(StrEnum):
    """What a split's derived data are, and the folder of ``<data_root>`` holding them per split."""

    METRIC_CACHE = "metric_cache"
    FEATURES = "features"
    LABELS = "labels"


def split_data_dir(data_root: str | Path, kind: DataKind, split: str) -> Path:
    """``<data_root>/<kind>/<split>``: where the derived data ``kind`` of ``split`` live by default."""
    return Path(data_root) / kind.value / split


@dataclass
class SceneSourceConfig:
    """The scene source of a command: an embedded split, or a split of a NAVSIM data root.

    Attributes:
        data_root: root of the generated splits and their caches (follows ``paths.data_root``).
        split: the split whose scenes the command reads.
        source: ``embedded`` or ``navsim`` (read ``<split>`` from a NAVSIM data root).
        navsim_root: with ``source=navsim``: the NAVSIM data root (``OPENSCENE_DATA_ROOT``).
        maps_root: the nuPlan maps root (``NUPLAN_MAPS_ROOT``; default ``<navsim_root>/maps``).
        split_file: a navsim ``train_test_split`` yaml choosing the scenes (default
            ``<navsim_root>/train_test_split/<split>.yaml`` if it exists, else every window).
        sensor_cache: embedded splits: keep the sensors rendered on load here; ``None`` renders on every load.
    """

    data_root: str = "data"
    split: str = "synth_navtest"
    source: str = "embedded"
    navsim_root: str | None = None
    maps_root: str | None = None
    split_file: str | None = None
    sensor_cache: str | None = None

    def __post_init__(self) -> None:
        after = getattr(super(), "__post_init__", None)  # the next base's checks (a trainer's settings)
        if after is not None:
            after()
        where = type(self).__name__
        if self.source not in SOURCE_KINDS:
            raise ValueError(f"{where}.source: {self.source!r} is not one of {list(SOURCE_KINDS)}")
        if self.source == "navsim" and not self.navsim_root:
            raise ValueError(f"{where}.navsim_root: required with source=navsim (the OPENSCENE_DATA_ROOT to read)")

    def data_dir(self, kind: DataKind, split: str | None = None) -> Path:
        """Where the derived data ``kind`` of ``split`` (default: this config's split) live by default.

        Raises:
            ValueError: when no split is given and the config has none.
        """
        return split_data_dir(self.data_root, kind, self._split(split, kind))

    def metric_caches(self, split: str | None = None) -> Path:
        """Where the metric caches of ``split`` (default: this config's split) live, for every command that scores it.

        ``<data_root>/metric_cache/<split>`` for an embedded split, ``.../navsim-<split>`` for a NAVSIM root's (never
        the folder of an embedded split of the same name): eval, label and training's validation share them.
        """
        name = self._split(split, DataKind.METRIC_CACHE)
        return split_data_dir(
            self.data_root, DataKind.METRIC_CACHE, name if self.source == "embedded" else f"{self.source}-{name}"
        )

    def _split(self, split: str | None, kind: DataKind) -> str:
        split = self.split if split is None else split
        if split is None:
            raise ValueError(f"{type(self).__name__}.split: not set; no {kind.value} directory without a split")
        return split

    def scene_settings(self) -> dict[str, Any]:
        """This config's scene-source keys and values (``max_scenes`` too where it has one).

        E.g. to give another command's config the same scenes: ``LabelConfig(**report.scene_settings(), ...)``.
        """
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in SCENE_KEYS}


@dataclass
class SceneSelectionConfig(SceneSourceConfig):
    """A scene source and how many of its scenes a command reads.

    Attributes:
        max_scenes: read only the first N scenes; ``None``: all.
    """

    max_scenes: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least_or_none(self, ("max_scenes",), 1)


#: The keys ``SceneSourceConfig.scene_settings`` hands on: a scene source's and ``max_scenes``.
SCENE_KEYS: frozenset[str] = frozenset(f.name for f in fields(SceneSelectionConfig))
