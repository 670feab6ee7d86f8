"""Quantisation through the LiteRT Quantizer (``litert-quantizer``, formerly the AI Edge Quantizer, AEQ).

It is Google's maintained successor to the converter's quantisation; 0.11 is AEQ 0.10 renamed (the
same code under the package ``litert_quantizer``), so petseg's exports and repairs carried over
unchanged. It works on a float ``.tflite`` with a signature (signature.py) and needs no TensorFlow. One
calibration (float ranges per tensor) serves every recipe derived from it, so the fallback
search re-quantises in a fraction of a second per candidate. Layers are named by their output
tensor, exactly as in the float model.

Kinds: ``int8`` (int8 weights and activations), ``int16x8`` (int16 activations), ``wi8`` and
``wi4`` (weight-only; activations stay float). ``fallback`` maps layers to what they get
instead: ``float`` (NO_QUANTIZE), ``int16`` (int16 activations, int8 weights: integer-only) or
``int8-weights`` (for wi4).
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator

import numpy as np

from petseg.graph import MAC_OPS

from .aeq_repairs import repair
from .signature import INPUT_NAME, SIGNATURE_KEY
from .variant import one_at_a_time


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """AEQ draws progress bars it offers no switch for, and warns on every calibration."""
    from litert_quantizer.utils import progress_utils

    original = progress_utils.ProgressBar.__init__

    def silent(self, *args, **kwargs):
        kwargs["enable"] = False
        original(self, *args, **kwargs)

    progress_utils.ProgressBar.__init__ = silent
    try:
        with warnings.catch_warnings(), np.errstate(invalid="ignore", over="ignore"):
            # The bias overflow that aeq_repairs mends shows up as an invalid cast here.
            warnings.simplefilter("ignore")
            yield
    finally:
        progress_utils.ProgressBar.__init__ = original


def _samples(images: np.ndarray) -> dict:
    # A list, not a generator: AEQ counts the samples first and would exhaust a generator.
    return {SIGNATURE_KEY: [{INPUT_NAME: batch} for batch in one_at_a_time(images)]}


def activation_ranges(float_model: bytes, images: np.ndarray) -> dict:
    """Float ranges of every tensor over ``images``: the global min and max.

    AEQ's default keeps a moving average of per-image ranges, which lets the first images
    dominate a small set and clipped the input to [3, 234] in a probe; global min/max is what
    the converter's calibration does. The input range is pinned to the pixel range 0..255,
    so uint8 camera bytes map to the input with scale 1 exactly.
    """
    from litert_quantizer import calibrator, recipe, recipe_manager
    from litert_quantizer.utils import qsv_utils

    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(recipe.static_wi8_ai8())
    with _quiet():
        tool = calibrator.Calibrator(float_model, num_threads=1, qsv_update_func=qsv_utils.min_max_update)
        tool.calibrate(_samples(images), manager)
        ranges = dict(tool.get_model_qsvs())
    ranges[INPUT_NAME] = {"min": np.zeros((1, 1, 1, 1), np.float32),
                       "max": np.full((1, 1, 1, 1), 255.0, np.float32)}
    return ranges


def _one_op(tensor: str) -> str:
    """AEQ matches a regex against an op's output tensor names joined by ';' plus a final ';'."""
    return "^" + re.escape(tensor) + ";$"


def recipe_for(kind: str, io_type: str = "uint8", fallback: dict[str, str] | None = None) -> list:
    """The AEQ recipe: one rule for the whole model, then the graph ends, then per-layer fallbacks."""
    from litert_quantizer import qtyping as q
    from litert_quantizer import recipe_manager
    from litert_quantizer.quantizer import AlgorithmName

    manager, every = recipe_manager.RecipeManager(), q.TFLOperationName.ALL_SUPPORTED
    if kind in ("int8", "int16x8"):
        manager.add_static_config(".*", every, activation_num_bits=8 if kind == "int8" else 16,
                                  weight_num_bits=8)
        _graph_ends(manager, kind, io_type)
    elif kind in ("wi8", "wi4"):
        manager.add_weight_only_config(".*", every, num_bits=8 if kind == "wi8" else 4)
    else:
        raise ValueError(f"unknown AEQ kind {kind!r}")
    for tensor, how in (fallback or {}).items():
        if how == "float":
            manager.add_quantization_config(_one_op(tensor), every, algorithm_key=AlgorithmName.NO_QUANTIZE)
        elif how == "int16":
            manager.add_static_config(_one_op(tensor), every, activation_num_bits=16, weight_num_bits=8)
        elif how == "int8-weights":
            manager.add_weight_only_config(_one_op(tensor), every, num_bits=8)
        else:
            raise ValueError(f"unknown fallback {how!r}")
    return manager.get_quantization_recipe()


def _graph_ends(manager, kind: str, io_type: str) -> None:
    """uint8 camera bytes in and out (as the converter's int8), float ends, or the kind's own."""
    from litert_quantizer import qtyping as q
    from litert_quantizer.quantizer import AlgorithmName

    ends = (q.TFLOperationName.INPUT, q.TFLOperationName.OUTPUT)
    if io_type == "float32":
        for end in ends:
            manager.add_quantization_config(".*", end, algorithm_key=AlgorithmName.NO_QUANTIZE)
    elif io_type == "uint8" and kind == "int8":
        unsigned = q.OpQuantizationConfig(
            activation_tensor_config=q.TensorQuantizationConfig(8, symmetric=False,
                                                                dtype=q.TensorDataType.UINT),
            weight_tensor_config=q.TensorQuantizationConfig(8, symmetric=True,
                                                            granularity=q.QuantGranularity.CHANNELWISE),
            compute_precision=q.ComputePrecision.INTEGER)
        for end in ends:
            manager.add_quantization_config(".*", end, unsigned)


def quantize(float_model: bytes, kind: str, ranges: dict | None, io_type: str = "uint8",
             fallback: dict[str, str] | None = None) -> bytes:
    """The quantised model, repaired (aeq_repairs) and with its buffers inline."""
    from litert_quantizer import quantizer

    tool = quantizer.Quantizer(float_model, recipe_for(kind, io_type, fallback))
    with _quiet():
        result = tool.quantize(ranges if tool.need_calibration else None, enable_progress_report=False)
    return repair(float_model, bytes(result.quantized_model))


def tensor_errors(float_model: bytes, quantized: bytes, images: np.ndarray) -> dict[str, dict]:
    """AEQ's validation: per tensor of the float model, MSE, SNR and cosine similarity.

    Both models run end to end, so a tensor's error includes everything upstream of it.
    """
    from litert_quantizer import quantizer
    from litert_quantizer.quantizer import ValidationErrorMetric as metric

    tool = quantizer.Quantizer(float_model, previous_quantized_model=quantized)
    with _quiet():
        result = tool.validate(test_data=_samples(images), num_threads=1,
                               error_metrics=[metric.MSE, metric.SNR, metric.COSINE_SIMILARITY])
    return dict(result.get_signature_comparison_result(SIGNATURE_KEY).intermediate_tensors)


def weighted_layers(float_model: bytes) -> list[tuple[str, str]]:
    """(output tensor, op name) of every op with weights, in graph order; the tensor names the layer.

    The ops with weights are the multiply-accumulate ops (petseg.graph.MAC_OPS): what a fallback
    can meaningfully change.
    """
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(float_model))
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    graph, layers = model.subgraphs[0], []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "")
        if name in MAC_OPS:
            layers.append((graph.tensors[op.outputs[0]].name.decode(), name))
    return layers
