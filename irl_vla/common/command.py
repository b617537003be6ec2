"""A command's configuration: its dataclass as hydra's schema, one loader, and one run directory per run.

Each ``irl-vla`` command declares a ``Command``: the name of its primary config (``configs/<name>.yaml``), the
key its settings live under and their dataclass. Declaring it registers the dataclass in hydra's ConfigStore as
``<name>_schema``, listed first in the primary config's defaults, so a default is written once, in the dataclass;
the yaml holds only the groups the command composes and the interpolations that differ. The command's keys
named in ``SHARED_FIELDS`` follow the shared ``paths`` and ``run`` (``RunConfig``) settings, so
``run.workers=8`` sets the workers of whichever command runs (``eval.workers=8`` still sets its own).

``Command.load`` turns the composed config into the dataclass (validating it); ``Command.start`` makes the run's
directory ``<output_root>/<command>[/<split>]/<timestamp>/`` with the resolved ``config.yaml``, and
``Run.finish`` prints every path the run wrote and points ``latest`` at it.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from irl_vla.common.config import PathsConfig, RunConfig, to_dataclass
from irl_vla.common.io import atomic_open
from irl_vla.common.parallel import ExecutorConfig
from irl_vla.common.run_dir import create_run_dir, point_latest

T = TypeVar("T")

#: A command's field of one of these names follows the shared settings (the interpolation it is given).
SHARED_FIELDS: dict[str, str] = {
    "data_root": "${paths.data_root}",
    "seed": "${run.seed}",
    "base_seed": "${run.seed}",
    "progress": "${run.progress}",
    "backend": "${run.backend}",
    "workers": "${run.workers}",
    "ray_address": "${run.ray_address}",
}
#: The package holding the primary configs and the yaml config groups.
CONFIG_PACKAGE = "configs"
#: The resolved config a run writes into its directory.
CONFIG_FILE = "config.yaml"
#: Width of the descriptions in ``--help``.
HELP_WIDTH = 100


def schema_node(schema: type) -> DictConfig:
    """The structured config of ``schema`` with its shared fields (and its executors' fields) interpolated."""
    node = OmegaConf.structured(schema)
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        if f.name in SHARED_FIELDS:
            node[f.name] = SHARED_FIELDS[f.name]
        elif hints[f.name] is ExecutorConfig:
            for sub in dataclasses.fields(ExecutorConfig):
                node[f.name][sub.name] = SHARED_FIELDS[sub.name]
    return node


def register_group(group: str, options: Mapping[str, Any], package: str | None = None) -> None:
    """Register the options of a config group given by dataclass instances (``aggregation=pdms``).

    Args:
        group: the group's name, as selected on the command line.
        options: option name -> its settings.
        package: where the options land in the config (e.g. ``eval.aggregation``); ``None``: at ``<group>``.
    """
    store = ConfigStore.instance()
    for name, node in options.items():
        store.store(group=group, name=name, node=node, package=package)


@dataclass(frozen=True)
class Run:
    """One run of a command: its directory (holding ``config.yaml`` and the run's outputs)."""

    dir: Path

    def finish(self, written: Iterable[Path | str] = ()) -> None:
        """Print each path the run wrote (its ``config.yaml`` included) and point ``latest`` at this run."""
        for path in [self.dir / CONFIG_FILE, *written]:
            print(f"wrote {Path(path)}")
        print(f"run directory {self.dir} ({point_latest(self.dir)} points here)")


class Command(Generic[T]):
    """A command's settings: their dataclass registered as its schema, loaded and validated in one place.

    Args:
        name: the primary config (``configs/<name>.yaml``) and hydra job name, e.g. ``navsim_export``.
        schema: the dataclass of the settings.
        key: the node the settings live under (``eval``); ``None``: at the top level (``bench``, ``preview``).
        split_key: the settings' field naming the split: runs then live under ``<command>/<split>/``.
        summary: one line saying what the command does (``--help``).
    """

    def __init__(
        self, name: str, schema: type[T], key: str | None = None, split_key: str | None = None, summary: str = ""
    ) -> None:
        self.name, self.schema, self.key, self.split_key, self.summary = name, schema, key, split_key, summary
        root = OmegaConf.create({"paths": OmegaConf.structured(PathsConfig), "run": OmegaConf.structured(RunConfig)})
        node = schema_node(schema)
        if key is None:
            for field_name, value in OmegaConf.to_container(node).items():  # type: ignore[union-attr]
                root[field_name] = value
        else:
            root[key] = node
        ConfigStore.instance().store(name=f"{name}_schema", node=root)

    @property
    def command(self) -> str:
        """The command as typed after ``irl-vla`` (``navsim-export``); also the folder of its runs."""
        return self.name.replace("_", "-")

    def load(self, cfg: DictConfig) -> T:
        """The command's settings from the composed config, validated by the dataclass.

        Raises:
            ValueError: naming the key that is unknown, of a wrong type or invalid.
        """
        if self.key is not None:
            return to_dataclass(OmegaConf.to_container(cfg[self.key], resolve=True), self.schema, where=self.key)
        resolved = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(resolved, dict)
        values = {f.name: resolved[f.name] for f in dataclasses.fields(self.schema)}  # type: ignore[arg-type]
        return to_dataclass(values, self.schema, where=self.name)

    def start(self, cfg: DictConfig, settings: T | None = None) -> Run:
        """Make this run's directory ``<output_root>/<command>[/<split>]/<timestamp>`` holding ``config.yaml``."""
        parent = Path(str(cfg.paths.output_root)) / self.command
        split = getattr(settings, self.split_key, None) if self.split_key else None
        if split:
            parent /= str(split)
        run = Run(create_run_dir(parent))
        with atomic_open(run.dir / CONFIG_FILE) as f:
            f.write(OmegaConf.to_yaml(cfg, resolve=True))
        return run

    # ------------------------------------------------------------------------------------------ --help
    def groups(self) -> dict[str, list[str]]:
        """The config groups the command composes (from its primary config), each with its options."""
        text = (resources.files(CONFIG_PACKAGE) / f"{self.name}.yaml").read_text()
        out: dict[str, list[str]] = {}
        for entry in yaml.safe_load(text).get("defaults", []):
            if not isinstance(entry, dict):
                continue
            for key in entry:
                group = str(key).removeprefix("optional ").split("@")[0]  # optional: e.g. train's recipe
                if not group.startswith(("common", "override", "hydra")):
                    out[group] = group_options(group)
        return out

    def help(self) -> str:
        """``irl-vla <command> --help``: what it does, its config groups and its keys with defaults."""
        lines = [f"usage: irl-vla {self.command} [key=value ...] [group=option ...] [--cfg job]", ""]
        if self.summary:
            lines += [*textwrap.wrap(self.summary, HELP_WIDTH), ""]
        groups = self.groups()
        if groups:
            lines.append("Config groups (group=option):")
            lines += [f"  {g}: {' | '.join(opts) or '(none)'}" for g, opts in groups.items()]
            lines.append("")
        prefix = "" if self.key is None else f"{self.key}."
        lines.append(f"Keys ({prefix}<key>=value; defaults shown):")
        lines += _key_lines(self.schema, prefix)
        lines += ["", "Shared by every command (run.<key>=..., paths.<key>=...):"]
        lines += _key_lines(RunConfig, "run.") + _key_lines(PathsConfig, "paths.")
        lines += ["", f"`irl-vla {self.command} --cfg job` prints the resolved config; --hydra-help hydra's options."]
        return "\n".join(lines)


def group_options(group: str) -> list[str]:
    """The options of a config group: its yaml files and the options registered in the ConfigStore."""
    folder = resources.files(CONFIG_PACKAGE) / group
    names = set()
    if folder.is_dir():
        names = {p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")}
    stored = ConfigStore.instance().repo.get(group, {})
    names |= {n[: -len(".yaml")] for n in stored if isinstance(n, str) and n.endswith(".yaml")}
    return sorted(n for n in names if not n.endswith("_schema"))


def attribute_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` section of a Google-style class docstring: name -> description (one line)."""
    doc = cls.__doc__ or ""
    match = re.search(r"^\s*Attributes:\s*$(.*?)(?=^\s*\w[\w ]*:\s*$|\Z)", doc, re.M | re.S)
    if not match:
        return {}
    out: dict[str, str] = {}
    name = None
    for line in match.group(1).splitlines():
        entry = re.match(r"^\s{4,8}(\w+):\s*(.*)$", line)
        if entry and (name is None or len(line) - len(line.lstrip()) <= _indent(match.group(1))):
            name = entry.group(1)
            out[name] = entry.group(2).strip()
        elif name is not None and line.strip():
            out[name] += " " + line.strip()
    return out


def _indent(block: str) -> int:
    """Indentation of the first non-empty line of ``block``."""
    for line in block.splitlines():
        if line.strip():
            return len(line) - len(line.lstrip())
    return 0


def _key_lines(schema: type, prefix: str) -> list[str]:
    """Per field: ``<prefix><name> = <default>``, then its description (wrapped, indented) where there is one."""
    docs: dict[str, str] = {}
    for cls in reversed(schema.__mro__):  # a subclass's description of a field wins over its base's
        docs.update(attribute_docs(cls))
    defaults = OmegaConf.to_container(OmegaConf.structured(schema))
    assert isinstance(defaults, dict)
    lines = []
    for f in dataclasses.fields(schema):
        lines.append(f"  {prefix}{f.name} = {_short(defaults[f.name])}")
        text = docs.get(f.name, "").replace("``", "`")
        lines += textwrap.wrap(text, HELP_WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return lines


def _short(value: Any) -> str:
    """A default as one short line (long values abbreviated)."""
    if value is None:
        return "null"
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= 60 else f"{text[:57]}..."
