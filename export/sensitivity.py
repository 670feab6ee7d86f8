"""When int8 hurts: per-layer quantisation error, and keeping the worst layers in float.

The per-layer figures are TFLite's QuantizationDebugger's (RMSE of each quantised
tensor against its float value, divided by the tensor's scale: about 0.29 is the
unavoidable rounding error of a uniform quantiser), computed in LiteRT.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from petseg import atomic
from petseg.errors import PetsegError
from petseg.runtime import load_runtime
from petseg.table import format_table

from .budget import Judgement
from .variant import one_at_a_time


def layer_errors(calibrated: bytes, images: np.ndarray) -> list[dict]:
    """Per-tensor quantisation error, worst first.

    In the debug model every quantised tensor feeds a NumericVerify op that outputs its difference
    from the float computation. They run in LiteRT here, with QuantizationDebugger's statistics:
    the debugger itself runs TensorFlow's deprecated tf.lite.Interpreter.
    """
    from tensorflow.lite.python import convert

    interpreter = load_runtime().interpreter_class(
        model_content=convert.mlir_quantize(calibrated, enable_numeric_verify=True))
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()  # noqa: SLF001 - the only view of the node list
    checks = [op for op in ops if op["op_name"] == NUMERIC_VERIFY]
    squared, worst = [[] for _ in checks], [[] for _ in checks]
    for batch in one_at_a_time(images):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
        interpreter.invoke()
        for i, op in enumerate(checks):
            diffs = interpreter.get_tensor(int(op["outputs"][0]))
            squared[i].append(np.average(diffs ** 2))
            worst[i].append(np.max(np.abs(diffs)))
    # The op that computed each tensor (not the DELEGATE node that now runs it).
    producer = {int(t): op["op_name"] for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    rows = []
    for i, op in enumerate(checks):
        quantised = int(op["inputs"][0])
        scale = float(_tensor(interpreter, quantised)["quantization_parameters"]["scales"][0])
        rows.append({"tensor": _checked_name(_tensor(interpreter, int(op["outputs"][0]))["name"]),
                     "op": producer[quantised], "scale": scale,
                     "rmse_over_scale": float(np.sqrt(np.nanmean(squared[i]))) / scale if scale else 0.0,
                     "max_abs_error": float(np.nanmean(worst[i]))})
    return sorted(rows, key=lambda r: -r["rmse_over_scale"])


NUMERIC_VERIFY = "NumericVerify"


def _tensor(interpreter, index: int) -> dict:
    return interpreter._get_tensor_details(index, subgraph_index=0)  # noqa: SLF001


def _checked_name(name: str) -> str:
    """'NumericVerify/<tensor>:<index>' -> <tensor>, as QuantizationDebugger names it (the names
    --keep-float matches and the converter's denylist takes)."""
    tensor = name.rsplit(":", 1)[0][len(NUMERIC_VERIFY) + 1:]
    return tensor[:-1] if tensor[-1:].isdigit() else tensor


def write_report(calibrated: bytes, images: np.ndarray, dest: Path, top: int = 10) -> list[dict]:
    """Write the per-layer CSV and print the worst layers."""
    rows = layer_errors(calibrated, images[:32])
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(dest, text.getvalue())
    print(f"int8 per-layer error ({len(rows)} tensors) written to {dest}; worst {top}:")
    print(format_table(["tensor (first part)", "op", "RMSE/scale"],
                       [[short_name(r["tensor"]), r["op"], f"{r['rmse_over_scale']:.3f}"]
                        for r in rows[:top]]))
    print("keep any of them in float with --keep-float NAME, or let --max-drop choose")
    return rows


def resolve(names: list[str], tensors: list[str]) -> list[str]:
    """Full tensor names for the names given, each matched as a substring (report names are long)."""
    resolved = []
    for name in names:
        matches = [t for t in tensors if name in t]
        if not matches:
            raise PetsegError(f"--keep-float {name}: no quantised tensor has that in its name; "
                              "see the names --report prints")
        resolved += [t for t in matches if t not in resolved]
    return resolved


def search_fallback(ranked: list[str] | Callable[[], list[str]], make: Callable[[list[str]], bytes], job,
                    reference, forced: list[str] = (), label: str = "in float", start: int = 0
                    ) -> tuple[list[str], Judgement]:
    """The fewest of the ``ranked`` layers to treat differently so that the model meets its budget.

    ``make(layers)`` builds the model with ``layers`` given the fallback (kept in float, int16
    activations, int8 weights...). The budget (``job.budget``, budget.py) is judged on held-out
    images, never test: validation images plus training images calibration never saw, with a
    bootstrap interval that must lie within it as a whole. Layers are added worst first from
    ``start`` of them; ``ranked`` may be a function: ranking costs a debugger run, which a model
    that meets its budget never needs. Where no set meets the budget, the best one tried is
    returned (fewer layers win ties): more float layers do not always help.
    """
    from .budget import describe

    forced, budget = list(forced), describe(job.budget)
    count, tried = start, []
    while True:
        if count:
            ranked = ranked() if callable(ranked) else ranked
        candidate = forced + [t for t in (ranked[:count] if count else []) if t not in forced]
        verdict = judge_model(make(candidate), reference, job.budget)
        print(f"  {count:2d} layers {label}: {verdict.line(job.budget)}")
        if verdict.verdict == "within":
            if candidate:
                names = ", ".join(short_name(t) for t in candidate)
                print(f"fallback: {len(candidate)} layer(s) {label} to meet the {budget}: {names}")
            return candidate, verdict
        tried.append((candidate, verdict))
        ranked = ranked() if callable(ranked) else ranked
        if count >= len(ranked):
            break
        count = _next_count(count, len(ranked))
    candidate, verdict = min(tried, key=lambda t: (t[1].drop_interval.high, -t[1].agreement, len(t[0])))
    print(f"fallback: the {budget} is not met with any set of layers {label}; the best tried has "
          f"{len(candidate)}")
    return candidate, verdict


def judge_model(model: bytes, reference, budget) -> Judgement:
    """The budget's verdict on a candidate TFLite model, on the reference's held-out images."""
    from .budget import judge
    from .verify import run_tflite_bytes

    pred = run_tflite_bytes(model, reference.split.images)
    return judge(reference.split.masks, reference.classes, pred, budget)


def _next_count(count: int, total: int) -> int:
    """Grow the set gently at first (usually one or two layers do it), then faster."""
    steps = [c for c in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64) if count < c < total]
    return steps[0] if steps else total


def short_name(tensor: str) -> str:
    """A fused op's tensor name lists every TF op folded into it; the first part names the layer."""
    return tensor.split(";")[0]
