"""Done-markers: a step is finished when its marker holds its current config hash and its inputs' hashes.

A step's marker ``<steps_dir>/<name>.done.json`` records the hash of the step's command line, the hash of each
step it depends on (their markers' ``hash``) and its own ``hash`` (of both). A changed command line or a re-run
input changes the hash, so the step and every step after it re-run; a killed step has no done-marker and resumes
(its ``.started.json`` says with which settings it started, so that a restart with other settings first clears
what the killed run left).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irl_vla.common.io import read_json, write_json
from irl_vla.pipeline.steps import Step

#: Version of the marker format (a marker of another version is not trusted).
MARKER_VERSION = 1


def _sha(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def config_hash(step: Step, settings: str = "") -> str:
    """Hash of what the step runs: its command, its overrides and its composed settings.

    Args:
        step: the step.
        settings: the step's configuration as its command composes it (the config files' values with the overrides
            applied; ``""`` when not known), so that an edited config file re-runs the steps that read it.
    """
    return _sha({"command": step.command, "args": list(step.args), "settings": settings})


@dataclass(frozen=True)
class Identity:
    """What a step's outputs were made from: its config hash and its inputs' hashes."""

    config: str
    inputs: dict[str, str]

    @property
    def hash(self) -> str:
        """The step's own hash (its dependents' input hash)."""
        return _sha({"config": self.config, "inputs": self.inputs})

    def to_json(self) -> dict[str, Any]:
        """The marker's identity fields."""
        return {"version": MARKER_VERSION, "config": self.config, "inputs": self.inputs, "hash": self.hash}

    def matches(self, marker: dict[str, Any]) -> bool:
        """Whether a marker records this identity."""
        return marker.get("version") == MARKER_VERSION and marker.get("hash") == self.hash


class Markers:
    """The done- and started-markers of one pipeline's steps."""

    def __init__(self, steps_dir: Path) -> None:
        self.dir = steps_dir

    def done_path(self, name: str) -> Path:
        """The done-marker of step ``name``."""
        return self.dir / f"{name}.done.json"

    def started_path(self, name: str) -> Path:
        """The started-marker of step ``name`` (removed when it finishes)."""
        return self.dir / f"{name}.started.json"

    def read(self, path: Path) -> dict[str, Any] | None:
        """A marker's content; ``None`` when absent.

        Raises:
            ValueError: naming the file when it is not a JSON object.
        """
        if not path.exists():
            return None
        data = read_json(path)  # DataFormatError (a ValueError) names the file when it is not JSON
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a pipeline marker (a JSON object expected); delete it to re-run its step")
        return data

    def done_hash(self, name: str) -> str | None:
        """The recorded hash of finished step ``name``; ``None`` when it has no done-marker."""
        marker = self.read(self.done_path(name))
        return None if marker is None else str(marker.get("hash"))

    def start(self, name: str, identity: Identity) -> None:
        """Record that step ``name`` starts with ``identity`` (its done-marker, if any, removed first)."""
        self.done_path(name).unlink(missing_ok=True)
        write_json(self.started_path(name), identity.to_json())

    def finish(self, name: str, identity: Identity, wall_s: float, outputs: list[str]) -> None:
        """Write step ``name``'s done-marker and drop its started-marker."""
        write_json(self.done_path(name), {**identity.to_json(), "step": name, "wall_s": wall_s, "outputs": outputs})
        self.started_path(name).unlink(missing_ok=True)
