"""Check an exported variant against the Keras model on held-out images."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from petseg.metrics import agreement, confusion, scores
from petseg.models import open_model


@dataclass
class Verification:
    agreement: float  # share of pixels where the variant and Keras pick the same class
    miou: float  # the variant's mIoU against the ground truth
    miou_delta: float  # variant minus Keras, in mIoU points (x100)
    images: int

    @property
    def broken(self) -> bool:
        # A working export of a 3-class model agrees on most pixels; a broken one is near chance.
        return self.agreement < 0.8


def verify(path: Path, images: np.ndarray, truth: np.ndarray, reference: np.ndarray,
           reference_miou: float) -> Verification:
    """Run ``path`` in LiteRT on ``images`` and compare with the Keras predictions ``reference``."""
    pred = open_model(path).predict(images)
    miou = scores(confusion(truth, pred))["mean_iou"]
    return Verification(agreement(pred, reference), miou, 100 * (miou - reference_miou), len(images))


def run_tflite_bytes(flatbuffer: bytes, images: np.ndarray) -> np.ndarray:
    """Class ids from a flatbuffer that is not (yet) a file of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidate.tflite"
        path.write_bytes(flatbuffer)
        return open_model(path).predict(images)
