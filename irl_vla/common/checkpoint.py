"""Checkpoints: weights, resolved config, normalisation statistics and artefacts in one directory, no pickle.

Layout of a checkpoint directory::

    checkpoint.json            format, version, step, SHA-256 of every other file
    config.json                the resolved config the model was built from
    weights.safetensors        the model's state dict
    normalization.safetensors  normalisation statistics (name -> tensor), possibly empty
    artefacts/<name>           any other file the model needs (anchors, tokenizer.json, ...)
    resume/                    optional resume state: step, optimiser, scheduler, RNG states
        state.json + state.safetensors

Anything that is not a tensor goes to JSON and every tensor to safetensors (``save_tree``: tuples, non-string
dict keys and numpy arrays keep their types), so loading runs no code from the file. A checkpoint is written into
a temporary sibling directory and renamed into place: readers see the old checkpoint or the new one, never a
half-written one. ``load_checkpoint`` checks every file against its recorded hash and the stored config against
the caller's, naming every key that differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from irl_vla.common.io import DataFormatError

CHECKPOINT_FORMAT = "irl_vla.checkpoint"
CHECKPOINT_VERSION = 1
MANIFEST = "checkpoint.json"
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
NORMALIZATION = "normalization.safetensors"
ARTEFACTS = "artefacts"
RESUME = "resume"
RESUME_STEM = "state"

_TENSOR, _ARRAY, _TUPLE, _ITEMS = "__tensor__", "__ndarray__", "__tuple__", "__items__"


class ConfigMismatchError(ValueError):
    """The checkpoint was made with another config; ``keys`` lists every differing (dotted) key."""

    def __init__(self, path: Path, differences: list[str]) -> None:
        self.keys = [d.split(":", 1)[0] for d in differences]
        listed = "; ".join(differences)
        super().__init__(f"{path}: the config differs from the checkpoint's in {len(differences)} keys: {listed}")


# ---------------------------------------------------------------------------------------------- trees
def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {_TENSOR: key}
    if isinstance(obj, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {_ARRAY: key}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {_ITEMS: [[_encode(k, tensors, where), _encode(v, tensors, f"{where}.{k}")] for k, v in obj.items()]}
    raise TypeError(f"{where}: cannot store a {type(obj).__name__} in a checkpoint (no pickle)")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (tag, value), = obj.items()
        if tag in (_TENSOR, _ARRAY):
            if value not in tensors:
                raise DataFormatError(f"{where}: tensor {value} is missing")
            return tensors[value] if tag == _TENSOR else tensors[value].numpy()
        if tag == _TUPLE:
            return tuple(_decode(v, tensors, where) for v in value)
        if tag == _ITEMS:
            return {_hashable(_decode(k, tensors, where)): _decode(v, tensors, where) for k, v in value}
    return {k: _decode(v, tensors, where) for k, v in obj.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def save_tree(stem: str | os.PathLike[str], tree: Any) -> list[Path]:
    """Write ``tree`` as ``<stem>.json`` plus ``<stem>.safetensors``; returns both paths.

    ``tree`` holds nested dicts (any hashable JSON keys), lists, tuples, scalars, strings, tensors and numpy arrays.

    Raises:
        TypeError: naming the place of a value that is none of those.
    """
    stem = Path(stem)
    tensors: dict[str, torch.Tensor] = {}
    doc = _encode(tree, tensors, stem.name)
    json_path, tensor_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    json_path.write_text(json.dumps(doc, indent=1))
    save_file(tensors, str(tensor_path))
    return [json_path, tensor_path]


def load_tree(stem: str | os.PathLike[str]) -> Any:
    """Read a tree written by ``save_tree``.

    Raises:
        DataFormatError: naming the file when either part is unreadable or they do not match.
    """
    stem = Path(stem)
    json_path, tensor_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    tensors = _load_tensors(tensor_path)
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{json_path}: unreadable ({e})") from None
    return _decode(doc, tensors, str(json_path))


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as e:
        raise DataFormatError(f"{path}: unreadable safetensors file ({e})") from None


# ---------------------------------------------------------------------------------------------- RNG
def capture_rng_state() -> dict[str, Any]:
    """The random states of Python, numpy and torch (CPU and every CUDA device)."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": (version, internal, gauss),
        "numpy": np.random.get_state(),  # noqa: NPY002 - the global state that third-party code draws from
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore states captured by ``capture_rng_state``."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))  # noqa: NPY002 - see capture_rng_state
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------- checkpoints
@dataclass
class ResumeState:
    """What continuing a training run needs beyond the weights.

    Attributes:
        step: optimiser steps taken.
        optimizer: ``optimizer.state_dict()``.
        scheduler: ``scheduler.state_dict()``, if any.
        rng: ``capture_rng_state()``.
        extra: anything else (epoch, best score, ...): JSON values, tensors or arrays.
    """

    step: int
    optimizer: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] | None = None
    rng: dict[str, Any] = field(default_factory=capture_rng_state)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        path: its directory.
        weights: the model's state dict.
        config: the resolved config it was saved with.
        normalization: normalisation statistics by name.
        artefacts: artefact name -> path of the file inside the checkpoint.
        resume: the resume state, if it was saved.
        step: the step recorded in the manifest.
    """

    path: Path
    weights: dict[str, torch.Tensor]
    config: dict[str, Any]
    normalization: dict[str, torch.Tensor] = field(default_factory=dict)
    artefacts: dict[str, Path] = field(default_factory=dict)
    resume: ResumeState | None = None
    step: int = 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    weights: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    normalization: Mapping[str, torch.Tensor] | None = None,
    artefacts: Mapping[str, str | os.PathLike[str] | bytes] | None = None,
    resume: ResumeState | None = None,
    step: int | None = None,
) -> Path:
    """Write a checkpoint directory atomically (temporary sibling directory, then rename).

    Args:
        path: the checkpoint directory (replaced if it exists).
        weights: the model's state dict.
        config: the resolved config (JSON values only).
        normalization: normalisation statistics by name.
        artefacts: file name -> source file path or bytes (anchors, ``tokenizer.json``, ...).
        resume: optimiser, scheduler and RNG states to continue training.
        step: the step recorded in the manifest (default: ``resume.step`` or 0).

    Returns:
        The checkpoint directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        (tmp / CONFIG).write_text(json.dumps(dict(config), indent=1, sort_keys=True, allow_nan=False))
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in weights.items()}, str(tmp / WEIGHTS))
        norm = {k: v.detach().cpu().contiguous().clone() for k, v in (normalization or {}).items()}
        save_file(norm, str(tmp / NORMALIZATION))
        for name, content in (artefacts or {}).items():
            if Path(name).name != name or name.startswith("."):
                raise ValueError(f"save_checkpoint: artefact name {name!r} must be a plain file name")
            (tmp / ARTEFACTS).mkdir(exist_ok=True)
            if isinstance(content, bytes):
                (tmp / ARTEFACTS / name).write_bytes(content)
            else:
                shutil.copyfile(content, tmp / ARTEFACTS / name)
        if resume is not None:
            (tmp / RESUME).mkdir()
            tree = {
                "step": resume.step,
                "optimizer": resume.optimizer,
                "scheduler": resume.scheduler,
                "rng": resume.rng,
                "extra": resume.extra,
            }
            save_tree(tmp / RESUME / RESUME_STEM, tree)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "step": int(step if step is not None else (resume.step if resume is not None else 0)),
            "files": {p.relative_to(tmp).as_posix(): _sha256(p) for p in files},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _fsync_tree(tmp)
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """Every dotted key whose value differs between two configs, as ``"key: checkpoint X, config Y"``.

    Args:
        saved: the checkpoint's config.
        current: the caller's config.
        ignore: dotted keys (or prefixes ending in ``.``) that may differ (output paths, workers, ...).
    """
    ignored = tuple(ignore)
    a, b = _flatten(saved), _flatten(json.loads(json.dumps(dict(current))))  # tuples -> lists, as stored
    out = []
    for key in sorted(set(a) | set(b)):
        if any(key == i or (i.endswith(".") and key.startswith(i)) for i in ignored):
            continue
        if key not in b:
            out.append(f"{key}: checkpoint {a[key]!r}, not in the config")
        elif key not in a:
            out.append(f"{key}: not in the checkpoint, config {b[key]!r}")
        elif a[key] != b[key]:
            out.append(f"{key}: checkpoint {a[key]!r}, config {b[key]!r}")
    return out


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    config: Mapping[str, Any] | None = None,
    ignore: Iterable[str] = (),
    verify: bool = True,
) -> Checkpoint:
    """Read a checkpoint directory.

    Args:
        path: the directory.
        config: the config the caller builds the model with; refused if it differs from the stored one.
        ignore: dotted keys (or ``prefix.``) allowed to differ.
        verify: check every file against the SHA-256 recorded in the manifest.

    Raises:
        FileNotFoundError: naming the directory or a missing file.
        DataFormatError: naming the file that is corrupt or of another format.
        ConfigMismatchError: naming every key that differs from ``config``.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{path}: not a checkpoint directory (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{manifest_path}: unreadable ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != CHECKPOINT_FORMAT:
        raise DataFormatError(f"{manifest_path}: not an {CHECKPOINT_FORMAT} manifest")
    if manifest.get("version") != CHECKPOINT_VERSION:
        raise DataFormatError(
            f"{manifest_path}: checkpoint version {manifest.get('version')}, expected {CHECKPOINT_VERSION}"
        )
    files: dict[str, str] = manifest.get("files", {})
    for name in (CONFIG, WEIGHTS, NORMALIZATION):
        if name not in files:
            raise DataFormatError(f"{manifest_path}: lists no {name}")
    for name, digest in files.items():
        file = path / name
        if not file.is_file():
            raise FileNotFoundError(f"{file}: listed in {manifest_path} but missing")
        if verify and _sha256(file) != digest:
            raise DataFormatError(f"{file}: SHA-256 differs from {manifest_path} (damaged or edited)")
    try:
        saved_config = json.loads((path / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{path / CONFIG}: unreadable ({e})") from None
    if config is not None:
        differences = config_differences(saved_config, config, ignore)
        if differences:
            raise ConfigMismatchError(path, differences)
    resume = None
    if (path / RESUME / f"{RESUME_STEM}.json").is_file():
        tree = load_tree(path / RESUME / RESUME_STEM)
        resume = ResumeState(tree["step"], tree["optimizer"], tree["scheduler"], tree["rng"], tree["extra"])
    artefacts = {p.name: p for p in sorted((path / ARTEFACTS).glob("*"))} if (path / ARTEFACTS).is_dir() else {}
    return Checkpoint(
        path=path,
        weights=_load_tensors(path / WEIGHTS),
        config=saved_config,
        normalization=_load_tensors(path / NORMALIZATION),
        artefacts=artefacts,
        resume=resume,
        step=int(manifest.get("step", 0)),
    )
