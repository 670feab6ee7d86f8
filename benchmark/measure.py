"""Run the worker (worker.py) for one model, thread count and backend: its latency record and predictions.

Scoring the predictions is the session's (session.py): each against its reference's, once every
model has run.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from petseg.child import run_module
from petseg.description import Description
from petseg.modelfile import read_description, variant_of


@dataclass
class Measurement:
    """One model at one thread count on one backend: what the worker measured, and what the session
    scores from it (``accuracy``: mIoU, agreement and speed-up against the reference)."""

    path: Path
    threads: int
    latency: dict
    predictions: np.ndarray | None = None
    description: Description | None = None
    accuracy: dict = field(default_factory=dict)
    backend: str = "cpu"  # see benchmark/accelerators.py

    @property
    def variant(self) -> str:
        return variant_of(self.path, self.description)


def run_worker(path: Path, threads: int, warmup: int, runs: int, min_seconds: float,
               images: np.ndarray | None, timeout: float = 3600, backend: str = "cpu") -> Measurement:
    """Measure ``path`` in a child process; a malformed model kills only the child."""
    with tempfile.TemporaryDirectory(prefix="petseg-bench-") as tmp:
        args = [str(path), "--threads", str(threads), "--warmup", str(warmup), "--runs", str(runs),
                "--min-seconds", str(min_seconds), "--backend", backend]
        if images is not None:
            np.save(Path(tmp) / "images.npy", images)
            args += ["--images", str(Path(tmp) / "images.npy"),
                    "--predictions", str(Path(tmp) / "pred.npy")]
        answer = run_module("petseg.benchmark.worker", args, f"{path} cannot be benchmarked",
                            "check that it is an exported segmentation model, or pass --limit", timeout)
        predictions = np.load(Path(tmp) / "pred.npy") if images is not None else None
    return Measurement(path, threads, json.loads(answer), predictions, read_description(path),
                       backend=backend)
