"""Synthetic pets written as the official Oxford-IIIT Pet archive extracts, for the reader's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from petseg.synthetic import draw_pet


def write_official_layout(root: Path, n_trainval: int = 12, n_test: int = 6, size: int = 96,
                          seed: int = 0) -> Path:
    """JPEGs, PNG trimaps and the split lists, as the archives unpack."""
    images, trimaps = Path(root) / "images", Path(root) / "annotations" / "trimaps"
    images.mkdir(parents=True, exist_ok=True)
    trimaps.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("trainval", n_trainval), ("test", n_test)):
        names = [f"Synthetic_{split}_{i}" for i in range(n)]
        for name in names:
            image, trimap = draw_pet(rng, size)
            image.save(images / f"{name}.jpg", quality=92)
            Image.fromarray(trimap).save(trimaps / f"{name}.png")
        (Path(root) / "annotations" / f"{split}.txt").write_text("".join(f"{name} 1 1 1\n" for name in names))
    return Path(root)
