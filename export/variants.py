"""Every variant petseg exports: one object each, which builds it (variant.py says what that means).

Adding a variant is adding its object to VARIANTS. Where both quantizers make a variant,
OTHER_QUANTIZER holds the second maker; a variant only one quantizer makes ignores --quantizer.
"""

from __future__ import annotations

from petseg.errors import PetsegError

from .aeq_variants import AeqInt8, AeqInt16x8, AeqVariant, Int4Weights
from .budget import MAX_DROP, MIN_AGREEMENT  # noqa: F401 - the command line's defaults
from .converter import FloatVariant, Int8Variant, Int16x8Variant
from .onnx_export import OnnxVariant
from .variant import Variant

# Forms of the decoder's transposed convs (decoder.py), fastest first; all compute the same numbers.
DECODERS = ("winograd", "subpixel", "transpose-conv")
QUANTIZERS = ("converter", "aeq")

_INT8 = "full-integer int8, calibrated; float32 pixels in and logits out, or as --io-type says"
_INT16X8 = "int16 activations, int8 weights, calibrated"

# The variants, each with the maker --quantizer auto uses (measured, see docs/performance.md).
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    FloatVariant("fp32", "float32 weights and activations (the reference)"),
    FloatVariant("fp16", "float16 weights, float32 compute", weights="float16"),
    Int8Variant("int8", _INT8),
    FloatVariant("dynamic", "int8 weights, float activations (dynamic range)", weights="int8"),
    AeqInt16x8("int16x8", _INT16X8),
    AeqVariant("wi8", "int8 weights, float activations (weight-only, LiteRT Quantizer)",
               static=False, fallback="float", label="in float"),
    Int4Weights("wi4", "int4 weights (channelwise) for convs, float activations (weight-only, LiteRT "
                "Quantizer); the most sensitive convs keep int8 weights"),
    OnnxVariant("onnx", "ONNX float32 for ONNX Runtime (comparison; needs the onnx extra)", quantized=False),
    OnnxVariant("onnx-int8", "ONNX Runtime static int8, QDQ per-channel, same calibration images",
                quantized=True),
)}
# The other quantizer's maker, for the variants both quantizers make (--quantizer converter|aeq).
OTHER_QUANTIZER: dict[tuple[str, str], Variant] = {
    ("int8", "aeq"): AeqInt8("int8", _INT8),
    ("int16x8", "converter"): Int16x8Variant("int16x8", _INT16X8),
}
DEFAULT_SET = ("fp32", "fp16", "int8")
# int8's input and output type. float32 (QUANTIZE and DEQUANTIZE inside the model, both inside XNNPACK)
# is the one arrangement every client runs as measured (issue 21): uint8 output fails on MediaPipe
# web's GPU delegate and LiteRT.js's WebGPU, uint8 input runs there but computes wrong masks on
# MediaPipe's GPU. The logits are bit-identical to uint8's (0..255 pixels are exact at scale 1).
# --integer-only promises no float tensor at all (NPUs, DSPs, microcontrollers): uint8 ends there.
INT8_IO_TYPE = "float32"
INTEGER_ONLY_IO_TYPE = "uint8"


def int8_io_type(given: str | None, integer_only: bool) -> str:
    """int8's input and output type: --io-type if given, else what the kind of int8 file needs."""
    return given or (INTEGER_ONLY_IO_TYPE if integer_only else INT8_IO_TYPE)


# Training images held out of calibration and added to the verification images: 30 validation
# images cannot certify a budget of a few tenths of a point (budget.py). At most a quarter of the
# training images, so that small datasets keep most of theirs for calibration.
HOLDOUT_IMAGES = 64


def pick(name: str, quantizer: str = "auto") -> Variant:
    """The maker of ``name`` for ``--quantizer``; --integer-only changes the maker's settings, not it."""
    return OTHER_QUANTIZER.get((name, quantizer)) or VARIANTS[name]


def tflite_variants() -> list[str]:
    return [name for name, v in VARIANTS.items() if v.suffix == ".tflite"]


def parse_variants(values: list[str]) -> list[str]:
    """Accept 'int8', 'fp32,int8', several flags, or 'all'; keep the order given, no repeats."""
    names: list[str] = []
    for value in values:
        for name in filter(None, (v.strip().lower() for v in value.split(","))):
            # 'all' means every TFLite variant; ONNX ones are asked for by name (optional extra).
            expanded = tflite_variants() if name == "all" else [name]
            for n in expanded:
                if n not in VARIANTS:
                    raise PetsegError(f"unknown variant {n!r}; choose from {', '.join(VARIANTS)} or all")
                if n not in names:
                    names.append(n)
    if not names:
        raise PetsegError(f"--quantize needs a variant: {', '.join(VARIANTS)} or all")
    return names
