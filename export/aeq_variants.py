"""Variants the LiteRT Quantizer (formerly AI Edge Quantizer, AEQ) makes: int8, int16x8, wi8 and wi4.

Each starts from the same float graph the converter variants use (frozen weights, batch 1,
sub-pixel decoder), with the serving signature AEQ addresses models by, and goes through the
same fallback policy as the converter's int8 (fallback.choose_layers): what a layer gets instead
depends on the variant.

- int8: layers kept in float, or with ``--integer-only`` given int16 activations (int8 weights);
  its depth-to-space is written as reshape/transpose (shuffle.py) so that nothing stays float.
- int16x8: layers kept in float; the variant exists to sit close to fp32 (its budget asks for at
  least 99.5 % agreement).
- wi8: layers kept in float.
- wi4: the most sensitive convs keep int8 weights.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING

import numpy as np

from petseg.errors import PetsegError
from petseg.table import csv_text

from . import aeq
from .converter import calibrated_flatbuffer, float_graph
from .fallback import RANK_IMAGES, choose_layers, short_name
from .sensitivity import layer_errors
from .variant import BuildInputs, Built, Variant

if TYPE_CHECKING:
    import keras

    from .settings import Build, Fallback

QUANTIZER_PACKAGE = "litert-quantizer"  # its distribution name, as the description records it
INT16X8_MIN_AGREEMENT = 0.995  # of pixels; an int16 reference that misses this is no reference


def require() -> None:
    try:
        import litert_quantizer  # noqa: F401
    except ImportError as exc:
        raise PetsegError("this variant needs the LiteRT Quantizer: pip install 'petseg[train]' "
                          "(for int8 and int16x8 --quantizer converter works without it)") from exc


def signed_graph(model: keras.Model, reshaped: bool, form: str = "subpixel") -> bytes:
    """The fp32 graph (decoder in ``form``) with its serving signature, depth-to-space reshaped if asked."""
    from .shuffle import reshaped_shuffles
    from .signature import add_serving_signature

    with reshaped_shuffles() if reshaped else contextlib.nullcontext():
        return add_serving_signature(float_graph(model, form))


class AeqVariant(Variant):
    """A variant the LiteRT Quantizer makes, and what its fallback gives a layer instead."""

    auto_decoder = "subpixel"
    min_agreement = 0.0  # a floor on the budget's agreement, for variants that must sit close to fp32

    def __init__(self, name: str, summary: str, static: bool, fallback: str, label: str) -> None:
        super().__init__(name, summary)
        self.calibrated = static  # activation ranges from the calibration images
        self.fallback, self.label = fallback, label  # AEQ's fallback kind; how the search says it

    def fallback_kind(self, fallback: Fallback) -> tuple[str, str]:
        """What a layer that falls back gets (AEQ's name for it), and how the search says so."""
        return self.fallback, self.label

    def build(self, inputs: BuildInputs) -> Built:
        require()
        form = self.decoder_form(inputs)
        graph = signed_graph(inputs.model, self.calibrated, form)
        ranges = aeq.activation_ranges(graph, inputs.calib) if self.calibrated else None
        kind, label = self.fallback_kind(inputs.fallback)

        def make(layers: list[str]) -> bytes:
            return aeq.quantize(graph, self.name, ranges, self.io_type(inputs.build),
                                {layer: kind for layer in layers})

        ranked = functools.cache(lambda: self.ranked(inputs, graph))
        layers = choose_layers(ranked, make, inputs.fallback, inputs.reference, label,
                               budget=inputs.fallback.budget.at_least(self.min_agreement))
        quantized = make(layers)
        reports = ({f"{self.name}_aeq_tensor_report.csv": tensor_report(graph, quantized, inputs.calib)}
                   if inputs.build.report else {})
        return Built(quantized, {"quantizer": f"{QUANTIZER_PACKAGE} {_version()}", "decoder": form,
                                 "fallback": {"kind": kind, "layers": [short_name(t) for t in layers]}},
                     reports)

    def io_type(self, build: Build) -> str:
        return "float32"

    def ranked(self, inputs: BuildInputs, graph: bytes) -> list[str]:
        """The layers worst first, for the fallback."""
        return _ranked_by_debugger(inputs.model, graph, inputs.calib, self.decoder_form(inputs))


class AeqInt8(AeqVariant):
    """int8; with --integer-only the fallback is int16 activations instead of float."""

    def __init__(self, name: str, summary: str) -> None:
        super().__init__(name, summary, static=True, fallback="float", label="in float")

    def fallback_kind(self, fallback: Fallback) -> tuple[str, str]:
        return ("int16", "in int16") if fallback.integer_only else (self.fallback, self.label)

    def io_type(self, build: Build) -> str:
        return build.io_type

    def build(self, inputs: BuildInputs) -> Built:
        built = super().build(inputs)
        built.details["integer_only"] = inputs.fallback.integer_only
        return built


class AeqInt16x8(AeqVariant):
    """int16x8 is the accuracy reference: its budget asks for at least INT16X8_MIN_AGREEMENT."""

    min_agreement = INT16X8_MIN_AGREEMENT

    def __init__(self, name: str, summary: str) -> None:
        super().__init__(name, summary, static=True, fallback="float", label="in float")


class Int4Weights(AeqVariant):
    """wi4: its convs are ranked by measurement (_rank_int4_convs), the worst keep int8 weights."""

    def __init__(self, name: str, summary: str) -> None:
        super().__init__(name, summary, static=False, fallback="int8-weights", label="with int8 weights")

    def ranked(self, inputs: BuildInputs, graph: bytes) -> list[str]:
        return _rank_int4_convs(graph, inputs.calib[:8])


def _ranked_by_debugger(model: keras.Model, graph: bytes, calib: np.ndarray, form: str) -> list[str]:
    """Layers worst first.

    int8, int16x8 and wi8 use the converter's per-layer debugger on the same graph: it measures
    each layer with float inputs, so the first depthwise conv, whose int8 weights cost the
    trained model two points of agreement, comes out on top. AEQ's own validation accumulates
    error along the graph and blames the layers after it. wi4 is ranked by measurement.
    """
    from .shuffle import reshaped_shuffles

    with reshaped_shuffles():
        calibrated = calibrated_flatbuffer(model, calib, form)
    # Two traces of one model may name its layers differently ("encoder_1/..." in one,
    # "petseg_unet_1/encoder_1/..." in the other), but the ops come in the same order.
    ours, theirs = aeq.weighted_layers(graph), aeq.weighted_layers(calibrated)
    if [op for _, op in ours] != [op for _, op in theirs]:
        raise PetsegError("the calibrated graph's layers differ from the float graph's (a bug: report it)")
    rename = {their[0]: our[0] for our, their in zip(ours, theirs)}
    errors = layer_errors(calibrated, calib[:RANK_IMAGES])
    return [rename[r["tensor"]] for r in errors if r["tensor"] in rename]


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


def tensor_report(graph: bytes, quantized: bytes, calib: np.ndarray) -> str:
    """AEQ's per-tensor validation as CSV text (MSE, SNR, cosine; error accumulated from the input on)."""
    errors = aeq.tensor_errors(graph, quantized, calib[:16])
    rows = sorted(({"tensor": t, **{k: float(v) for k, v in e.items()}} for t, e in errors.items()),
                  key=lambda r: r.get("snr", np.inf))
    print(f"AEQ per-tensor validation: {len(rows)} tensors, worst SNR first")
    return csv_text(rows, ["tensor", "mse", "snr", "cosine_similarity"])


def _version() -> str:
    from petseg.environment import package_version

    return package_version(QUANTIZER_PACKAGE) or "?"
