"""The three classes and the mapping from Oxford-IIIT Pet trimaps."""

from __future__ import annotations

import numpy as np

CLASSES: tuple[str, ...] = ("pet", "background", "border")
NUM_CLASSES = len(CLASSES)

# Colours for masks and overlays, one per class (RGB).
PALETTE = np.array([[255, 140, 0], [40, 40, 40], [250, 250, 250]], dtype=np.uint8)


def trimap_to_classes(trimap: np.ndarray) -> np.ndarray:
    """Map trimap values 1/2/3 (pet/background/border) to class ids 0/1/2.

    Raises ValueError if any value lies outside 1..3, so corrupt annotations are
    noticed rather than silently becoming a fourth class.
    """
    trimap = np.asarray(trimap)
    if trimap.size and (trimap.min() < 1 or trimap.max() > NUM_CLASSES):
        raise ValueError(f"trimap values must be 1..3, found {int(trimap.min())}..{int(trimap.max())}")
    return (trimap - 1).astype(np.uint8)


def class_ids(logits: np.ndarray) -> np.ndarray:
    """Per-pixel class ids from logits (or probabilities): the one place petseg takes the argmax."""
    return np.argmax(logits, axis=-1).astype(np.uint8)
