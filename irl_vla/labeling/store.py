"""The label store: simulator-scored candidate trajectories per scene, in sharded ``.npz`` files (no pickle).

Layout of a label directory::

    manifest.json        format, version, the labelling settings, per shard its SHA-256 and scene tokens
    manifest.journal     one JSON line per shard written since the manifest was last rewritten (a killed run)
    vocabulary.npy       the trajectory vocabulary the candidates were drawn from (V, T, 3)
    shard_<NNNNN>.npz    one shard: the arrays of ``LabelShard`` for a run of consecutive scenes

Every shard holds, for its N scenes and K candidates of T poses (``LabelKey`` names the arrays):

- ``tokens`` (N,): scene tokens (fixed-width unicode, never objects);
- ``candidates`` (N, K, T, 3): relative plans by ``SE2Index`` [m, m, rad] in the scene's rear-axle frame;
- ``sub_scores`` (N, K, S): the simulator's sub-scores by ``SubScore`` after the human filter, NaN where a
  sub-score is undefined (EC without a previous frame);
- ``epdms`` (N, K): their aggregation (EPDMS);
- ``sources`` (N, K): ``CandidateSource`` of every candidate.

``read_label_shards`` checks every shard against the manifest's SHA-256 and its own arrays against the shapes
above; a shard that does not match is refused with ``CorruptLabelError`` naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np

from irl_vla.common.io import DataFormatError, file_sha256, read_json, replacing, write_json
from irl_vla.data.enums import SE2Index
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES

LABEL_FORMAT = "irl_vla.labels"
LABEL_VERSION = 1
MANIFEST = "manifest.json"
JOURNAL = "manifest.journal"
VOCABULARY = "vocabulary.npy"
SHARD_PREFIX = "shard_"
SHARD_SUFFIX = ".npz"


class CandidateSource(IntEnum):
    """Where a candidate trajectory came from (the ``sources`` array)."""

    EXPERT = 0  # the logged human trajectory
    VOCABULARY = 1  # an entry of the K-means trajectory vocabulary
    POLICY_SAMPLE = 2  # a mode of the stage-1 policy (stochastic denoising)
    PERTURBATION = 3  # the expert's trajectory perturbed (speed scale, lateral offset, heading)


class LabelKey:
    """Array names inside a shard."""

    TOKENS = "tokens"
    CANDIDATES = "candidates"
    SUB_SCORES = "sub_scores"
    EPDMS = "epdms"
    SOURCES = "sources"


class CorruptLabelError(DataFormatError):
    """A label shard or manifest that cannot be trusted (unreadable, changed since written, wrong shapes)."""


@dataclass
class LabelShard:
    """Labelled candidates of N scenes (see the module docstring for shapes and meanings)."""

    tokens: np.ndarray  # (N,) str
    candidates: np.ndarray  # (N, K, T, 3) float32
    sub_scores: np.ndarray  # (N, K, S) float32
    epdms: np.ndarray  # (N, K) float32
    sources: np.ndarray  # (N, K) int8

    def __post_init__(self) -> None:
        self.tokens = np.asarray(self.tokens, dtype=str)
        self.candidates = np.asarray(self.candidates, dtype=np.float32)
        self.sub_scores = np.asarray(self.sub_scores, dtype=np.float32)
        self.epdms = np.asarray(self.epdms, dtype=np.float32)
        self.sources = np.asarray(self.sources, dtype=np.int8)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def num_candidates(self) -> int:
        """K."""
        return int(self.candidates.shape[1])

    def check(self, where: str) -> LabelShard:
        """Validate shapes, dtypes and values; returns self.

        Raises:
            CorruptLabelError: naming ``where`` and the array at fault.
        """
        n = len(self.tokens)
        if self.tokens.ndim != 1:
            raise CorruptLabelError(f"{where}: tokens: expected (N,), got {self.tokens.shape}")
        c = self.candidates
        if c.ndim != 4 or c.shape[0] != n or c.shape[-1] != len(SE2Index):
            raise CorruptLabelError(f"{where}: candidates: expected (N={n}, K, T, 3), got {c.shape}")
        k = c.shape[1]
        expected = {
            LabelKey.SUB_SCORES: (self.sub_scores, (n, k, NUM_SUB_SCORES)),
            LabelKey.EPDMS: (self.epdms, (n, k)),
            LabelKey.SOURCES: (self.sources, (n, k)),
        }
        for name, (array, shape) in expected.items():
            if array.shape != shape:
                raise CorruptLabelError(f"{where}: {name}: expected shape {shape}, got {array.shape}")
        if not np.isfinite(c).all():
            raise CorruptLabelError(f"{where}: candidates hold non-finite poses")
        if not np.isfinite(self.epdms).all():
            raise CorruptLabelError(f"{where}: epdms holds non-finite values")
        defined = self.sub_scores[np.isfinite(self.sub_scores)]
        if defined.size and (defined.min() < 0 or defined.max() > 1):
            raise CorruptLabelError(f"{where}: sub_scores outside [0, 1]")
        known = {int(s) for s in CandidateSource}
        bad = sorted(set(np.unique(self.sources).tolist()) - known)
        if bad:
            raise CorruptLabelError(f"{where}: sources holds unknown CandidateSource values {bad}")
        if len(set(self.tokens.tolist())) != n:
            raise CorruptLabelError(f"{where}: a scene token appears twice")
        return self

    @staticmethod
    def concatenate(shards: Sequence[LabelShard]) -> LabelShard:
        """One shard of all ``shards``' scenes, in order (they must share K and T)."""
        if not shards:
            raise ValueError("LabelShard.concatenate: no shards")
        return LabelShard(
            np.concatenate([s.tokens for s in shards]),
            np.concatenate([s.candidates for s in shards]),
            np.concatenate([s.sub_scores for s in shards]),
            np.concatenate([s.epdms for s in shards]),
            np.concatenate([s.sources for s in shards]),
        )

    def select(self, index: np.ndarray | Sequence[int]) -> LabelShard:
        """The scenes at ``index`` (in that order)."""
        idx = np.asarray(index, dtype=np.int64)
        return LabelShard(
            self.tokens[idx], self.candidates[idx], self.sub_scores[idx], self.epdms[idx], self.sources[idx]
        )


def shard_name(index: int) -> str:
    """File name of the ``index``-th shard."""
    return f"{SHARD_PREFIX}{index:05d}{SHARD_SUFFIX}"


def write_shard(path: str | os.PathLike[str], shard: LabelShard) -> str:
    """Write a shard atomically (validated first); returns the SHA-256 of the file."""
    shard.check(str(path))
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            **{
                LabelKey.TOKENS: shard.tokens,
                LabelKey.CANDIDATES: shard.candidates,
                LabelKey.SUB_SCORES: shard.sub_scores,
                LabelKey.EPDMS: shard.epdms,
                LabelKey.SOURCES: shard.sources,
            },
        )
        f.flush()
        os.fsync(f.fileno())
    return file_sha256(path)


def read_shard(path: str | os.PathLike[str], sha256: str | None = None) -> LabelShard:
    """Read and validate one shard (against ``sha256`` when given).

    Raises:
        CorruptLabelError: naming the file when it is missing, changed, unreadable or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptLabelError(f"{path}: label shard missing")
    if sha256 is not None and file_sha256(path) != sha256:
        raise CorruptLabelError(f"{path}: label shard changed since it was written (SHA-256 mismatch)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _keys() if k not in data.files]
            if missing:
                raise CorruptLabelError(f"{path}: label shard lacks arrays {missing}")
            arrays = {k: data[k] for k in _keys()}
    except CorruptLabelError:
        raise
    except Exception as e:  # zip, npy header or pickle-refusal errors: the file is not a shard we wrote
        raise CorruptLabelError(f"{path}: unreadable label shard ({type(e).__name__}: {e})") from None
    if arrays[LabelKey.TOKENS].dtype.kind != "U":
        raise CorruptLabelError(f"{path}: tokens: expected strings, got dtype {arrays[LabelKey.TOKENS].dtype}")
    return LabelShard(**arrays).check(str(path))


def _keys() -> list[str]:
    return [LabelKey.TOKENS, LabelKey.CANDIDATES, LabelKey.SUB_SCORES, LabelKey.EPDMS, LabelKey.SOURCES]


# ---------------------------------------------------------------------------------------------- the directory
@dataclass
class ShardRecord:
    """A written shard: its file name, SHA-256 and scene tokens."""

    name: str
    sha256: str
    tokens: list[str]


class LabelStore:
    """A label directory being written: the manifest, the journal of finished shards, the vocabulary.

    Args:
        root: the directory.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        """``manifest.json``."""
        return self.root / MANIFEST

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest (``None`` when there is none yet).

        Raises:
            CorruptLabelError: naming the file when it is unreadable or of another format.
        """
        if not self.manifest_path.is_file():
            return None
        try:
            doc = read_json(self.manifest_path)
        except DataFormatError as e:
            raise CorruptLabelError(str(e)) from None
        if not isinstance(doc, dict) or doc.get("format") != LABEL_FORMAT:
            raise CorruptLabelError(f"{self.manifest_path}: not a label manifest (format {LABEL_FORMAT})")
        if doc.get("version") != LABEL_VERSION:
            raise CorruptLabelError(
                f"{self.manifest_path}: label format version {doc.get('version')}, this code reads {LABEL_VERSION}"
            )
        return doc

    def finished(self) -> dict[str, ShardRecord]:
        """Shards recorded as written: the manifest's and the journal's (a torn last journal line is ignored)."""
        out: dict[str, ShardRecord] = {}
        doc = self.read_manifest()
        for name, item in (doc or {}).get("shards", {}).items():
            out[name] = ShardRecord(name, item["sha256"], list(item["tokens"]))
        journal = self.root / JOURNAL
        if journal.is_file():
            for line in journal.read_text().splitlines():
                with suppress(json.JSONDecodeError, KeyError, TypeError):
                    item = json.loads(line)
                    out[item["name"]] = ShardRecord(item["name"], item["sha256"], list(item["tokens"]))
        return out

    def record(self, rec: ShardRecord) -> None:
        """Append a finished shard to the journal (flushed, so it survives a kill)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / JOURNAL).open("a") as f:
            f.write(json.dumps({"name": rec.name, "sha256": rec.sha256, "tokens": rec.tokens}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def write_manifest(self, settings: dict[str, Any], shards: Iterable[ShardRecord], *, complete: bool) -> None:
        """Rewrite the manifest with ``shards`` (and drop the journal)."""
        ordered = sorted(shards, key=lambda r: r.name)
        write_json(
            self.manifest_path,
            {
                "format": LABEL_FORMAT,
                "version": LABEL_VERSION,
                "complete": complete,
                "settings": settings,
                "num_scenes": sum(len(r.tokens) for r in ordered),
                "shards": {r.name: {"sha256": r.sha256, "tokens": r.tokens} for r in ordered},
            },
        )
        (self.root / JOURNAL).unlink(missing_ok=True)

    def write_vocabulary(self, vocabulary: np.ndarray) -> None:
        """Save the vocabulary ``(V, T, 3)`` atomically."""
        with replacing(self.root / VOCABULARY) as tmp, open(tmp, "wb") as f:
            np.save(f, np.asarray(vocabulary, dtype=np.float32), allow_pickle=False)

    def read_vocabulary(self, name: str = VOCABULARY) -> np.ndarray | None:
        """The saved vocabulary ``(V, T, 3)`` (file ``name`` of the directory), or ``None``.

        Raises:
            CorruptLabelError: naming the file when it is unreadable.
        """
        path = self.root / name
        if not path.is_file():
            return None
        try:
            vocab = np.load(path, allow_pickle=False)
        except Exception as e:
            raise CorruptLabelError(f"{path}: unreadable vocabulary ({type(e).__name__}: {e})") from None
        if vocab.ndim != 3 or vocab.shape[-1] != len(SE2Index):
            raise CorruptLabelError(f"{path}: expected a vocabulary (V, T, 3), got {vocab.shape}")
        return vocab


def read_label_shards(root: str | os.PathLike[str], *, require_complete: bool = True) -> LabelShard:
    """Every labelled scene of a label directory, in shard order, each shard checked against the manifest.

    Args:
        root: the label directory (``irl-vla label`` output).
        require_complete: refuse a directory whose labelling run has not finished.

    Raises:
        FileNotFoundError: when there is no manifest.
        CorruptLabelError: naming the shard (or manifest) that is missing, changed, unreadable or malformed, or a
            scene token that two shards both hold.
    """
    store = LabelStore(root)
    doc = store.read_manifest()
    if doc is None:
        raise FileNotFoundError(f"{store.manifest_path}: no label manifest (run irl-vla label first)")
    if require_complete and not doc.get("complete", False):
        raise CorruptLabelError(f"{store.manifest_path}: the labelling run is unfinished (run irl-vla label again)")
    shards = []
    seen: dict[str, str] = {}
    for name, item in sorted(doc.get("shards", {}).items()):
        shard = read_shard(store.root / name, item.get("sha256"))
        if shard.tokens.tolist() != list(item.get("tokens", [])):
            raise CorruptLabelError(f"{store.root / name}: holds other scenes than the manifest lists")
        for token in shard.tokens.tolist():
            if token in seen:
                raise CorruptLabelError(f"{store.root / name}: scene {token} also in {seen[token]}")
            seen[token] = name
        shards.append(shard)
    if not shards:
        raise CorruptLabelError(f"{store.manifest_path}: no shards")
    ks = {s.candidates.shape[1:] for s in shards}
    if len(ks) > 1:
        raise CorruptLabelError(f"{store.root}: shards differ in candidate shapes {sorted(ks)}")
    return LabelShard.concatenate(shards)
