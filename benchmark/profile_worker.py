"""Profile one model in a child process (a crash in native code, or perf, cannot take the caller).

Prints one JSON line: CPU milliseconds and MACs per inference by family (kernels.py), the
wall-clock time per inference while profiled, and the functions or nodes that took the most.
A .tflite is sampled with perf (perf_sampling.py); a .onnx is timed by ONNX Runtime's own
node profiler.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from petseg.child import report_failure
from petseg.models import open_model

from . import kernels, perf_sampling

WARMUP = 10
TOP = 10  # functions or nodes listed by time


def profile(path: Path, threads: int, seconds: float, arithmetic: str = "fp32") -> dict:
    if path.suffix == ".onnx":
        return profile_onnx(path, threads, seconds)
    return profile_tflite(path, threads, seconds, arithmetic)


def _open_tflite(path: Path, threads: int, arithmetic: str):
    """The model and an Interpreter of its graph (for the MACs): fp16 arithmetic runs it as
    petseg-bench's cpu-fp16 rows do, through CompiledModel."""
    if arithmetic == "fp16":
        from petseg.compiled import CompiledSegmenter

        model = CompiledSegmenter(path, "cpu-fp16", threads)
        return model, model.graph
    model = open_model(path, threads, verified=True)
    return model, model.interpreter


def profile_tflite(path: Path, threads: int, seconds: float, arithmetic: str = "fp32") -> dict:
    model, graph = _open_tflite(path, threads, arithmetic)
    _warm(model)
    plain_ms = _plain_ms(model, seconds)
    samples = perf_sampling.sample(lambda s: _loop(model, s), seconds)
    by_function = samples.per_iteration()
    families: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "macs": 0})
    for (dso, symbol), ms in by_function.items():
        families[kernels.symbol_family(symbol, dso)]["ms"] += ms
    from petseg.graph import macs_by_op

    for op, macs in macs_by_op(graph).items():
        families[kernels.TFLITE_FAMILIES[op]]["macs"] += macs
    top = sorted(by_function.items(), key=lambda kv: -kv[1])[:TOP]
    return {"runtime": model.runtime_name, "how": "perf CPU samples", "threads": threads,
            "arithmetic": arithmetic, "plain_ms": plain_ms,
            "wall_ms": samples.seconds * 1e3 / samples.iterations,
            "os_cpu_ms": samples.cpu_seconds * 1e3 / samples.iterations,
            "iterations": samples.iterations, "families": dict(families),
            "top": [{"name": symbol, "family": kernels.symbol_family(symbol, dso),
                     "variant": kernels.kernel_variant(symbol), "ms": ms} for (dso, symbol), ms in top]}


def profile_onnx(path: Path, threads: int, seconds: float) -> dict:
    from petseg.onnx_runtime import OnnxModel, conv_macs

    plain = OnnxModel(path, threads)  # profiling is a session option: this session times without it
    _warm(plain)
    plain_ms = _plain_ms(plain, seconds)
    del plain
    with tempfile.TemporaryDirectory(prefix="petseg-ort-profile-") as tmp:
        model = OnnxModel(path, threads, profile_prefix=Path(tmp) / "ort")
        _warm(model)
        start = time.perf_counter()
        iterations = _loop(model, seconds)
        wall_ms = (time.perf_counter() - start) * 1e3 / max(iterations, 1)
        events = json.loads(Path(model.session.end_profiling()).read_text())
    return {"runtime": model.runtime_name, "how": "ONNX Runtime node profile", "threads": threads,
            "plain_ms": plain_ms, "wall_ms": wall_ms, "iterations": iterations,
            **onnx_families(events, WARMUP, conv_macs(path))}


def onnx_families(events: list[dict], skip_runs: int, macs: list) -> dict:
    """Per-inference ms by family from ONNX Runtime's profile after ``skip_runs`` runs, with the
    graph's MACs by family (``macs``: onnx_runtime.conv_macs). What a run took beyond its nodes
    (the session's own work) is scheduling.

    A node is named by the file's node it came from where ONNX Runtime kept the name (fused
    nodes add ``_token_N``): the profile leaves out the weights it prepacked (an int8 depthwise
    QLinearConv's among them), so their shapes cannot say which convolutions are depthwise.
    """
    in_file = {n.name: kernels.onnx_family(n.op_type, n.weights) for n in macs}
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[skip_runs:]
    if not runs:
        return {"families": {}, "top": []}
    start = runs[0]["ts"]
    families: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "macs": 0})
    nodes: Counter = Counter()
    node_ms = 0.0
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time") or e["ts"] < start:
            continue
        args = e.get("args", {})
        op = args.get("op_name", "")
        inputs = [next(iter(t.values())) for t in args.get("input_type_shape", [])]
        family = in_file.get(_file_name(e["name"].removesuffix("_kernel_time"))) \
            or kernels.onnx_family(op, kernels.conv_weights(op, inputs))
        ms = e["dur"] / 1e3 / len(runs)
        families[family]["ms"] += ms
        nodes[(op, family)] += ms
        node_ms += ms
    run_ms = sum(r["dur"] for r in runs) / 1e3 / len(runs)
    families[kernels.SCHEDULING]["ms"] += max(run_ms - node_ms, 0.0)
    for node in macs:
        families[in_file[node.name]]["macs"] += node.macs
    top = [{"name": op, "family": family, "variant": "", "ms": ms}
           for (op, family), ms in nodes.most_common(TOP)]
    return {"families": dict(families), "top": top}


def _file_name(node: str) -> str:
    """The file's node name behind a profiled node: ONNX Runtime's fusions append _token_N, its
    NCHWc layout _nchwc."""
    return re.sub(r"(_token_\d+|_nchwc)+$", "", node)


def _warm(model) -> None:
    size = model.image_size
    model.set_input(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))
    for _ in range(WARMUP):
        model.invoke()


def _plain_ms(model, seconds: float) -> float:
    """Mean wall-clock ms per inference with no profiler attached, measured as the profiled figure
    is: beside it, it shows what the profiling itself cost."""
    start = time.perf_counter()
    runs = _loop(model, min(seconds, 2.0))
    return (time.perf_counter() - start) * 1e3 / max(runs, 1)


def _loop(model, seconds: float) -> int:
    runs, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        model.invoke()
        runs += 1
    return runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("model", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--arithmetic", choices=("fp32", "fp16"), default="fp32")
    args = p.parse_args(argv)
    print(json.dumps(profile(args.model, args.threads, args.seconds, args.arithmetic)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        report_failure(exc)
