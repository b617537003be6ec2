"""``UnionSource``: several scene sources read as one (a training split and its extra splits).

Stage 1 can train on more than one split at once, e.g. ``synth_navtrain`` and ``synth_navtrain_two_stage`` (the
stage-2 scenes re-simulated for the training split, whose ego starts displaced from where the logged driver
was). Every reader of a single source (the feature dataset, the tokenizer, anchor and statistics passes) reads the
union unchanged: its tokens are the sources' in order, and each token is served by the source that holds it.
Scene tokens must be unique across the sources; the feature cache keys entries by token, so one cache holds them
all.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from irl_vla.data.scene import Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.source import SceneSource, SourceFactory


class UnionSource:
    """The scenes of several sources, in order, each token served by its own source.

    Args:
        factories: open the sources (each is opened once, here).

    Raises:
        ValueError: when no source is given, or a token appears in two sources (naming it and both sources).
    """

    def __init__(self, factories: Sequence[SourceFactory]) -> None:
        if not factories:
            raise ValueError("UnionSource: no sources")
        self.sources: list[SceneSource] = [make() for make in factories]
        self._source_of: dict[str, SceneSource] = {}
        self._tokens: list[str] = []
        for source in self.sources:
            for token in source.tokens:
                other = self._source_of.get(token)
                if other is not None:
                    raise ValueError(f"scene token {token} is in both split {other.name} and split {source.name}")
                self._source_of[token] = source
                self._tokens.append(token)

    @property
    def name(self) -> str:
        """The sources' names joined by ``+``."""
        return "+".join(s.name for s in self.sources)

    @property
    def tokens(self) -> list[str]:
        """Every scene token of every source, the sources in order."""
        return list(self._tokens)

    def _source(self, token: str) -> SceneSource:
        try:
            return self._source_of[token]
        except KeyError:
            raise KeyError(f"splits {self.name}: unknown scene token {token!r}") from None

    def get_scene(self, token: str, sensors: SensorConfig | None = None) -> Scene:
        """The scene ``token`` from the source that holds it."""
        return self._source(token).get_scene(token, sensors)

    def get_previous_scene(self, token: str, sensors: SensorConfig | None = None) -> Scene | None:
        """The scene 0.5 s before ``token`` in its own source, if any."""
        return self._source(token).get_previous_scene(token, sensors)

    def log_hash(self, token: str) -> str:
        """The fingerprint of the log holding ``token``, from its own source."""
        return self._source(token).log_hash(token)


def union_factory(factories: Sequence[SourceFactory]) -> SourceFactory:
    """A picklable factory of the union of ``factories``' sources; one factory is returned as it is."""
    if len(factories) == 1:
        return factories[0]
    return partial(UnionSource, list(factories))
