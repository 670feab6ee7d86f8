"""Measure one model in a child process: a crash in native code cannot take the caller with it.

Prints one JSON line: init and first-inference time, warm latencies, peak
memory, ops outside the delegate, MACs; writes predictions for accuracy.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from petseg.child import report_failure
from petseg.models import open_model


def time_runs(model, image: np.ndarray, warmup: int, runs: int, min_seconds: float) -> list[float]:
    model.set_input(image)
    for _ in range(warmup):
        model.invoke()
    times: list[float] = []
    deadline = time.perf_counter() + min_seconds
    while len(times) < runs or time.perf_counter() < deadline:
        start = time.perf_counter()
        model.invoke()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def open_for(path: Path, threads: int, backend: str):
    """Today's Interpreter for the cpu rows; CompiledModel for fp16 arithmetic and the GPU."""
    if backend == "cpu":
        # The parent checked the file; this process is the isolation, so no second probe.
        return open_model(path, threads, verified=True)
    from petseg.compiled import CompiledSegmenter

    return CompiledSegmenter(path, backend, threads)


def placement(model) -> dict:
    if hasattr(model, "placement"):
        return model.placement()
    return {"backend": "cpu", "fully_accelerated": not model.outside_delegate(), "adapter": None,
            "software_device": False, "fp16_arithmetic": None}


def measure(path: Path, threads: int, warmup: int, runs: int, min_seconds: float,
            images: np.ndarray | None, backend: str = "cpu") -> tuple[dict, np.ndarray | None]:
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    model = open_for(path, threads, backend)
    init_ms = (time.perf_counter() - start) * 1e3
    size = model.image_size
    image = images[0] if images is not None else np.random.default_rng(0).integers(
        0, 256, (size, size, 3), dtype=np.uint8)
    model.set_input(image)
    start = time.perf_counter()
    model.invoke()
    first_ms = (time.perf_counter() - start) * 1e3
    times = np.array(time_runs(model, image, warmup, runs, min_seconds))
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kb) / 1024
    result = {
        "runtime": model.runtime_name, "image_size": size, "threads": threads,
        "init_ms": init_ms, "first_ms": first_ms, "runs": int(times.size),
        "median_ms": float(np.median(times)), "mean_ms": float(times.mean()),
        "p90_ms": float(np.percentile(times, 90)), "p99_ms": float(np.percentile(times, 99)),
        "std_ms": float(times.std()), "min_ms": float(times.min()), "peak_mb": peak_mb,
        "outside_delegate": model.outside_delegate(), "macs": model.macs(),
        "input_dtype": model.input_dtype, **placement(model),
    }
    predictions = model.predict(images) if images is not None else None
    return result, predictions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("model", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--images", type=Path, help=".npy of uint8 images to predict")
    p.add_argument("--predictions", type=Path, help="where to write the predicted class ids (.npy)")
    p.add_argument("--backend", default="cpu", help="cpu, or a petseg.compiled.BACKENDS name")
    args = p.parse_args(argv)
    images = np.load(args.images) if args.images else None
    result, predictions = measure(args.model, args.threads, args.warmup, args.runs, args.min_seconds,
                                  images, args.backend)
    if predictions is not None and args.predictions:
        np.save(args.predictions, predictions)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        report_failure(exc)
