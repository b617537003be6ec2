"""Text for the viewer's panels: Pillow's bundled font at a few sizes, and word wrapping to a pixel width."""

from __future__ import annotations

from functools import lru_cache

from PIL import ImageFont


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` [px] (its fixed bitmap font where Pillow lacks FreeType)."""
    return ImageFont.load_default(size)


def wrap(text: str, width: float, size: int) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``width`` [px] at font ``size`` (a long word stays whole)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if current and font(size).getlength(trial) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines
