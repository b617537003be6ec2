"""The feature-builder and target-builder contract (NAVSIM's feature/target builder idea, in our types).

A *feature builder* turns what an agent sees (an ``AgentInput``: sensors, ego status history, driving command,
navigation instruction) into tensors a policy reads; it never receives the ``Scene``, so a non-privileged policy
cannot read the future, the annotations or the map through it. A *target builder* turns a ``Scene`` (privileged:
the future, the annotations, the map) into supervision tensors.

Every builder has a unique ``name``, an integer ``version`` (bumped whenever its output changes for the same
input) and its parameters (a frozen dataclass); together they form its ``fingerprint``, which keys the feature
cache. ``specs()`` states each output's shape in letters and ``dims()`` the size of each letter for this
builder, so outputs are checked on every computation and every cache read.

Shape letters: B batch, T time steps (history frames of features, poses of targets), N cameras, C channels,
H / W image or grid height / width, A annotated objects, L tokens, D features.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.sensors import SensorConfig

#: Shape letters a spec may use (documented in the module docstring and ``docs/features.md``).
SHAPE_LETTERS = frozenset("BTNCHWALD")


@dataclass(frozen=True)
class TensorSpec:
    """Shape (in letters) and dtype of one output tensor, without the batch letter.

    Attributes:
        dims: one letter per axis, e.g. ``("T", "D")``; sizes come from the builder's ``dims()``.
        dtype: the tensor's dtype.
        doc: what the tensor holds (units, column meanings).
        sizes: letter sizes of this tensor alone, overriding the builder's (e.g. ``{"D": 3}`` for 3 x 3 matrices
            beside a ``D`` of another size).
    """

    dims: tuple[str, ...]
    dtype: torch.dtype
    doc: str = ""
    sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [d for d in self.dims if d not in SHAPE_LETTERS]
        if unknown or "B" in self.dims:
            raise ValueError(f"TensorSpec.dims: {self.dims} uses letters outside {sorted(SHAPE_LETTERS - {'B'})}")

    def shape(self, sizes: dict[str, int]) -> tuple[int | None, ...]:
        """The concrete shape for the builder's letter ``sizes`` (``None`` for a letter without a fixed size)."""
        merged = {**sizes, **self.sizes}
        return tuple(merged.get(d) for d in self.dims)


class Builder(ABC):
    """What feature and target builders share: identity, output specs and output checks."""

    #: Unique name (also the cache file name of its outputs).
    name: ClassVar[str]
    #: Bumped whenever the outputs change for the same input; a cache of another version is stale.
    version: ClassVar[int]

    @abstractmethod
    def specs(self) -> dict[str, TensorSpec]:
        """Output key -> spec."""

    def dims(self) -> dict[str, int]:
        """Size of each shape letter of ``specs()`` that is fixed for this builder (others are free)."""
        return {}

    def params(self) -> dict[str, Any]:
        """The parameters that change the outputs (a dataclass builder's fields by default)."""
        if dataclasses.is_dataclass(self):
            return dataclasses.asdict(self)
        return {}

    def fingerprint(self) -> str:
        """SHA-256 of name, version and parameters: a cache entry of another fingerprint is stale."""
        doc = {"name": self.name, "version": self.version, "params": self.params()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()

    def check(self, outputs: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
        """Return ``outputs`` after checking keys, dtypes and shapes against ``specs()``.

        Args:
            outputs: what ``compute`` returned (or a cache entry held).
            where: what is checked (token, file), for the error message.

        Raises:
            ValueError: naming ``where``, the builder and the key.
        """
        specs = self.specs()
        if set(outputs) != set(specs):
            raise ValueError(
                f"{where}: builder {self.name} gave keys {sorted(outputs)}, its specs name {sorted(specs)}"
            )
        sizes = self.dims()
        for key, spec in specs.items():
            value = outputs[key]
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{where}: {self.name}.{key} is a {type(value).__name__}, not a tensor")
            want = spec.shape(sizes)
            matches = value.dim() == len(want) and all(
                w is None or g == w for g, w in zip(value.shape, want, strict=True)
            )
            if not matches:
                shown = tuple("*" if w is None else w for w in want)
                raise ValueError(
                    f"{where}: {self.name}.{key} has shape {tuple(value.shape)}, expected {shown} {spec.dims}"
                )
            if value.dtype != spec.dtype:
                raise ValueError(f"{where}: {self.name}.{key} has dtype {value.dtype}, expected {spec.dtype}")
        return outputs


class FeatureBuilder(Builder):
    """Policy inputs from an ``AgentInput`` only (sensors, ego status history, driving command, instruction)."""

    def sensor_config(self) -> SensorConfig:
        """The sensors this builder reads (none by default)."""
        return SensorConfig.build_no_sensors()

    @abstractmethod
    def compute(self, agent_input: AgentInput) -> dict[str, torch.Tensor]:
        """The builder's tensors (shapes per ``specs()``, no batch axis)."""


class TargetBuilder(Builder):
    """Supervision from a ``Scene`` (privileged: future frames, annotations, map)."""

    @abstractmethod
    def compute(self, scene: Scene) -> dict[str, torch.Tensor]:
        """The builder's tensors (shapes per ``specs()``, no batch axis)."""


def merge_sensor_configs(configs: list[SensorConfig]) -> SensorConfig:
    """The union of several sensor configs (a sensor is read at a history index if any config asks for it)."""
    cameras: dict[str, bool | list[int]] = {}
    lidar: bool | list[int] = False
    for cfg in configs:
        for name, sel in cfg.cameras.items():
            cameras[name] = _union(cameras.get(name, False), sel)
        lidar = _union(lidar, cfg.lidar_pc)
    return SensorConfig(cameras=cameras, lidar_pc=lidar)


def _union(a: bool | list[int], b: bool | list[int]) -> bool | list[int]:
    if a is True or b is True:
        return True
    return sorted(set(a or []) | set(b or []))


def check_unique_keys(builders: list[Builder]) -> None:
    """Refuse two builders of one name, or two builders writing one output key.

    Raises:
        ValueError: naming the builders and the key.
    """
    names: set[str] = set()
    owner: dict[str, str] = {}
    for builder in builders:
        if builder.name in names:
            raise ValueError(f"builder {builder.name} is listed twice")
        names.add(builder.name)
        for key in builder.specs():
            if key in owner:
                raise ValueError(f"builders {owner[key]} and {builder.name} both write the key {key!r}")
            owner[key] = builder.name
