"""The TFLite variants petseg exports, and what each one is for."""

from __future__ import annotations

from dataclasses import dataclass

from petseg.errors import PetsegError

# Forms of the decoder's transposed convs (decoder.py), fastest first; all compute the same numbers.
DECODERS = ("winograd", "subpixel", "transpose-conv")


@dataclass(frozen=True)
class Variant:
    name: str
    summary: str
    calibrated: bool  # needs a representative dataset
    # No verdict on speed here: petseg-bench measures each variant and flags what it finds
    # (benchmark/report.py flags), since a fixed warning goes stale with the next decoder change.
    suffix: str = ".tflite"
    quantizer: str = "converter"  # aeq: only the AI Edge Quantizer makes it


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("fp32", "float32 weights and activations (the reference)", False),
    Variant("fp16", "float16 weights, float32 compute", False),
    Variant("int8", "full-integer int8, calibrated; uint8 camera bytes in and out", True),
    Variant("dynamic", "int8 weights, float activations (dynamic range)", False),
    Variant("int16x8", "int16 activations, int8 weights, calibrated", True),
    Variant("wi8", "int8 weights, float activations (weight-only, AI Edge Quantizer)", False,
            quantizer="aeq"),
    Variant("wi4", "int4 weights (channelwise) for convs, float activations (weight-only, AI Edge "
            "Quantizer); the most sensitive convs keep int8 weights", False, quantizer="aeq"),
    Variant("onnx", "ONNX float32 for ONNX Runtime (comparison; needs the onnx extra)", False,
            suffix=".onnx"),
    Variant("onnx-int8", "ONNX Runtime static int8, QDQ per-channel, same calibration images", True,
            suffix=".onnx"),
)}
TFLITE_VARIANTS = tuple(name for name, v in VARIANTS.items() if v.suffix == ".tflite")
DEFAULT_SET = ("fp32", "fp16", "int8")


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
