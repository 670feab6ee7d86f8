"""Segmentation metrics from a confusion matrix, shared by training, export and bench."""

from __future__ import annotations

import numpy as np

from .labels import CLASSES, NUM_CLASSES


def confusion(truth: np.ndarray, pred: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Confusion matrix (rows: truth, columns: prediction) over all pixels."""
    truth = np.asarray(truth, dtype=np.int64).ravel()
    pred = np.asarray(pred, dtype=np.int64).ravel()
    if truth.shape != pred.shape:
        raise ValueError(f"shape mismatch: truth {truth.shape} vs prediction {pred.shape}")
    return np.bincount(truth * num_classes + pred, minlength=num_classes**2).reshape(
        num_classes, num_classes)


def scores(cm: np.ndarray) -> dict:
    """Pixel accuracy, mean IoU and per-class IoU from a confusion matrix.

    Classes absent from both truth and prediction are left out of the mean,
    as is usual for mIoU.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    total = cm.sum()
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_iou": float(np.nanmean(iou)) if np.any(union > 0) else float("nan"),
        "per_class_iou": {name: (None if np.isnan(v) else float(v)) for name, v in zip(CLASSES, iou)},
    }


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels on which two predictions agree."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return float(np.mean(a == b))
