"""The settings an export is made with, in the small groups the variants use, and their defaults.

Each maker gets the groups it reads (BuildInputs in variant.py), never the whole command line; the
command line (cli.py) takes its defaults from here, so each default is written once. Nothing else in
export/ is imported here: every stage may import this module, and it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# Forms of the decoder's transposed convs (decoder.py), fastest first; all compute the same numbers.
DECODERS = ("winograd", "subpixel", "transpose-conv")
QUANTIZERS = ("converter", "aeq")
IO_TYPES = ("uint8", "int8", "float32")
# int8 activation ranges: chosen by int8 error (activation_ranges.py), or the calibration's min..max.
ACTIVATION_RANGES = ("mse", "minmax")

# The default budget: mIoU points lost, and pixels agreeing with Keras (a fraction).
MAX_DROP = 0.3
MIN_AGREEMENT = 0.985

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


@dataclass(frozen=True)
class Budget:
    """mIoU points a variant may lose against Keras, and the share of pixels it must agree on."""

    max_drop: float | None = MAX_DROP  # None: no limit on the drop (and no fallback search)
    min_agreement: float = MIN_AGREEMENT

    def at_least(self, min_agreement: float) -> Budget:
        """This budget, asking for at least ``min_agreement`` (a variant with a stricter floor)."""
        return replace(self, min_agreement=max(self.min_agreement, min_agreement))

    def as_text(self) -> str:
        drop = "any drop" if self.max_drop is None else f"drop <= {self.max_drop:g} points"
        return f"budget ({drop}, agreement >= {100 * self.min_agreement:g}%)"


@dataclass(frozen=True)
class Fallback:
    """What a quantised variant may do when quantising every layer misses its budget."""

    budget: Budget = field(default_factory=Budget)
    keep_float: tuple[str, ...] = ()  # layers the user keeps in float (--keep-float), by name part
    integer_only: bool = False  # no float layer anywhere: the converter's int8 searches nothing

    @property
    def searching(self) -> bool:
        """Whether the fallback search runs (--max-drop off turns it off)."""
        return self.budget.max_drop is not None


@dataclass(frozen=True)
class Build:
    """How the variants' graphs are made."""

    decoder: str = "auto"  # a form of DECODERS, or auto: each variant's fastest exact form
    io_type: str = INT8_IO_TYPE  # int8's ends
    bias_correction: bool = True  # int8: fitted rounding and bias correction (bias_correction.py)
    report: bool = False  # per-layer error tables, published beside the model
    activation_ranges: str = "mse"  # int8: mse (activation_ranges.py) or minmax (the calibration's)


@dataclass(frozen=True)
class Sampling:
    """Which images calibrate and verify the variants."""

    calibration_samples: int = 300  # training images for calibration (all of them if fewer)
    verify_images: int = 64  # validation images each variant is checked on
    # Training images held out of calibration and added to the verification images: 30 validation
    # images cannot certify a budget of a few tenths of a point (budget.py). At most a quarter of the
    # training images, so that small datasets keep most of theirs for calibration.
    holdout_images: int = 64
    seed: int = 0  # chooses the calibration and held-out images
