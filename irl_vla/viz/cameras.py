"""The camera panel: every camera tiled to fill the panel, or one camera alone, each labelled with its name."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from irl_vla.data.sensors import Cameras
from irl_vla.viz import palette
from irl_vla.viz.text import draw_text


def camera_names(cameras: Cameras) -> list[str]:
    """Names of the cameras that hold an image, in the rig's order."""
    return [name for name, cam in cameras.items() if cam.image is not None]


def _grid(count: int, aspect: float, width: int, height: int) -> tuple[int, int, float]:
    """(columns, rows, scale) that shows ``count`` images of width/height ``aspect`` largest in the panel."""
    best = (1, count, 0.0)
    for columns in range(1, count + 1):
        rows = math.ceil(count / columns)
        tile_w = min(width / columns, height / rows * aspect)
        if tile_w > best[2]:
            best = (columns, rows, tile_w)
    return best


def render_cameras(cameras: Cameras, width: int, height: int, selected: str | None = None) -> npt.NDArray[np.uint8]:
    """The camera panel ``(height, width, 3)``.

    Args:
        cameras: the step's cameras (those without an image are skipped).
        width: panel width [px].
        height: panel height [px].
        selected: show only this camera; None tiles them all.

    Raises:
        KeyError: naming the camera and the available ones when ``selected`` holds no image.
    """
    panel = Image.new("RGB", (width, height), palette.PANEL)
    draw = ImageDraw.Draw(panel)
    names = camera_names(cameras)
    if selected is not None:
        if selected not in names:
            raise KeyError(f"camera {selected!r} has no image; cameras with one: {names}")
        names = [selected]
    if not names:
        draw_text(panel, (width / 2, height / 2), "no camera images", 14, palette.TEXT_DIM, "mm")
        return np.asarray(panel)
    first = cameras[names[0]].image
    assert first is not None
    columns, rows, tile_w = _grid(len(names), first.shape[1] / first.shape[0], width, height)
    tile_h = tile_w * first.shape[0] / first.shape[1]
    off_x = (width - columns * tile_w) / 2
    off_y = (height - rows * tile_h) / 2
    for i, name in enumerate(names):
        image = cameras[name].image
        assert image is not None
        tile = Image.fromarray(image).resize((max(1, int(tile_w)), max(1, int(tile_h))), Image.Resampling.BILINEAR)
        row, col = divmod(i, columns)
        in_row = min(columns, len(names) - row * columns)  # a short last row is centred
        x = int(off_x + (columns - in_row) * tile_w / 2 + col * tile_w)
        y = int(off_y + row * tile_h)
        panel.paste(tile, (x, y))
        draw.rectangle((x, y, x + 8 + 7 * len(name), y + 18), fill=palette.PANEL)
        draw_text(panel, (x + 4, y + 3), name, 13, palette.TEXT)
    return np.asarray(panel)
