"""Check an exported variant against the Keras model on held-out images."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from petseg.dataset import Split
from petseg.metrics import agreement, confusion, scores
from petseg.models import describe_io, open_model

from .budget import DRAWS, LEVEL, Judgement, judge
from .fp16_check import fp16_verification
from .settings import Budget


@dataclass
class Reference:
    """Held-out images with the Keras model's own predictions on them."""

    split: Split
    classes: np.ndarray
    miou: float
    sources: dict = field(default_factory=dict)  # images per split they came from


@dataclass
class Verification:
    agreement: float  # share of pixels where the variant and Keras pick the same class
    miou: float  # the variant's mIoU against the ground truth
    miou_delta: float  # variant minus Keras, in mIoU points (x100)
    images: int
    predictions: np.ndarray  # the variant's class ids on the verification images
    io: dict  # input and output tensors, as describe_io reports them
    judgement: Judgement  # the budget's verdict, with bootstrap intervals
    budget: Budget
    sources: dict  # verification images per split they came from
    fp16_arithmetic: dict | None = None  # the same check computed in fp16 (fp16_check.py)

    def to_json(self) -> dict:
        """What the description records of the check."""
        j = self.judgement
        return {"images": self.images, "splits": self.sources,
                "agreement": self.agreement, "miou": self.miou, "miou_delta_points": self.miou_delta,
                "fp16_arithmetic": self.fp16_arithmetic,
                "interval": {"level": LEVEL, "method": f"bootstrap over images, {DRAWS} draws",
                             "miou_delta_points": [round(-j.drop_interval.high, 4),
                                                   round(-j.drop_interval.low, 4)],
                             "agreement": j.agreement_interval.as_list(6)},
                "budget": {"max_drop_points": self.budget.max_drop,
                           "min_agreement": self.budget.min_agreement, "verdict": j.verdict,
                           "rule": f"within when the whole interval is within the {self.budget.as_text()}"}}

    @property
    def broken(self) -> bool:
        # A working export of a 3-class model agrees on most pixels; a broken one is near chance.
        return self.agreement < 0.8


@contextmanager
def _as_file(model: bytes, suffix: str) -> Iterator[Path]:
    """The model bytes as a private temporary file (runtimes want a path)."""
    with tempfile.TemporaryDirectory(prefix="petseg-verify-") as tmp:
        path = Path(tmp) / f"candidate{suffix}"
        path.write_bytes(model)
        yield path


def verify_bytes(model: bytes, suffix: str, reference: Reference, budget: Budget = Budget(),
                 fp16: bool = False) -> Verification:
    """Run the variant in its runtime on the reference images and compare with Keras; with ``fp16``,
    also computed in fp16 arithmetic."""
    split = reference.split
    with _as_file(model, suffix) as path:
        pred = open_model(path).predict(split.images)
        io = describe_io(path)
        in_fp16 = fp16_verification(path, reference) if fp16 else None
    miou = scores(confusion(split.masks, pred))["mean_iou"]
    return Verification(agreement(pred, reference.classes), miou, 100 * (miou - reference.miou),
                        len(split), pred, io, judge(split.masks, reference.classes, pred, budget), budget,
                        reference.sources or {"val": len(split)}, in_fp16)


def run_model_bytes(model: bytes, suffix: str, images: np.ndarray) -> np.ndarray:
    """Class ids from a model that is not (yet) a file of its own."""
    with _as_file(model, suffix) as path:
        return open_model(path).predict(images)


def run_tflite_bytes(flatbuffer: bytes, images: np.ndarray) -> np.ndarray:
    return run_model_bytes(flatbuffer, ".tflite", images)
