"""Builders by name, and building them from a config (``{name: {parameter: value}}``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from irl_vla.common.config import to_dataclass
from irl_vla.data.features.agent_futures import AgentFutureTargetBuilder
from irl_vla.data.features.bev_semantic import BevSemanticTargetBuilder
from irl_vla.data.features.builder import Builder, FeatureBuilder, TargetBuilder
from irl_vla.data.features.cameras import CameraBuilder
from irl_vla.data.features.ego import DrivingCommandBuilder, EgoStatusBuilder
from irl_vla.data.features.instruction import InstructionTokensBuilder, SceneDescriptionTargetBuilder
from irl_vla.data.features.lidar import LidarBevBuilder
from irl_vla.data.features.red_lights import RedLightTargetBuilder
from irl_vla.data.features.route import RouteCenterlineTargetBuilder
from irl_vla.data.features.targets import AgentTargetBuilder, MetaActionTargetBuilder, TrajectoryTargetBuilder

#: Feature builders (policy inputs) by name.
FEATURE_BUILDERS: dict[str, type[FeatureBuilder]] = {
    cls.name: cls
    for cls in (EgoStatusBuilder, DrivingCommandBuilder, CameraBuilder, LidarBevBuilder, InstructionTokensBuilder)
}

#: Target builders (supervision) by name.
TARGET_BUILDERS: dict[str, type[TargetBuilder]] = {
    cls.name: cls
    for cls in (
        TrajectoryTargetBuilder,
        AgentTargetBuilder,
        AgentFutureTargetBuilder,
        BevSemanticTargetBuilder,
        MetaActionTargetBuilder,
        SceneDescriptionTargetBuilder,
        RouteCenterlineTargetBuilder,
        RedLightTargetBuilder,
    )
}

B = TypeVar("B", bound=Builder)

#: Builder fields a command fills in (never a user setting): the tokenizer file, found or built by the cache.
FILLED_IN = ("tokenizer",)


def builder_parameters(cls: type[Builder]) -> dict[str, Any]:
    """A builder's parameters with their defaults, as plain data (what a config lists so each can be overridden)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in FILLED_IN or not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        if isinstance(out[f.name], tuple):
            out[f.name] = list(out[f.name])
    return out


def _build(config: Mapping[str, Any] | None, registry: dict[str, type[B]], where: str) -> list[B]:
    out = []
    for name, params in (config or {}).items():
        if name not in registry:
            raise ValueError(f"{where}: unknown builder {name!r}; available: {sorted(registry)}")
        out.append(to_dataclass(dict(params or {}), registry[name], where=f"{where}.{name}"))
    return out


def build_feature_builders(config: Mapping[str, Any] | None, where: str = "features") -> list[FeatureBuilder]:
    """Feature builders of a config mapping builder names to their parameters (in the mapping's order).

    Raises:
        ValueError: naming ``where`` and the builder on an unknown name or a bad parameter.
    """
    return _build(config, FEATURE_BUILDERS, where)


def build_target_builders(config: Mapping[str, Any] | None, where: str = "targets") -> list[TargetBuilder]:
    """Target builders of a config mapping builder names to their parameters (see ``build_feature_builders``)."""
    return _build(config, TARGET_BUILDERS, where)
