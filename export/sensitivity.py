"""When int8 hurts: the per-layer quantisation error that ranks layers for the fallback (fallback.py).

The per-layer figures are TFLite's QuantizationDebugger's (RMSE of each quantised
tensor against its float value, divided by the tensor's scale: about 0.29 is the
unavoidable rounding error of a uniform quantiser), computed in LiteRT.
"""

from __future__ import annotations

import numpy as np

from petseg.runtime import load_runtime
from petseg.table import csv_text, format_table

from .fallback import RANK_IMAGES, short_name
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


def layer_report(calibrated: bytes, images: np.ndarray, top: int = 10) -> str:
    """The per-layer error table as CSV text (the pipeline publishes it with the model); prints the worst."""
    rows = layer_errors(calibrated, images[:RANK_IMAGES])
    print(f"int8 per-layer error ({len(rows)} tensors), worst {top}:")
    print(format_table(["tensor (first part)", "op", "RMSE/scale"],
                       [[short_name(r["tensor"]), r["op"], f"{r['rmse_over_scale']:.3f}"]
                        for r in rows[:top]]))
    print("keep any of them in float with --keep-float NAME, or let --max-drop choose")
    return csv_text(rows, list(rows[0]))
