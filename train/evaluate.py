"""Score a Keras model on a split with the shared metrics."""

from __future__ import annotations

import keras
import numpy as np

from petseg.labels import class_ids
from petseg.metrics import confusion, scores
from petseg.split import Split


def predict_classes(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Per-pixel class ids for a batch of uint8 images."""
    logits = model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)
    return class_ids(logits)


def evaluate(model: keras.Model, split: Split, batch_size: int = 32) -> dict:
    """Pixel accuracy, mean IoU and per-class IoU on ``split``."""
    result = scores(confusion(split.masks, predict_classes(model, split.images, batch_size)))
    result["images"] = len(split)
    return result
