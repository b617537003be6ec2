"""Text for the viewer's panels: Pillow's bundled font at a few sizes, and word wrapping to a pixel width."""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont


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


@lru_cache(maxsize=4096)
def _mask(text: str, size: int, anchor: str) -> tuple[Image.Image, tuple[int, int]]:
    """The antialiased coverage of ``text`` and its offset from the anchor point [px] (cached: labels repeat)."""
    left, top, right, bottom = font(size).getbbox(text, anchor=anchor)
    mask = Image.new("L", (max(1, int(right - left)), max(1, int(bottom - top))), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font(size), anchor=anchor)
    return mask, (int(left), int(top))


def draw_text(
    image: Image.Image, xy: tuple[float, float], text: str, size: int, fill: tuple[int, int, int], anchor: str = "la"
) -> None:
    """Draw ``text`` in ``fill`` at ``xy`` (Pillow's anchor codes), from a cache of rendered text.

    Rendering glyphs dominates a frame's cost; the viewer's labels, names and most values repeat from step to
    step, so each distinct (text, size, anchor) is rendered once.
    """
    if not text:
        return
    mask, (dx, dy) = _mask(text, size, anchor)
    image.paste(fill, (round(xy[0]) + dx, round(xy[1]) + dy), mask)
