"""When int8 hurts: per-layer quantisation error, and keeping the worst layers in float.

The per-layer figures come from TFLite's QuantizationDebugger (RMSE of each
quantised tensor against its float value, divided by the tensor's scale: about
0.29 is the unavoidable rounding error of a uniform quantiser).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import convert as _convert

from petseg import atomic
from petseg.errors import PetsegError
from petseg.metrics import confusion, scores
from petseg.table import format_table

from . import convert


def layer_errors(calibrated: bytes, images: np.ndarray) -> list[dict]:
    """Per-tensor quantisation error, worst first."""
    debug_model = _convert.mlir_quantize(calibrated, enable_numeric_verify=True)

    def dataset():
        for image in images:
            yield [image[None].astype(np.float32)]

    debugger = tf.lite.experimental.QuantizationDebugger(
        quant_debug_model_content=debug_model, debug_dataset=dataset)
    debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    rows = []
    for r in csv.DictReader(io.StringIO(buffer.getvalue())):
        scale = float(r["scale"])
        rows.append({"tensor": r["tensor_name"], "op": r["op_name"], "scale": scale,
                     "rmse_over_scale": np.sqrt(float(r["mean_squared_error"])) / scale if scale else 0.0,
                     "max_abs_error": float(r["max_abs_error"])})
    return sorted(rows, key=lambda r: -r["rmse_over_scale"])


def write_report(calibrated: bytes, images: np.ndarray, dest: Path, top: int = 10) -> list[dict]:
    """Write the per-layer CSV and print the worst layers."""
    rows = layer_errors(calibrated, images[:32])
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(dest, text.getvalue())
    print(f"int8 per-layer error ({len(rows)} tensors) written to {dest}; worst {top}:")
    # A fused op's tensor name lists every TF op folded into it; its first part names the layer.
    print(format_table(["tensor (first part)", "op", "RMSE/scale"],
                       [[r["tensor"].split(";")[0], r["op"], f"{r['rmse_over_scale']:.3f}"]
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


def search_keep_float(calibrated: bytes, calib: np.ndarray, job, reference) -> list[str]:
    """The fewest worst layers to keep in float so that int8 stays within its budget.

    The budget is two figures on held-out (validation) images, never test: mIoU
    within ``job.max_drop`` points of Keras, and pixel agreement with Keras of at
    least ``job.min_agreement`` percent. Agreement needs no labels and is the
    steadier of the two on a small validation split (30 images here: -0.19 mIoU
    points there came out as -0.73 on the test split, while agreement moved by 0.1).
    Layers are added in order of their quantisation error.
    """
    from petseg.metrics import agreement

    from .verify import run_tflite_bytes

    ranked = [r["tensor"] for r in layer_errors(calibrated, calib[:32])]
    keep = resolve(job.keep_float, ranked)
    # Grow the float set gently at first (usually one or two layers do it), then faster.
    counts = sorted({c for c in (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64) if c < len(ranked)}
                    | {len(ranked)})
    for count in counts:
        candidate = keep + [t for t in ranked[:count] if t not in keep]
        flatbuffer = convert.quantize_int8(calibrated, job.io_type, candidate)
        pred = run_tflite_bytes(flatbuffer, reference.split.images)
        drop = 100 * (reference.miou - scores(confusion(reference.split.masks, pred))["mean_iou"])
        agree = 100 * agreement(pred, reference.classes)
        print(f"  keep-float {count:2d} layers: mIoU change {-drop:+.2f} points, agreement {agree:.2f}%")
        if drop <= job.max_drop and agree >= job.min_agreement:
            print(f"--max-drop {job.max_drop} --min-agreement {job.min_agreement}: kept "
                  f"{len(candidate)} layer(s) in float: {', '.join(candidate) or 'none'}")
            return candidate
    print(f"--max-drop {job.max_drop} --min-agreement {job.min_agreement}: not met even with every "
          f"layer in float; kept all {len(candidate)} (the verification figures show the result)")
    return candidate
