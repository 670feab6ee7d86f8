"""Variants quantised by the AI Edge Quantizer: int8, int16x8, weight-only wi8 and wi4.

Each starts from the same float graph the converter variants use (frozen weights, batch 1,
sub-pixel decoder), with the serving signature AEQ addresses models by, and goes through the
same fallback search as the converter's int8 (sensitivity.search_fallback): what a layer gets
instead depends on the variant.

- int8: layers kept in float, or with ``--integer-only`` given int16 activations (int8 weights);
  its depth-to-space is written as reshape/transpose (shuffle.py) so that nothing stays float.
- int16x8: layers kept in float; the variant exists to sit close to fp32 (its budget asks for at
  least 99.5 % agreement).
- wi8: layers kept in float.
- wi4: the most sensitive convs keep int8 weights.
"""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import replace

import keras
import numpy as np

from petseg import atomic
from petseg.errors import PetsegError

from . import aeq, convert
from .sensitivity import layer_errors, resolve, search_fallback, short_name
from .shuffle import reshaped_shuffles
from .signature import add_serving_signature

INT16X8_MIN_AGREEMENT = 99.5  # percent of pixels; an int16 reference that misses this is no reference


def require() -> None:
    try:
        import ai_edge_quantizer  # noqa: F401
    except ImportError as exc:
        raise PetsegError("this variant needs the AI Edge Quantizer: pip install 'petseg[train]' "
                          "(for int8 and int16x8 --quantizer converter works without it)") from exc


def float_graph(model: keras.Model, reshaped: bool, form: str = "subpixel") -> bytes:
    """The fp32 graph (decoder in ``form``) with its serving signature, depth-to-space reshaped if asked."""
    with reshaped_shuffles() if reshaped else contextlib.nullcontext():
        return add_serving_signature(convert.convert_float(model, "fp32", form))


def build(name: str, model: keras.Model, calib: np.ndarray, job, reference,
          form: str = "subpixel") -> tuple[bytes, dict]:
    """The flatbuffer for an AEQ variant, and what its metadata should record."""
    require()
    static = name in ("int8", "int16x8")
    graph = float_graph(model, static, form)
    ranges = aeq.calibrate(graph, calib) if static else None
    fallback_kind = _fallback_kind(name, job)
    searching = fallback_kind and (job.max_drop is not None or job.keep_float)
    ranked = _ranked(name, model, graph, calib, form) if searching else []

    def make(layers: list[str]) -> bytes:
        return aeq.quantize(graph, name, ranges, job.io_type if name == "int8" else "float32",
                            {layer: fallback_kind for layer in layers})

    layers = _choose(name, ranked, make, job, reference)
    quantized = make(layers)
    if job.report:
        write_report(graph, quantized, calib, job.out / f"{name}_aeq_tensor_report.csv")
    extra = {"quantizer": f"ai-edge-quantizer {_version()}", "decoder": form,
             "fallback": {"kind": fallback_kind, "layers": [short_name(t) for t in layers]}}
    if name == "int8":
        extra["integer_only"] = job.integer_only
    return quantized, extra


def _fallback_kind(name: str, job) -> str | None:
    if name == "int8":
        return "int16" if job.integer_only else "float"
    return {"int16x8": "float", "wi8": "float", "wi4": "int8-weights"}[name]


def _ranked(name: str, model: keras.Model, graph: bytes, calib: np.ndarray, form: str) -> list[str]:
    """Layers worst first.

    int8, int16x8 and wi8 use the converter's per-layer debugger on the same graph: it measures
    each layer with float inputs, so the first depthwise conv, whose int8 weights cost the
    trained model two points of agreement, comes out on top. AEQ's own validation accumulates
    error along the graph and blames the layers after it. wi4 is ranked by measurement.
    """
    if name == "wi4":
        return _rank_int4_convs(graph, calib[:8])
    with reshaped_shuffles():
        calibrated = convert.calibrate(model, calib, form)
    # Two traces of one model may name its layers differently ("encoder_1/..." in one,
    # "petseg_unet_1/encoder_1/..." in the other), but the ops come in the same order.
    ours, theirs = aeq.weighted_layers(graph), aeq.weighted_layers(calibrated)
    if [op for _, op in ours] != [op for _, op in theirs]:
        raise PetsegError("the calibrated graph's layers differ from the float graph's (a bug: report it)")
    rename = {their[0]: our[0] for our, their in zip(ours, theirs)}
    return [rename[r["tensor"]] for r in layer_errors(calibrated, calib[:32]) if r["tensor"] in rename]


def _rank_int4_convs(graph: bytes, images: np.ndarray) -> list[str]:
    """Convs by the damage their int4 weights do alone: each in turn is the only int4 layer.

    Only CONV_2D gets int4 weights (AEQ leaves depthwise convs in float). Neither AEQ's
    accumulated validation nor the weights' own rounding error ranked them usefully on the
    trained model (the early encoder convs matter most, the large decoder convs little); the
    measurement does, at one quantisation per conv.
    """
    from .verify import run_tflite_bytes

    convs = [out for out, op in aeq.weighted_layers(graph) if op == "CONV_2D"]
    reference = run_tflite_bytes(graph, images)
    damage = {}
    for conv in convs:
        alone = aeq.quantize(graph, "wi4", None, "float32",
                             {other: "int8-weights" for other in convs if other != conv})
        damage[conv] = float(np.mean(run_tflite_bytes(alone, images) != reference))
    return sorted(convs, key=lambda c: -damage[c])


def _choose(name: str, ranked: list[str], make, job, reference) -> list[str]:
    forced = resolve(job.keep_float, ranked) if job.keep_float and ranked else []
    if not ranked or job.max_drop is None:
        return forced
    budget = job
    if name == "int16x8":
        budget = replace(job, min_agreement=max(job.min_agreement, INT16X8_MIN_AGREEMENT))
    label = {"int8": "in int16" if job.integer_only else "in float", "int16x8": "in float",
             "wi8": "in float", "wi4": "with int8 weights"}[name]
    return search_fallback(ranked, make, budget, reference, forced, label)


def write_report(graph: bytes, quantized: bytes, calib: np.ndarray, dest) -> None:
    """AEQ's per-tensor validation (MSE, SNR, cosine; error accumulated from the input on)."""
    errors = aeq.tensor_errors(graph, quantized, calib[:16])
    rows = sorted(({"tensor": t, **{k: float(v) for k, v in e.items()}} for t, e in errors.items()),
                  key=lambda r: r.get("snr", np.inf))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["tensor", "mse", "snr", "cosine_similarity"],
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(dest, text.getvalue())
    print(f"AEQ per-tensor validation ({len(rows)} tensors, worst SNR first) written to {dest}")


def _version() -> str:
    from petseg.environment import package_version

    return package_version("ai-edge-quantizer") or "?"
