"""``FeatureDataset``: features and targets of the scenes of any scene source, through the feature cache.

A sample is computed from the scene (with the sensors the feature builders ask for) or read from the cache;
builders whose cache entry is missing or stale are computed again and written back, so the first pass over a
split fills the cache and later passes only read it. The dataset holds a picklable factory of its source and
opens the source on first use in each process, so ``DataLoader`` workers each read their own.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from enum import Enum
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset

from irl_vla.data.features.builder import (
    Builder,
    FeatureBuilder,
    TargetBuilder,
    check_unique_keys,
    merge_sensor_configs,
)
from irl_vla.data.features.cache import CorruptCacheError, EntryState, FeatureCache
from irl_vla.data.source import SceneSource, SourceFactory


class Sample(NamedTuple):
    """One scene's tensors (no batch axis)."""

    token: str
    features: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]


class Batch(NamedTuple):
    """Collated samples: every tensor gains a leading batch axis B."""

    tokens: list[str]
    features: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]


class LoadStatus(str, Enum):
    """How a builder's tensors of one sample were obtained."""

    CACHED = "cached"  # read from a valid cache entry
    BUILT = "built"  # computed (no cache, or no entry yet)
    REBUILT = "rebuilt"  # computed because the entry was stale
    REPAIRED = "repaired"  # computed because the entry was corrupt (``repair_corrupt``)


def _stack(samples: Sequence[dict[str, torch.Tensor]], what: str, tokens: list[str]) -> dict[str, torch.Tensor]:
    out = {}
    for key in samples[0]:
        shapes = {tuple(s[key].shape) for s in samples}
        if len(shapes) > 1:
            raise ValueError(f"collate: {what} {key!r} has different shapes {sorted(shapes)} in tokens {tokens}")
        out[key] = torch.stack([s[key] for s in samples])
    return out


def collate(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a ``Batch`` (the ``DataLoader`` ``collate_fn``).

    Raises:
        ValueError: naming the key and tokens when shapes differ across samples.
    """
    if not samples:
        raise ValueError("collate: no samples")
    tokens = [s.token for s in samples]
    return Batch(
        tokens,
        _stack([s.features for s in samples], "feature", tokens),
        _stack([s.targets for s in samples], "target", tokens),
    )


class FeatureDataset(Dataset[Sample]):
    """Features and targets per scene token.

    Args:
        source: opens the scene source (called once per process).
        feature_builders: policy inputs, computed from each scene's ``AgentInput`` only.
        target_builders: supervision, computed from the scene.
        tokens: the scenes, in order (default: every token of the source).
        cache_dir: the feature cache (``None``: compute every sample).
        repair_corrupt: rebuild a corrupt cache entry (with a warning naming it) instead of raising.

    Raises:
        ValueError: when two builders share a name or an output key.
    """

    def __init__(
        self,
        source: SourceFactory,
        feature_builders: Sequence[FeatureBuilder],
        target_builders: Sequence[TargetBuilder] = (),
        *,
        tokens: Sequence[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        repair_corrupt: bool = False,
    ) -> None:
        self.feature_builders = list(feature_builders)
        self.target_builders = list(target_builders)
        check_unique_keys([*self.feature_builders, *self.target_builders])
        self.make_source = source
        self._source: SceneSource | None = None
        self.tokens = list(self.source.tokens if tokens is None else tokens)
        self.cache = None if cache_dir is None else FeatureCache(cache_dir)
        self.repair_corrupt = repair_corrupt
        self.fingerprints = {b.name: b.fingerprint() for b in self.builders}

    @property
    def builders(self) -> list[Builder]:
        """Feature builders, then target builders."""
        return [*self.feature_builders, *self.target_builders]

    @property
    def source(self) -> SceneSource:
        """The scene source (opened on first use in this process)."""
        if self._source is None:
            self._source = self.make_source()
        return self._source

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_source": None}  # each worker opens its own

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> Sample:
        return self.load(self.tokens[index])[0]

    def load(self, token: str) -> tuple[Sample, dict[str, LoadStatus]]:
        """The sample of ``token`` and how each builder's tensors were obtained.

        Raises:
            CorruptCacheError: naming the file of a corrupt entry (unless ``repair_corrupt``).
        """
        outputs: dict[str, dict[str, torch.Tensor]] = {}
        status: dict[str, LoadStatus] = {}
        log_hash = self.source.log_hash(token) if self.cache is not None else ""
        for builder in self.builders:
            status[builder.name], tensors = self._read(token, builder, log_hash)
            if tensors is not None:
                outputs[builder.name] = tensors
        todo = [b for b in self.builders if b.name not in outputs]
        if todo:
            outputs.update(self._compute(token, todo, log_hash))
        features = {k: v for b in self.feature_builders for k, v in outputs[b.name].items()}
        targets = {k: v for b in self.target_builders for k, v in outputs[b.name].items()}
        return Sample(token, features, targets), status

    def store(self, token: str, outputs: dict[str, dict[str, torch.Tensor]]) -> list[str]:
        """Cache outputs computed elsewhere (builder name -> tensors) as ``token``'s entries, except current ones.

        The tensors are checked against each builder's specs as a computed sample's are.

        Returns:
            The names of the builders whose entries were written.

        Raises:
            ValueError: when the dataset has no cache, or a name is not one of its builders'.
            CorruptCacheError: naming the file of a corrupt entry (unless ``repair_corrupt``).
        """
        if self.cache is None:
            raise ValueError("FeatureDataset.store: this dataset has no cache (cache_dir)")
        unknown = sorted(set(outputs) - set(self.fingerprints))
        if unknown:
            raise ValueError(f"FeatureDataset.store: builders {unknown} are not this dataset's")
        log_hash = self.source.log_hash(token)
        written = []
        for builder in self.builders:
            if builder.name not in outputs or self._read(token, builder, log_hash)[1] is not None:
                continue
            tensors = builder.check(outputs[builder.name], f"scene {token}")
            self.cache.write(token, builder, tensors, log_hash, self.fingerprints[builder.name])
            written.append(builder.name)
        return written

    def _read(self, token: str, builder: Builder, log_hash: str) -> tuple[LoadStatus, dict[str, torch.Tensor] | None]:
        """``builder``'s cached tensors of ``token`` (``CACHED``), or ``None`` and why they must be built."""
        if self.cache is None:
            return LoadStatus.BUILT, None
        try:
            state, tensors = self.cache.read(token, builder, log_hash, self.fingerprints[builder.name])
        except CorruptCacheError as e:
            if not self.repair_corrupt:
                raise
            warnings.warn(f"{e}; rebuilding it", stacklevel=3)
            return LoadStatus.REPAIRED, None
        if tensors is not None:
            return LoadStatus.CACHED, tensors
        return (LoadStatus.REBUILT if state is EntryState.STALE else LoadStatus.BUILT), None

    def _compute(self, token: str, builders: list[Builder], log_hash: str) -> dict[str, dict[str, torch.Tensor]]:
        """Compute (and cache) the outputs of ``builders`` from the scene."""
        features = [b for b in builders if isinstance(b, FeatureBuilder)]
        sensors = merge_sensor_configs([b.sensor_config() for b in features])
        scene = self.source.get_scene(token, sensors)
        agent_input = scene.get_agent_input() if features else None
        out = {}
        where = f"scene {token}"
        for builder in builders:
            if isinstance(builder, FeatureBuilder):
                assert agent_input is not None
                tensors = builder.check(builder.compute(agent_input), where)
            else:
                assert isinstance(builder, TargetBuilder)
                tensors = builder.check(builder.compute(scene), where)
            if self.cache is not None:
                self.cache.write(token, builder, tensors, log_hash, self.fingerprints[builder.name])
            out[builder.name] = tensors
        return out
