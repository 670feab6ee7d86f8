"""Model sizes: one shared MobileNetV2 encoder, decoders from the tutorial's down to a phone-class one.

A size fixes the architecture only; its training recipe is in recipe.py. The measured trade-off
(accuracy, MACs, latency per size) is the README's Pareto table, from ``make pareto``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from petseg.errors import PetsegError

# Decoder blocks, each doubling the resolution of what it is given:
# - transpose: 3x3 stride-2 transposed conv, batch norm, ReLU (the pix2pix block; 9 taps per input
#   pixel over the full concatenation, so most of the seed's MACs)
# - bilinear: 1x1 conv, batch norm, ReLU at the low resolution, then bilinear x2 (9x fewer MACs than
#   transpose; spatial detail comes from the encoder skips it is concatenated with)
# - separable: 3x3 depthwise, batch norm, ReLU before the bilinear block's 1x1 conv (3x3 context for
#   a few more MACs; XNNPACK runs depthwise convs far below its GEMM rate)
BLOCKS = ("transpose", "bilinear", "separable")
# Logits heads: a 3x3 stride-2 transposed conv to the three classes, or a 1x1 conv at the last
# decoder resolution whose logits are resized bilinearly to the image.
HEADS = ("transpose", "bilinear")
# Encoder widths (MobileNetV2's alpha): 1.0 is the pretrained network; the thinner ones are pruned
# from it (prune.py), as Keras' own alpha-0.35..0.75 weights need a download.
ENCODER_WIDTHS = (1.0, 0.75, 0.5, 0.35)


@dataclass(frozen=True)
class Size:
    """One model size: the decoder the shared encoder feeds, and the encoder's input scale."""

    name: str
    decoder_filters: tuple[int, ...]  # one per decoder block, coarse to fine; distinct (they name layers)
    block: str | tuple[str, ...] = "transpose"  # one kind for every block, or one per block
    head: str = "transpose"
    # The encoder sees the image resized to this fraction of its side (1 = as is); its cost falls
    # with the square. Output and labels stay at the full image size.
    encoder_scale: float = 1.0
    # The encoder's channel width, one of ENCODER_WIDTHS (MobileNetV2's alpha).
    encoder_width: float = 1.0

    def __post_init__(self) -> None:
        # A wrong size definition is a programming error, not bad user input: fail at import.
        # Four blocks, one per skip: the encoder has five taps and the deepest feeds the first block.
        four = len(set(self.decoder_filters)) == len(self.decoder_filters) == len(self.blocks) == 4
        if not (four and set(self.blocks) <= set(BLOCKS) and self.head in HEADS
                and 0 < self.encoder_scale <= 1 and self.encoder_width in ENCODER_WIDTHS):
            raise ValueError(f"invalid model size {self}")

    @property
    def blocks(self) -> tuple[str, ...]:
        """The kind of each decoder block, coarse to fine."""
        if isinstance(self.block, str):
            return (self.block,) * len(self.decoder_filters)
        return tuple(self.block)

    def encoder_size(self, image_size: int) -> int:
        """The encoder's input side; a multiple of 32, so that its five taps halve evenly."""
        side = round(image_size * self.encoder_scale)
        if side % 32 == 0 and side >= 32:
            return side
        if self.encoder_scale == 1:
            raise PetsegError(f"--image-size {image_size} must be a multiple of 32 (the encoder halves it "
                              "five times), e.g. 128")
        raise PetsegError(f"size {self.name!r} runs its encoder at {self.encoder_scale:g}x the image side, "
                          f"{side} px at --image-size {image_size}, which must be a multiple of 32; use "
                          f"an image size that is a multiple of {round(32 / self.encoder_scale)}")

    def architecture_details(self) -> dict:
        """What the trained model's description adds about its architecture to ``size`` and
        ``decoder_filters`` (typed fields of petseg.description.Description)."""
        return {"decoder_blocks": list(self.blocks), "head": self.head, "encoder_scale": self.encoder_scale,
                "encoder_width": self.encoder_width}

    def with_encoder_width(self, width: float | None) -> Size:
        """This size with its encoder at ``width`` (None: its own); a one-line error for a width
        there is none of."""
        if width is None:
            return self
        if width not in ENCODER_WIDTHS:
            raise PetsegError(f"--encoder-width {width:g} is not one of MobileNetV2's widths; choose "
                              f"from {', '.join(f'{w:g}' for w in ENCODER_WIDTHS)}")
        return replace(self, encoder_width=width)


SIZES: dict[str, Size] = {s.name: s for s in (
    Size("seed", (512, 256, 128, 64)),  # the tutorial's pix2pix decoder, unchanged
    # Half the seed's widths; 3x3 depthwise context where it is cheap (4x4 and 8x8 inputs: at the two
    # finer levels it bought no validation accuracy), the seed's transposed-conv head. The encoder
    # at width 0.75, pruned and reconstructed: the alpha-1.0 one's validation mIoU at 0.42x the
    # seed's int8 time instead of 0.46x (docs/recipes.md, "Thinner encoders").
    Size("small", (256, 128, 64, 32), block=("separable", "separable", "bilinear", "bilinear"),
         encoder_width=0.75),
    # 1x1 blocks and a 1x1 head: the decoder down to what the encoder's int8 time leaves; the
    # encoder at width 0.75 (0.28x the seed's int8 time; width 0.5, 0.18x, lost 7-9 points).
    Size("tiny", (128, 64, 32, 16), block="bilinear", head="bilinear", encoder_width=0.75),
)}
DEFAULT_SIZE = "seed"


def get_size(name: str) -> Size:
    try:
        return SIZES[name]
    except KeyError:
        raise PetsegError(f"unknown model size {name!r}; choose from {', '.join(SIZES)}") from None
