"""Typed views of hydra configs: dataclasses that hold every default and validate the values.

Each command's settings and each config group are a dataclass; ``irl_vla.common.command`` registers them as
hydra's schemas, so a default is written once, in the dataclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


def to_dataclass(cfg: DictConfig | Mapping[str, Any], cls: type[T], *, where: str = "") -> T:
    """Build the dataclass ``cls`` from the values of ``cfg`` over its defaults (running its validation).

    A value replaces the default: a mapping given for a dict field (e.g. aggregation weights) is that dict,
    not its union with the default's keys; nested dataclasses take their given keys the same way.

    Args:
        cfg: config node (or plain mapping) for this group; keys left out keep the dataclass's defaults.
        cls: the dataclass mirroring the group.
        where: name of the group, used in error messages.

    Raises:
        ValueError: on unknown keys, wrong types or invalid values, naming the group and key.
    """
    try:
        node = OmegaConf.structured(cls)
        values = OmegaConf.to_container(cfg) if isinstance(cfg, DictConfig) else cfg
        _assign(node, values)
        return OmegaConf.to_object(node)  # type: ignore[return-value]
    except (OmegaConfBaseException, ValueError) as e:
        raise ValueError(f"config {where or cls.__name__}: {e}") from None


def _assign(node: DictConfig, values: Mapping[str, Any]) -> None:
    """Set each of ``values`` on the structured ``node``: nested dataclasses key by key, anything else whole."""
    for key, value in values.items():
        current = node.get(key) if key in node else None
        if (
            isinstance(value, Mapping)
            and isinstance(current, DictConfig)
            and dataclasses.is_dataclass(OmegaConf.get_type(current))
        ):
            _assign(current, value)
        elif isinstance(value, Mapping) and isinstance(current, DictConfig):
            node[key] = {}  # the dict is the given one (typed values get their own defaults)
            node[key] = OmegaConf.merge(node[key], value)
        else:
            node[key] = value


@dataclass
class PathsConfig:
    """Where data and outputs live (``configs/paths``).

    Attributes:
        data_root: root of generated splits and caches.
        output_root: root of run directories, reports and checkpoints.
    """

    data_root: str = "data"
    output_root: str = "outputs"

    def __post_init__(self) -> None:
        for name in ("data_root", "output_root"):
            if not getattr(self, name):
                raise ValueError(f"PathsConfig.{name}: empty path")

    @property
    def data(self) -> Path:
        """``data_root`` as a path."""
        return Path(self.data_root)

    @property
    def outputs(self) -> Path:
        """``output_root`` as a path."""
        return Path(self.output_root)


@dataclass
class RunConfig:
    """Settings every command shares (``run.<key>=...``); a command's key of the same name follows them.

    Attributes:
        seed: base seed of what a command draws at random (``generate.base_seed`` follows it).
        progress: show progress bars.
        backend: where a command's parallel tasks run: ``sequential``, ``process`` or ``ray`` (``irl-vla[dist]``).
        workers: processes (``process``), or CPUs of a local Ray instance (``ray``).
        ray_address: with ``backend=ray``: ``None`` starts a local Ray instance; ``auto`` or
            ``ray://<head>:10001`` joins a running cluster.
    """

    seed: int = 0
    progress: bool = True
    backend: str = "process"
    workers: int = 2
    ray_address: str | None = None


def require_at_least_or_none(obj: object, names: tuple[str, ...], minimum: float) -> None:
    """Check ``obj.<name> >= minimum`` for each name whose value is not ``None`` (optional limits).

    Raises:
        ValueError: ``<Class>.<name>: expected >= <minimum> or null, got <value>`` for the first that is not.
    """
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value >= minimum:
            raise ValueError(f"{type(obj).__name__}.{name}: expected >= {minimum} or null, got {value}")


def require_at_least(obj: object, names: tuple[str, ...], minimum: float) -> None:
    """Check ``obj.<name> >= minimum`` for each name (a config dataclass's ``__post_init__``).

    Raises:
        ValueError: ``<Class>.<name>: expected >= <minimum>, got <value>`` for the first field that is not.
    """
    for name in names:
        value = getattr(obj, name)
        if not value >= minimum:
            raise ValueError(f"{type(obj).__name__}.{name}: expected >= {minimum}, got {value}")


def load_yaml_config(
    path: Path, cls: type[T], what: str, sizes: tuple[str, ...], overrides: dict[str, Any] | None = None
) -> T:
    """The dataclass ``cls`` from the yaml file ``path`` merged with ``overrides``.

    Args:
        path: the yaml file (a shipped size's or the user's).
        cls: the config dataclass.
        what: the kind of config, for messages (``"model"``, ``"reward model"``).
        sizes: the shipped sizes, named when the file is missing.
        overrides: nested keys merged over the file.

    Raises:
        FileNotFoundError: naming the file.
        ValueError: naming the key of an unknown or invalid field.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {what} config (sizes: {', '.join(sizes)})")
    cfg = OmegaConf.load(path)
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.create(overrides))
    return to_dataclass(cfg, cls, where=f"{what} ({path})")
