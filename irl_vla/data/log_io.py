"""Log records: a logged drive (frames and its map) as one gzip-compressed JSON file, ``*.log.json.gz``.

Format ``irl_vla.log`` (version ``LOG_FORMAT_VERSION``)::

    {"format": "irl_vla.log", "version": 2, "log_name": ..., "map": <irl_vla.map dict>,
     "frames": [<frame>, ...], "scenes": [{"token": ..., "start": <frame index>}, ...], "meta": {...}}

Floats are written with Python's shortest round-trip repr, so reading gives bit-identical arrays; the gzip
header carries no timestamp, so the same log always gives the same bytes. Sensors are not stored (they are
rendered at load time). Any malformed content raises ``DataFormatError`` naming the file and the field.
Version 2 splits a frame's language into ``instruction`` (navigation only, an agent input) and
``scene_description`` (a target); a version-1 log mixes them and is refused with a message to regenerate it.

A split's manifest records each log's SHA-256; ``read_log(path, sha256=...)`` and ``verify_log`` refuse a file
whose bytes differ (``LogChangedError``, naming the file), so a log edited in place is never trusted. Hashing costs
about 0.2 % of decoding a log; ``verify_log`` remembers each file's hash for the process (``file_sha256``).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from irl_vla.common.io import DataFormatError, atomic_open, file_sha256
from irl_vla.data.enums import MetaAction
from irl_vla.data.map import Map
from irl_vla.data.map.map_io import map_from_dict, map_to_dict
from irl_vla.data.scene import Annotations, EgoStatus, Frame, Scene, SceneMetadata

LOG_FORMAT = "irl_vla.log"
LOG_FORMAT_VERSION = 2
LOG_SUFFIX = ".log.json.gz"
#: How to repair a log that no longer matches its manifest (shown in ``LogChangedError``).
REGENERATE_HINT = "re-run `irl-vla generate` with the same settings to regenerate it"


class LogChangedError(DataFormatError):
    """A log file's SHA-256 differs from the one its split's manifest recorded (edited or replaced since)."""


def _check_sha256(path: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise LogChangedError(
            f"{path}: SHA-256 {actual[:16]}... differs from {expected[:16]}... in the split's manifest (the log was "
            f"edited or replaced after generation; caches built from it are stale): {REGENERATE_HINT}"
        )


def verify_log(path: str | os.PathLike[str], sha256: str) -> None:
    """Check that the log file at ``path`` still has the SHA-256 its manifest recorded.

    Raises:
        FileNotFoundError: naming the file when it is missing.
        LogChangedError: naming the file when its bytes changed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"log record {path} does not exist (regenerate the split or fix the manifest)")
    _check_sha256(path, file_sha256(path), sha256)


@dataclass
class LogRecord:
    """One log: its frames, map, the scenes cut from it (current-frame token and window start) and metadata.

    Attributes:
        log_name: unique log name.
        map: the map the log was driven on.
        frames: every logged frame (2 Hz), without sensors.
        scenes: ``(scene_token, start_frame_index)`` of each scene window.
        num_history_frames: history frames per scene window (current included).
        num_future_frames: future frames per scene window.
        meta: free-form provenance (family, seed, parameters, audit).
    """

    log_name: str
    map: Map
    frames: list[Frame]
    scenes: list[tuple[str, int]]
    num_history_frames: int = 4
    num_future_frames: int = 10
    meta: dict[str, Any] = field(default_factory=dict)

    def scene(self, token: str) -> Scene:
        """The scene with current-frame ``token``."""
        for tok, start in self.scenes:
            if tok == token:
                return self.scene_at(start)
        raise KeyError(f"log {self.log_name}: no scene {token!r}")

    def scene_at(self, start: int) -> Scene:
        """The scene window starting at frame ``start`` (listed as a scene or not).

        Raises:
            KeyError: naming the log if the window does not fit in it.
        """
        length = self.num_history_frames + self.num_future_frames
        if not 0 <= start <= len(self.frames) - length:
            raise KeyError(f"log {self.log_name}: no {length}-frame window starts at frame {start}")
        # the scene's own frame objects: sensors attached to a scene never reach the log's frames
        window = [dataclasses.replace(f) for f in self.frames[start : start + length]]
        tok = window[self.num_history_frames - 1].token
        meta = SceneMetadata(
            log_name=self.log_name,
            scene_token=tok,
            map_name=self.map.name,
            initial_token=tok,
            num_history_frames=self.num_history_frames,
            num_future_frames=self.num_future_frames,
            corresponding_original_scene=self.meta.get("corresponding_original_scene"),
            corresponding_original_initial_token=self.meta.get("corresponding_original_scene"),
        )
        return Scene(meta, window, self.map)

    def previous_scene(self, token: str) -> Scene | None:
        """The scene one frame (0.5 s) before scene ``token``, or ``None`` at the start of the log."""
        for tok, start in self.scenes:
            if tok == token:
                return self.scene_at(start - 1) if start >= 1 else None
        raise KeyError(f"log {self.log_name}: no scene {token!r}")


# ---------------------------------------------------------------------------------------------- encoding
def _frame_to_dict(frame: Frame) -> dict[str, Any]:
    ann, ego = frame.annotations, frame.ego_status
    return {
        "token": frame.token,
        "timestamp": frame.timestamp,
        "roadblock_ids": list(frame.roadblock_ids),
        "traffic_lights": [[cid, bool(red)] for cid, red in frame.traffic_lights],
        "annotations": {
            "boxes": ann.boxes.tolist(),
            "names": list(ann.names),
            "velocity_3d": ann.velocity_3d.tolist(),
            "instance_tokens": list(ann.instance_tokens),
            "track_tokens": list(ann.track_tokens),
        },
        "ego_status": {
            "ego_pose": ego.ego_pose.tolist(),
            "ego_velocity": ego.ego_velocity.tolist(),
            "ego_acceleration": ego.ego_acceleration.tolist(),
            "driving_command": ego.driving_command.tolist(),
        },
        "instruction": frame.instruction,
        "scene_description": frame.scene_description,
        "meta_action": None if frame.meta_action is None else frame.meta_action.value,
    }


def _frame_from_dict(d: dict[str, Any]) -> Frame:
    ann, ego = d["annotations"], d["ego_status"]
    boxes = np.array(ann["boxes"], dtype=np.float64).reshape(-1, 7)
    return Frame(
        token=str(d["token"]),
        timestamp=int(d["timestamp"]),
        roadblock_ids=[str(r) for r in d["roadblock_ids"]],
        traffic_lights=[(str(c), bool(r)) for c, r in d["traffic_lights"]],
        annotations=Annotations(
            boxes,
            [str(n) for n in ann["names"]],
            np.array(ann["velocity_3d"], dtype=np.float64).reshape(-1, 3),
            [str(t) for t in ann["instance_tokens"]],
            [str(t) for t in ann["track_tokens"]],
        ),
        ego_status=EgoStatus(
            ego_pose=np.array(ego["ego_pose"], dtype=np.float64),
            ego_velocity=np.array(ego["ego_velocity"], dtype=np.float64),
            ego_acceleration=np.array(ego["ego_acceleration"], dtype=np.float64),
            driving_command=np.array(ego["driving_command"], dtype=np.int64),
            in_global_frame=True,
        ),
        instruction=str(d["instruction"]),
        scene_description=str(d["scene_description"]),
        meta_action=None if d.get("meta_action") is None else MetaAction(d["meta_action"]),
    )


def log_to_bytes(record: LogRecord) -> bytes:
    """The record as deterministic gzip-compressed JSON bytes."""
    doc = {
        "format": LOG_FORMAT,
        "version": LOG_FORMAT_VERSION,
        "log_name": record.log_name,
        "num_history_frames": record.num_history_frames,
        "num_future_frames": record.num_future_frames,
        "meta": record.meta,
        "scenes": [{"token": tok, "start": start} for tok, start in record.scenes],
        "frames": [_frame_to_dict(f) for f in record.frames],
        "map": map_to_dict(record.map),
    }
    raw = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    return gzip.compress(raw, compresslevel=6, mtime=0)


def write_log(record: LogRecord, path: str | os.PathLike[str]) -> None:
    """Write ``record`` to ``path`` atomically (a crash leaves no partial file)."""
    data = log_to_bytes(record)
    with atomic_open(path, "wb") as f:
        f.write(data)


def read_log(path: str | os.PathLike[str], sha256: str | None = None) -> LogRecord:
    """Read a log record.

    Args:
        path: the ``*.log.json.gz`` file.
        sha256: the SHA-256 the file must have (its manifest's); ``None`` skips the check.

    Raises:
        FileNotFoundError: naming the file when it is missing.
        LogChangedError: naming the file when its SHA-256 is not ``sha256``.
        DataFormatError: naming the file (and field) when it is truncated, corrupt or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"log record {path} does not exist (regenerate the split or fix the manifest)")
    data = path.read_bytes()
    if sha256 is not None:
        _check_sha256(path, hashlib.sha256(data).hexdigest(), sha256)
    try:
        doc = orjson.loads(gzip.decompress(data))  # the same values as json.loads (no NaN is ever written)
    except (OSError, EOFError, zlib.error, orjson.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{path}: corrupt log record ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict) or doc.get("format") != LOG_FORMAT:
        raise DataFormatError(f"{path}: not an {LOG_FORMAT} file")
    if doc.get("version") != LOG_FORMAT_VERSION:
        raise DataFormatError(
            f"{path}: {LOG_FORMAT} version {doc.get('version')}, expected {LOG_FORMAT_VERSION}; the log was written "
            "by an older suite: regenerate the split (irl-vla generate)"
        )
    field_name = "log_name"
    try:
        log_name = str(doc["log_name"])
        field_name = "map"
        map_api = map_from_dict(doc["map"], source=str(path))
        frames = []
        for i, f in enumerate(doc["frames"]):
            field_name = f"frames[{i}]"
            frames.append(_frame_from_dict(f))
        field_name = "scenes"
        scenes = [(str(s["token"]), int(s["start"])) for s in doc["scenes"]]
        n_hist, n_fut = int(doc["num_history_frames"]), int(doc["num_future_frames"])
    except DataFormatError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise DataFormatError(f"{path}: bad field {field_name}: {type(e).__name__}: {e}") from None
    for tok, start in scenes:
        if not 0 <= start <= len(frames) - n_hist - n_fut:
            raise DataFormatError(f"{path}: scene {tok} starts at frame {start}, outside the {len(frames)} frames")
    return LogRecord(log_name, map_api, frames, scenes, n_hist, n_fut, dict(doc.get("meta", {})))
