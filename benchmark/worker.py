"""Measure one model in a child process: a crash in native code cannot take the caller with it.

Prints one JSON line: init and first-inference time, warm latencies and whether they were
stable (stability.py), the model's resident memory, ops outside the delegate, MACs; writes
predictions for accuracy.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import sys
import time
from pathlib import Path

import numpy as np
import psutil

from petseg.child import report_failure
from petseg.models import open_model
from petseg.runtime import load_runtime

from .stability import steady_times


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
    _load_runtime(path)  # the runtime's own libraries are not the model's memory
    before = _resident_bytes()
    start = time.perf_counter()
    model = open_for(path, threads, backend)
    init_ms = (time.perf_counter() - start) * 1e3
    load_mb = (_resident_bytes(trim=False) - before) / 2**20
    size = model.image_size
    image = images[0] if images is not None else np.random.default_rng(0).integers(
        0, 256, (size, size, 3), dtype=np.uint8)
    model.set_input(image)
    start = time.perf_counter()
    model.invoke()
    first_ms = (time.perf_counter() - start) * 1e3
    first_mb = (_resident_bytes(trim=False) - before) / 2**20
    listed, stability = steady_times(lambda: time_runs(model, image, warmup, runs, min_seconds))
    times = np.array(listed)
    result = {
        "runtime": model.runtime_name, "image_size": size, "threads": threads,
        "init_ms": init_ms, "first_ms": first_ms, "runs": int(times.size),
        "median_ms": float(np.median(times)), "mean_ms": float(times.mean()),
        "p90_ms": float(np.percentile(times, 90)), "p99_ms": float(np.percentile(times, 99)),
        "std_ms": float(times.std()), "min_ms": float(times.min()),
        "memory_load_mb": load_mb, "memory_first_mb": first_mb, "stability": stability,
        "outside_delegate": model.outside_delegate(), "macs": model.macs(),
        "input_dtype": model.input_dtype, **placement(model),
    }
    predictions = model.predict(images) if images is not None else None
    return result, predictions


def _load_runtime(path: Path) -> None:
    if path.suffix == ".onnx":
        with contextlib.suppress(ImportError):  # OnnxModel says what is missing
            import onnxruntime  # noqa: F401
    else:
        load_runtime()


def _resident_bytes(trim: bool = True) -> int:
    """This process's resident memory now (not its high-water mark, which the test images set).

    Before the baseline, memory the allocator holds free goes back to the system (glibc's
    malloc_trim), so that the model's allocations cannot hide in it: each one it touches is new
    resident memory, and the figures after load and first inference are the model's own.
    """
    if trim:  # not glibc: the baseline keeps what is free
        with contextlib.suppress(AttributeError, OSError):
            ctypes.CDLL(None).malloc_trim(0)
    return psutil.Process().memory_info().rss


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
