"""Typed views of hydra configs: every yaml group is mirrored by a dataclass that validates its values."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


def to_dataclass(cfg: DictConfig | dict[str, Any], cls: type[T], *, where: str = "") -> T:
    """Merge ``cfg`` into the structured schema of ``cls`` and build the dataclass (running its validation).

    Args:
        cfg: config node (or plain dict) for this group.
        cls: the dataclass mirroring the group.
        where: name of the group, used in error messages.

    Raises:
        ValueError: on unknown keys, wrong types or invalid values, naming the group and key.
    """
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), cfg)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise ValueError(f"config {where or cls.__name__}: {e}") from None
    except ValueError as e:
        raise ValueError(f"config {where or cls.__name__}: {e}") from None


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


def require_at_least(obj: object, names: tuple[str, ...], minimum: float) -> None:
    """Check ``obj.<name> >= minimum`` for each name (a config dataclass's ``__post_init__``).

    Raises:
        ValueError: ``<Class>.<name>: expected >= <minimum>, got <value>`` for the first field that is not.
    """
    for name in names:
        value = getattr(obj, name)
        if not value >= minimum:
            raise ValueError(f"{type(obj).__name__}.{name}: expected >= {minimum}, got {value}")
