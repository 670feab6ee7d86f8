"""Procedurally drawn "pets" with real trimaps: offline demos and tests that need no download.

Each picture holds one animal-like shape (body, head, ears) on a textured
background; its trimap marks pet, background and a border band exactly as the
Oxford-IIIT Pet annotations do (1 pet, 2 background, 3 border).
"""

from __future__ import annotations

import collections

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .errors import PetsegError
from .labels import trimap_to_classes
from .split import Split

DEFAULT_COUNT = 160  # trainval pictures; the test split gets a third as many


def draw_pet(rng: np.random.Generator, size: int) -> tuple[Image.Image, np.ndarray]:
    """One RGB picture and its trimap (values 1..3), both ``size`` x ``size``."""
    yy, xx = np.mgrid[0:size, 0:size]
    base = rng.integers(40, 220, 3)
    slope = rng.normal(0, 40, (2, 3))
    background = (base + np.outer(xx.ravel() / size, slope[0]).reshape(size, size, 3)
                  + np.outer(yy.ravel() / size, slope[1]).reshape(size, size, 3)
                  + rng.normal(0, 18, (size, size, 3)))
    mask_img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask_img)
    cx, cy = rng.uniform(0.3, 0.7, 2) * size
    bw, bh = rng.uniform(0.15, 0.3, 2) * size
    draw.ellipse([cx - bw, cy - bh, cx + bw, cy + bh], fill=255)
    hx, hy, hr = cx + rng.uniform(-1, 1) * bw, cy - bh * rng.uniform(0.6, 1.0), rng.uniform(0.08, 0.15) * size
    draw.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=255)
    for side in (-1, 1):
        ex = hx + side * hr * 0.6
        draw.polygon([(ex - hr * 0.4, hy - hr * 0.5), (ex + hr * 0.4, hy - hr * 0.5),
                      (ex + side * hr * 0.2, hy - hr * 1.6)], fill=255)
    mask = np.asarray(mask_img) > 127
    fur = rng.integers(0, 256, 3) + 30 * np.sin(xx * rng.uniform(0.2, 0.6))[..., None]
    pixels = np.where(mask[..., None], fur + rng.normal(0, 10, (size, size, 3)), background)
    band = max(1, size // 64) * 2 + 1
    grown = np.asarray(mask_img.filter(ImageFilter.MaxFilter(band))) > 127
    shrunk = np.asarray(mask_img.filter(ImageFilter.MinFilter(band))) > 127
    trimap = np.full((size, size), 2, np.uint8)
    trimap[shrunk] = 1
    trimap[grown & ~shrunk] = 3
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), trimap


def _parse_count(source: str) -> int:
    _, _, count = source.partition(":")
    if not count:
        return DEFAULT_COUNT
    if not count.isdigit() or int(count) < 2:
        raise PetsegError(f"--data {source}: the count after 'synthetic:' must be a whole number >= 2")
    return int(count)


def synthetic_splits(source: str, size: int, seed: int) -> tuple[Split, Split, collections.Counter]:
    """In-memory trainval and test splits; the same seed draws the same pictures."""
    n_trainval = _parse_count(source)
    # Test pictures come from their own stream so they never depend on the trainval count.
    trainval = _draw_split(np.random.default_rng([seed, 1]), n_trainval, size, "trainval")
    test = _draw_split(np.random.default_rng([seed, 2]), max(2, n_trainval // 3), size, "test")
    return trainval, test, collections.Counter()


def _draw_split(rng: np.random.Generator, n: int, size: int, prefix: str) -> Split:
    images, masks = [], []
    for _ in range(n):
        image, trimap = draw_pet(rng, size)
        images.append(np.asarray(image))
        masks.append(trimap_to_classes(trimap))
    return Split(np.stack(images), np.stack(masks), [f"{prefix}_{i}" for i in range(n)])
