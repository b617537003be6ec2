"""``SceneSource``: what every reader of scenes offers (embedded splits, NAVSIM data roots).

Evaluation and metric caching take a picklable factory of a source (e.g. ``functools.partial(SceneLoader,
split_dir)``), so worker processes open their own reader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from irl_vla.data.scene import Scene


class SceneSource(Protocol):
    """Scenes by token."""

    @property
    def name(self) -> str:
        """The split's name."""
        ...

    @property
    def tokens(self) -> list[str]:
        """Every scene token, in log order."""
        ...

    def get_scene(self, token: str) -> Scene:
        """The scene with current-frame ``token``, map attached."""
        ...

    def get_previous_scene(self, token: str) -> Scene | None:
        """The window one frame (0.5 s) earlier in the same log, if any."""
        ...

    def log_hash(self, token: str) -> str:
        """A fingerprint of the log holding ``token``: it changes when the log does."""
        ...


#: A picklable callable that opens a source (in this or a worker process).
SourceFactory = Callable[[], SceneSource]

#: Where a command can read its split from: the embedded splits, or a NAVSIM data root (``sim_bridges.navsim``).
SOURCE_KINDS = ("embedded", "navsim")


def check_source(where: str, source: str, navsim_root: str | None) -> None:
    """Validate the ``source`` / ``navsim_root`` settings of a command config.

    Raises:
        ValueError: naming ``where`` and the field.
    """
    if source not in SOURCE_KINDS:
        raise ValueError(f"{where}.source: {source!r} is not one of {list(SOURCE_KINDS)}")
    if source == "navsim" and not navsim_root:
        raise ValueError(f"{where}.navsim_root: required with source=navsim (the OPENSCENE_DATA_ROOT to read)")
