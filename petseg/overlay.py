"""Colour masks and overlays with Pillow alone (no plotting library on the device)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .labels import PALETTE


def colour_mask(classes: np.ndarray) -> np.ndarray:
    return PALETTE[np.asarray(classes, dtype=np.intp)]


def blend(image: np.ndarray, classes: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The photo with the class colours laid over it (background left as it is)."""
    colours = colour_mask(classes).astype(np.float32)
    weight = np.where(classes[..., None] == 1, 0.0, alpha)
    return (image.astype(np.float32) * (1 - weight) + colours * weight).astype(np.uint8)


def grid(rows: list[list[np.ndarray]], titles: list[str], cell: int = 128) -> Image.Image:
    """Tiles of equal size in rows, with a title strip over each column."""
    header = 18
    width, height = cell * len(titles), header + cell * len(rows)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(titles):
        draw.text((c * cell + 4, 3), title, fill=(0, 0, 0))
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            canvas.paste(Image.fromarray(tile).resize((cell, cell), Image.NEAREST),
                         (c * cell, header + r * cell))
    return canvas
