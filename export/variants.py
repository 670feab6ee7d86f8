"""Every variant petseg exports, by name: what it is, and which maker builds it (variant.py says what
a maker is).

The table names each maker by module and class, and a maker's module is imported only when its
variant is built: ``petseg-export --quantize int8`` loads the converter's makers, not the LiteRT
Quantizer's or ONNX's. Where both quantizers make a variant, OTHER_QUANTIZER holds the second
maker; a variant only one quantizer makes ignores --quantizer. Adding a variant is adding a row.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from petseg.errors import PetsegError
from petseg.modelfile import variant_suffix

if TYPE_CHECKING:
    from .variant import Variant


@dataclass(frozen=True)
class Maker:
    """A variant's maker: ``cls`` in export/``module``.py, made with ``options``."""

    name: str
    summary: str
    module: str
    cls: str
    options: dict = field(default_factory=dict)

    def make(self) -> Variant:
        module = importlib.import_module(f".{self.module}", __package__)
        return getattr(module, self.cls)(self.name, self.summary, **self.options)


_INT8 = "full-integer int8, calibrated; float32 pixels in and logits out, or as --io-type says"
_INT16X8 = "int16 activations, int8 weights, calibrated"

# The variants, each with the maker --quantizer auto uses (measured, see docs/performance.md).
VARIANTS: dict[str, Maker] = {m.name: m for m in (
    Maker("fp32", "float32 weights and activations (the reference)", "converter", "FloatVariant"),
    Maker("fp16", "float16 weights, float32 compute", "converter", "FloatVariant", {"weights": "float16"}),
    Maker("int8", _INT8, "converter", "Int8Variant"),
    Maker("dynamic", "int8 weights, float activations (dynamic range)", "converter", "FloatVariant",
          {"weights": "int8"}),
    Maker("int16x8", _INT16X8, "aeq_variants", "AeqInt16x8"),
    Maker("wi8", "int8 weights, float activations (weight-only, LiteRT Quantizer)", "aeq_variants",
          "AeqVariant", {"static": False, "fallback": "float", "label": "in float"}),
    Maker("wi4", "int4 weights (channelwise) for convs, float activations (weight-only, LiteRT "
          "Quantizer); the most sensitive convs keep int8 weights", "aeq_variants", "Int4Weights"),
    Maker("onnx", "ONNX float32 for ONNX Runtime (comparison; needs the onnx extra)", "onnx_export",
          "OnnxVariant", {"quantized": False}),
    Maker("onnx-int8", "ONNX Runtime static 8-bit (uint8 activations and weights), QDQ per-channel, "
          "same calibration images", "onnx_export",
          "OnnxVariant", {"quantized": True}),
)}
# The other quantizer's maker, for the variants both quantizers make (--quantizer converter|aeq).
OTHER_QUANTIZER: dict[tuple[str, str], Maker] = {
    ("int8", "aeq"): Maker("int8", _INT8, "aeq_variants", "AeqInt8"),
    ("int16x8", "converter"): Maker("int16x8", _INT16X8, "converter", "Int16x8Variant"),
}
DEFAULT_SET = ("fp32", "fp16", "int8")


def pick(name: str, quantizer: str = "auto") -> Variant:
    """The maker of ``name`` for ``--quantizer``, made; --integer-only changes its settings, not it."""
    return (OTHER_QUANTIZER.get((name, quantizer)) or VARIANTS[name]).make()


def tflite_variants() -> list[str]:
    return [name for name in VARIANTS if variant_suffix(name) == ".tflite"]


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
