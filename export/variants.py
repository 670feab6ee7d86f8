"""Every variant petseg exports: one object each, which builds it (variant.py says what that means).

A variant name can have one maker per quantizer: ``--quantizer auto`` takes the first listed
(measured, see docs/performance.md), and a variant only one quantizer makes ignores the flag.
"""

from __future__ import annotations

from petseg.errors import PetsegError

from .aeq_variants import AeqInt8, AeqInt16x8, AeqVariant, Int4Weights
from .converter import FloatVariant, Int8Variant, Int16x8Variant
from .onnx_export import OnnxVariant
from .variant import Variant

# Forms of the decoder's transposed convs (decoder.py), fastest first; all compute the same numbers.
DECODERS = ("winograd", "subpixel", "transpose-conv")
QUANTIZERS = ("converter", "aeq")

_INT8 = "full-integer int8, calibrated; uint8 camera bytes in and out"
_INT16X8 = "int16 activations, int8 weights, calibrated"

# name -> {quantizer: maker}; the first maker is the one --quantizer auto picks.
MAKERS: dict[str, dict[str, Variant]] = {
    "fp32": {"converter": FloatVariant("fp32", "float32 weights and activations (the reference)")},
    "fp16": {"converter": FloatVariant("fp16", "float16 weights, float32 compute", weights="float16")},
    "int8": {"converter": Int8Variant("int8", _INT8), "aeq": AeqInt8("int8", _INT8)},
    "dynamic": {"converter": FloatVariant("dynamic", "int8 weights, float activations (dynamic range)",
                                          weights="int8")},
    "int16x8": {"aeq": AeqInt16x8("int16x8", _INT16X8), "converter": Int16x8Variant("int16x8", _INT16X8)},
    "wi8": {"aeq": AeqVariant("wi8", "int8 weights, float activations (weight-only, AI Edge Quantizer)",
                              static=False, fallback="float", label="in float")},
    "wi4": {"aeq": Int4Weights("wi4", "int4 weights (channelwise) for convs, float activations (weight-"
                               "only, AI Edge Quantizer); the most sensitive convs keep int8 weights")},
    "onnx": {"onnx": OnnxVariant("onnx", "ONNX float32 for ONNX Runtime (comparison; needs the onnx extra)",
                                 quantized=False)},
    "onnx-int8": {"onnx": OnnxVariant("onnx-int8", "ONNX Runtime static int8, QDQ per-channel, same "
                                      "calibration images", quantized=True)},
}
VARIANTS: dict[str, Variant] = {name: next(iter(makers.values())) for name, makers in MAKERS.items()}
TFLITE_VARIANTS = tuple(name for name, v in VARIANTS.items() if v.suffix == ".tflite")
DEFAULT_SET = ("fp32", "fp16", "int8")


def pick(name: str, quantizer: str = "auto", integer_only: bool = False) -> Variant:
    """The maker of ``name`` for ``--quantizer`` (--integer-only int8 is the AI Edge Quantizer's)."""
    makers = MAKERS[name]
    if integer_only and name == "int8":
        quantizer = "aeq"
    return makers.get(quantizer) or VARIANTS[name]


def parse_variants(values: list[str]) -> list[str]:
    """Accept 'int8', 'fp32,int8', several flags, or 'all'; keep the order given, no repeats."""
    names: list[str] = []
    for value in values:
        for name in filter(None, (v.strip().lower() for v in value.split(","))):
            # 'all' means every TFLite variant; ONNX ones are asked for by name (optional extra).
            expanded = list(TFLITE_VARIANTS) if name == "all" else [name]
            for n in expanded:
                if n not in VARIANTS:
                    raise PetsegError(f"unknown variant {n!r}; choose from {', '.join(VARIANTS)} or all")
                if n not in names:
                    names.append(n)
    if not names:
        raise PetsegError(f"--quantize needs a variant: {', '.join(VARIANTS)} or all")
    return names
