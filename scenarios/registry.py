"""Scenario families (yaml under ``scenarios/families``) and seeded sampling of their parameters.

A family file has ``name``, ``hard`` (belongs to the hard split) and three parameter groups, ``road``,
``ego`` and ``traffic``, plus an optional ``background`` group (the life around the scenario: parked cars,
flows, people on the pavements; defaults apply to what it leaves out). A parameter is a constant, a range
``[lo, hi]`` (integers: inclusive random integer; floats: uniform), or a list of choices (strings, booleans,
or more than two numbers). The background is drawn from its own random stream, so tuning it never changes
the scenario itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from irl_vla.common.io import DataFormatError

FAMILIES_DIR = Path(__file__).resolve().parent / "families"
GROUPS = ("road", "ego", "traffic")
OPTIONAL_GROUPS = ("background",)


@dataclass(frozen=True)
class ScenarioFamily:
    """One scenario family: parameter ranges by group, and whether it belongs to the hard split."""

    name: str
    hard: bool
    road: dict[str, Any]
    ego: dict[str, Any]
    traffic: dict[str, Any]
    source: str = ""
    background: dict[str, Any] = field(default_factory=dict)

    def sample(self, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
        """Draw one parameter set: ``{"road": {...}, "ego": {...}, "traffic": {...}}``."""
        return {group: {k: sample_value(v, rng) for k, v in getattr(self, group).items()} for group in GROUPS}

    def sample_background(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw the ``background`` group's values (keys it does not set are left to the builder's defaults)."""
        return {k: sample_value(v, rng) for k, v in self.background.items()}


def sample_value(spec: Any, rng: np.random.Generator) -> Any:
    """Draw one value from a parameter spec (constant, ``[lo, hi]`` range or list of choices)."""
    if not isinstance(spec, list):
        return spec
    if not spec:
        raise ValueError("empty parameter list")
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in spec)
    if numeric and len(spec) == 2:
        lo, hi = spec
        if hi < lo:
            raise ValueError(f"range [{lo}, {hi}] has hi < lo")
        if isinstance(lo, int) and isinstance(hi, int):
            return int(rng.integers(lo, hi + 1))
        return float(rng.uniform(lo, hi))
    return spec[int(rng.integers(len(spec)))]


def load_family(path: str | Path) -> ScenarioFamily:
    """Read and check one family file.

    Raises:
        DataFormatError: naming the file and the key on any malformed content.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise DataFormatError(f"{path}: not valid yaml ({e})") from e
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a mapping")
    unknown = sorted(set(data) - {"name", "hard", *GROUPS, *OPTIONAL_GROUPS})
    if unknown:
        raise DataFormatError(f"{path}: unknown keys {unknown}")
    for key in ("name", "hard", *GROUPS):
        if key not in data:
            raise DataFormatError(f"{path}: missing key {key!r}")
    data.setdefault("background", {})
    for group in (*GROUPS, *OPTIONAL_GROUPS):
        if not isinstance(data[group], dict):
            raise DataFormatError(f"{path}: {group!r} must be a mapping")
        for k, v in data[group].items():
            try:
                sample_value(v, np.random.default_rng(0))
            except ValueError as e:
                raise DataFormatError(f"{path}: {group}.{k}: {e}") from None
    family = ScenarioFamily(
        str(data["name"]),
        bool(data["hard"]),
        data["road"],
        data["ego"],
        data["traffic"],
        source=str(path),
        background=data["background"],
    )
    if family.road.get("type") not in ("corridor", "intersection"):
        raise DataFormatError(
            f"{path}: road.type must be 'corridor' or 'intersection', got {family.road.get('type')!r}"
        )
    return family


def load_families(directory: str | Path = FAMILIES_DIR) -> dict[str, ScenarioFamily]:
    """All families of a directory, by name (sorted)."""
    families = [load_family(p) for p in sorted(Path(directory).glob("*.yaml"))]
    names = [f.name for f in families]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataFormatError(f"{directory}: duplicate family names {dupes}")
    return {f.name: f for f in sorted(families, key=lambda f: f.name)}
