"""Recording viewer frames: MP4 (imageio + ffmpeg), GIF (imageio + Pillow), or a directory of PNG frames.

The format follows the path: ``*.mp4`` / ``*.gif``, anything else is a directory of ``frame_000000.png``. A
video is written to a hidden partial file beside the target and renamed over it by ``close()``, so a killed run
never leaves a truncated file under the target's name (``abort()`` removes the partial file); each PNG is
written atomically.
"""

from __future__ import annotations

import os
from contextlib import suppress
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from irl_vla.common.io import follow_umask, replacing


class RecordFormat(str, Enum):
    """What a recording is written as."""

    MP4 = "mp4"
    GIF = "gif"
    PNG = "png"  # a directory of frames

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> RecordFormat:
        """The format a path asks for: by its suffix, PNG frames for a directory (no suffix)."""
        suffix = Path(path).suffix.lower().lstrip(".")
        if suffix in (cls.MP4.value, cls.GIF.value):
            return cls(suffix)
        if suffix:
            raise ValueError(f"record path {path}: unknown suffix .{suffix}; expected .mp4, .gif or a directory")
        return cls.PNG


class FrameRecorder:
    """Writes RGB frames ``(H, W, 3)`` uint8 of one size to a video or to PNG files.

    Args:
        path: ``*.mp4``, ``*.gif`` or a directory.
        fps: frames per second of the video [Hz] (a closed-loop step of 0.5 s plays in real time at 2).
        quality: MP4 quality, 0 to 10 (imageio's scale).

    Raises:
        ValueError: for an unknown suffix or ``fps <= 0``.
        FileExistsError: naming the directory when a PNG directory already holds frames.
        ImportError: naming the package to install when imageio (or imageio-ffmpeg for MP4) is missing.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 2.0, quality: float = 7.0) -> None:
        if not fps > 0:
            raise ValueError(f"FrameRecorder.fps: expected > 0, got {fps}")
        self.path = Path(path)
        self.format = RecordFormat.of(self.path)
        self.fps = fps
        self.quality = quality
        self.frames_written = 0
        self._shape: tuple[int, ...] | None = None
        self._writer: Any = None
        self._partial = self.path.with_name(f".{self.path.name}.partial{self.path.suffix}")
        if self.format is RecordFormat.PNG:
            self.path.mkdir(parents=True, exist_ok=True)
            stale = sorted(self.path.glob("frame_*.png"))
            if stale:
                raise FileExistsError(
                    f"record directory {self.path} already holds {len(stale)} frames ({stale[0].name}, ...); "
                    "give an empty or new directory (frames of two runs would mix)"
                )
        else:
            try:
                import imageio.v2 as imageio
            except ImportError:
                raise ImportError("recording video needs imageio: pip install 'irl-vla[viz]'") from None
            if self.format is RecordFormat.MP4:
                try:
                    import imageio_ffmpeg  # noqa: F401
                except ImportError:
                    raise ImportError("recording MP4 needs imageio-ffmpeg: pip install 'irl-vla[viz]'") from None
            self._imageio = imageio

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format is RecordFormat.MP4:
            self._writer = self._imageio.get_writer(
                self._partial, format="FFMPEG", mode="I", fps=self.fps, codec="libx264", quality=self.quality,
                pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error",
            )  # fmt: skip
        else:
            self._writer = self._imageio.get_writer(
                self._partial, format="GIF", mode="I", duration=1000.0 / self.fps, loop=0
            )

    def write(self, frame: npt.NDArray[np.uint8]) -> None:
        """Append one frame.

        Raises:
            ValueError: when the frame is not ``(H, W, 3)`` uint8, changes size, or (MP4) has an odd side.
        """
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"FrameRecorder({self.path}): expected an (H, W, 3) uint8 frame, got {frame.shape} {frame.dtype}"
            )
        if self._shape is None:
            if self.format is RecordFormat.MP4 and (frame.shape[0] % 2 or frame.shape[1] % 2):
                raise ValueError(f"FrameRecorder({self.path}): MP4 (yuv420p) needs even sides, got {frame.shape[:2]}")
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise ValueError(f"FrameRecorder({self.path}): frame {self.frames_written} is {frame.shape}, "
                             f"the recording's frames are {self._shape}")  # fmt: skip
        if self.format is RecordFormat.PNG:
            with replacing(self.path / f"frame_{self.frames_written:06d}.png") as tmp:
                Image.fromarray(frame).save(tmp, format="PNG")
        else:
            if self._writer is None:
                self._open()
            self._writer.append_data(frame)
        self.frames_written += 1

    def close(self) -> Path:
        """Finish the file (rename the partial video over the target) and return the recording's path.

        Raises:
            ValueError: when a video has no frame (nothing is written).
        """
        if self.format is not RecordFormat.PNG:
            if self._writer is None:
                raise ValueError(f"FrameRecorder({self.path}): no frame was written")
            self._writer.close()
            self._writer = None
            os.replace(self._partial, self.path)
            follow_umask(self.path)
        return self.path

    def abort(self) -> None:
        """Stop without finishing: the partial video is removed, the target is left as it was."""
        if self._writer is not None:
            with suppress(Exception):
                self._writer.close()
            self._writer = None
        with suppress(FileNotFoundError):
            os.unlink(self._partial)
