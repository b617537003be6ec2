"""Two-stage splits: real scenes mapped to their stage-2 scenes (NAVSIM v2, ``reference/navsim.md`` §1.10).

A split ``<split>`` (stage 1) is paired with ``<split>_two_stage``: a split of its own (manifest and logs) of
stage-2 scenes plus ``two_stage.json``::

    {"format": "irl_vla.two_stage", "version": 1, "source_split": ...,
     "groups": [{"orig": <token>, "prev": <token>, "pairs": [[<now token>, <prev token>], ...], ...}, ...]}

``orig`` is a real scene, ``prev`` the real scene 0.5 s before it; each pair is a stage-2 scene started near the
expert's 4 s endpoint and its variant 0.5 s earlier. Extra keys of a group are provenance and are ignored here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from irl_vla.common.io import DataFormatError, read_json

TWO_STAGE_SUFFIX = "_two_stage"
TWO_STAGE_FILE = "two_stage.json"
TWO_STAGE_FORMAT = "irl_vla.two_stage"
TWO_STAGE_VERSION = 1


@dataclass
class Group:
    """A two-stage group: a real scene, its predecessor, and stage-2 (now, previous) token pairs."""

    orig: str
    prev: str
    pairs: list[tuple[str, str]]


def two_stage_dir(split_dir: str | os.PathLike[str]) -> Path:
    """Where the stage-2 scenes of the split in ``split_dir`` live."""
    split_dir = Path(split_dir)
    return split_dir.parent / f"{split_dir.name}{TWO_STAGE_SUFFIX}"


def read_groups(path: str | os.PathLike[str]) -> list[Group]:
    """Groups of a two-stage mapping file.

    Raises:
        FileNotFoundError: when the file is missing.
        DataFormatError: naming the file and the group when it is malformed or of another version.
    """
    doc = read_json(path)
    if not isinstance(doc, dict) or doc.get("format") != TWO_STAGE_FORMAT:
        raise DataFormatError(f"{path}: not an {TWO_STAGE_FORMAT} mapping")
    if doc.get("version") != TWO_STAGE_VERSION:
        raise DataFormatError(f"{path}: {TWO_STAGE_FORMAT} version {doc.get('version')}, expected {TWO_STAGE_VERSION}")
    groups = []
    for i, g in enumerate(doc.get("groups", [])):
        try:
            pairs = [(str(now), str(prev)) for now, prev in g["pairs"]]
            groups.append(Group(str(g["orig"]), str(g["prev"]), pairs))
        except (KeyError, TypeError, ValueError) as e:
            raise DataFormatError(f"{path}: bad groups[{i}] ({type(e).__name__}: {e})") from None
        if not pairs:
            raise DataFormatError(f"{path}: groups[{i}] (scene {g['orig']}) has no stage-2 pairs")
    return groups
