"""The feature cache: each builder's tensors of each scene as one safetensors file, versioned and checked.

Layout: ``<cache_dir>/<token[:2]>/<token>/<builder>-<fingerprint[:12]>.safetensors``: the builder's fingerprint
(name, version, parameters) is in the file name, so builders of one name with other parameters (a model reading
the LiDAR on another grid) keep entries side by side in one cache and never overwrite each other's. Each file's
header records the format, the builder's full fingerprint, the scene token, the fingerprint of the log the scene
came from and a CRC-32 of the tensors' bytes. On reading, an entry of another log hash or cache format is *stale*
(it is rebuilt); a file that cannot be parsed, fails its CRC, names another token or holds tensors off the builder's
specs is *corrupt* and ``CorruptCacheError`` names it. Entries are written atomically (temp file + rename), so a
killed build leaves only whole files and resumes where it stopped. No pickle anywhere.
"""

from __future__ import annotations

import os
import zlib
from enum import Enum
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from irl_vla.common.io import DataFormatError, replacing
from irl_vla.data.features.builder import Builder

CACHE_FORMAT = "irl_vla.feature_cache"
CACHE_FORMAT_VERSION = 2  # 2: the fingerprint in the file name
SUFFIX = ".safetensors"
FINGERPRINT_CHARS = 12  # hex digits of the builder's fingerprint in an entry's file name


class CorruptCacheError(DataFormatError):
    """A feature-cache file cannot be trusted; the message names the file, the token and the builder."""


class EntryState(str, Enum):
    """What ``FeatureCache.read`` found."""

    VALID = "valid"
    MISSING = "missing"
    STALE = "stale"


def _crc(tensors: dict[str, torch.Tensor]) -> str:
    crc = 0
    for key in sorted(tensors):
        crc = zlib.crc32(key.encode(), crc)
        crc = zlib.crc32(tensors[key].contiguous().numpy().tobytes(), crc)
    return f"{crc:08x}"


class FeatureCache:
    """Cached builder outputs under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, token: str, builder: str, fingerprint: str) -> Path:
        """File of the tensors of scene ``token`` built by ``builder`` with the settings of ``fingerprint``."""
        return self.root / token[:2] / token / f"{builder}-{fingerprint[:FINGERPRINT_CHARS]}{SUFFIX}"

    def write(
        self,
        token: str,
        builder: Builder,
        tensors: dict[str, torch.Tensor],
        log_hash: str,
        fingerprint: str | None = None,
    ) -> Path:
        """Write one entry atomically (``fingerprint``: the builder's, if already computed); returns its path."""
        fingerprint = fingerprint or builder.fingerprint()
        path = self.path(token, builder.name, fingerprint)
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        metadata = {
            "format": CACHE_FORMAT,
            "format_version": str(CACHE_FORMAT_VERSION),
            "builder": builder.name,
            "fingerprint": fingerprint,
            "token": token,
            "log_hash": log_hash,
            "crc32": _crc(tensors),
        }
        with replacing(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path

    def read(
        self, token: str, builder: Builder, log_hash: str, fingerprint: str | None = None
    ) -> tuple[EntryState, dict[str, torch.Tensor] | None]:
        """The entry of ``builder`` for ``token`` if it is valid for this builder and log.

        Args:
            token: the scene token.
            builder: whose tensors.
            log_hash: fingerprint of the scene's log now.
            fingerprint: the builder's fingerprint, if already computed.

        Returns:
            ``(VALID, tensors)``, ``(MISSING, None)`` (no entry of this builder version and parameters) or
            ``(STALE, None)`` (another log content, or an older cache format).

        Raises:
            CorruptCacheError: naming the file when it cannot be read or does not hold what its header says.
        """
        expected = fingerprint or builder.fingerprint()
        path = self.path(token, builder.name, expected)
        if not path.is_file():
            return EntryState.MISSING, None
        where = f"{path} (token {token}, builder {builder.name})"
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != CACHE_FORMAT:
                    raise CorruptCacheError(f"{where}: not an {CACHE_FORMAT} file")
                if meta.get("format_version") != str(CACHE_FORMAT_VERSION):
                    return EntryState.STALE, None
                if meta.get("token") != token or meta.get("builder") != builder.name:
                    raise CorruptCacheError(
                        f"{where}: holds token {meta.get('token')} of builder {meta.get('builder')}"
                    )
                if meta.get("fingerprint") != expected:
                    raise CorruptCacheError(
                        f"{where}: holds builder settings {meta.get('fingerprint')}, not {expected}"
                    )
                if meta.get("log_hash") != log_hash:
                    return EntryState.STALE, None
                tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open has no iterator
        except SafetensorError as e:
            raise CorruptCacheError(f"{where}: unreadable ({e}); delete it or rebuild with irl-vla cache") from None
        if _crc(tensors) != meta.get("crc32"):
            raise CorruptCacheError(f"{where}: CRC mismatch (the file was damaged); delete it or rebuild it")
        try:
            builder.check(tensors, where)
        except ValueError as e:
            raise CorruptCacheError(str(e)) from None
        return EntryState.VALID, tensors
