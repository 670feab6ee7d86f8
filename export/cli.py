"""petseg-export: convert a trained petseg.keras into TFLite variants and verify each one."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from petseg.errors import PetsegError
from petseg.modelfile import TRAINED_MODEL
from petseg.quiet import VERBOSE_HELP, quiet_cli

from .settings import (
    ACTIVATION_RANGES,
    DECODERS,
    INT8_IO_TYPE,
    IO_TYPES,
    QUANTIZERS,
    Budget,
    Build,
    Fallback,
    Sampling,
    int8_io_type,
)
from .variants import DEFAULT_SET, VARIANTS

# Each flag's default is its settings group's (settings.py), written there once.
SAMPLING, BUILD, BUDGET = Sampling(), Build(), Budget()


def build_parser() -> argparse.ArgumentParser:
    variants = "; ".join(f"{v.name}: {v.summary}" for v in VARIANTS.values())
    p = argparse.ArgumentParser(prog="petseg-export", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("models") / TRAINED_MODEL,
                   help="trained Keras model from petseg-train")
    p.add_argument("--quantize", nargs="+", default=[",".join(DEFAULT_SET)], metavar="VARIANT",
                   help=f"variants to export, or 'all' ({variants})")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: the model's)")
    p.add_argument("--data", default=None,
                   help="dataset for calibration and verification (default: the one the model was "
                        "trained on, from its metadata)")
    p.add_argument("--calibration-samples", type=int, default=SAMPLING.calibration_samples,
                   help="training images for int8 calibration (all of them if fewer)")
    p.add_argument("--io-type", choices=IO_TYPES, default=None,
                   help=f"int8 model input/output type (default {INT8_IO_TYPE}: runs on every client, "
                        "MediaPipe's GPU delegate and LiteRT.js's WebGPU included; uint8: camera bytes in "
                        "and out, for integer-only hardware and the default with --integer-only; those two "
                        "GPU paths refuse it)")
    p.add_argument("--verify-images", type=int, default=SAMPLING.verify_images,
                   help="validation images each variant is checked on")
    p.add_argument("--holdout-images", type=int, default=SAMPLING.holdout_images,
                   help="training images kept out of calibration and checked on too (at most a quarter "
                        "of them): the budget is judged on validation + these, with a bootstrap interval")
    p.add_argument("--bias-correction", action=argparse.BooleanOptionalAction, default=BUILD.bias_correction,
                   help="int8: before conversion, round each conv's int8 weights to cancel their error on "
                        "its calibration inputs and correct its bias for the mean error left "
                        "(fp32/fp16 keep the trained weights)")
    p.add_argument("--activation-ranges", choices=ACTIVATION_RANGES, default=BUILD.activation_ranges,
                   help="int8: each activation's int8 range: mse, the shrink of its calibrated min..max "
                        "with the least int8 error on calibration images, kept where the model's int8 "
                        "logits come out closer to float than with minmax; minmax, the calibrated "
                        "min..max as the converter takes it")
    p.add_argument("--keep-float", nargs="+", default=[], metavar="NAME",
                   help="int8: keep the layers whose tensor names contain NAME in float (see --report)")
    p.add_argument("--max-drop", type=_max_drop, default=BUDGET.max_drop, metavar="P",
                   help="int8: every layer is int8 when the held-out mIoU loss is within P points "
                        "(and --min-agreement holds); if not, the fewest most-sensitive layers are kept "
                        "in float as a last resort; 'off' quantises every layer without checking")
    p.add_argument("--min-agreement", type=float, default=100 * BUDGET.min_agreement, metavar="PCT",
                   help="int8 with --max-drop: also keep layers in float until at least PCT %% of "
                        "validation pixels get the Keras model's class")
    p.add_argument("--report", action="store_true",
                   help="int8: write a per-layer quantisation error table and name the worst layers")
    p.add_argument("--seed", type=int, default=SAMPLING.seed, help="seed for choosing calibration images")
    p.add_argument("--decoder", choices=("auto", *DECODERS), default=BUILD.decoder,
                   help="form of the decoder's transposed convs, all computing the same numbers: "
                        "winograd (25 products where the others need 36, fastest), subpixel (four "
                        "convs + depth-to-space), transpose-conv (TRANSPOSE_CONV ops, slowest); "
                        "auto: winograd for float variants, subpixel for int8")
    p.add_argument("--quantizer", choices=("auto", *QUANTIZERS), default="auto",
                   help="int8 and int16x8: the TFLite converter or the LiteRT Quantizer (AEQ); auto: the "
                        "converter for int8, AEQ for int16x8 (measured, see docs/performance.md); wi8, wi4 "
                        "and --integer-only always use AEQ")
    p.add_argument("--integer-only", action="store_true",
                   help="int8 with no float layer anywhere, for NPUs, DSPs and microcontrollers: no "
                        "fallback search, the budget's verdict is printed and recorded; with "
                        "--quantizer aeq the layers --max-drop picks get int16 activations instead")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    p.add_argument("--debug", action="store_true", help="show tracebacks (and what --verbose shows)")
    return p


def _max_drop(text: str) -> float | None:
    if text.lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of mIoU points or 'off'") from None


def _check(args: argparse.Namespace) -> None:
    if args.calibration_samples < 1:
        raise PetsegError(f"--calibration-samples {args.calibration_samples} must be at least 1")
    if args.verify_images < 1:
        raise PetsegError(f"--verify-images {args.verify_images} must be at least 1")
    if args.max_drop is not None and args.max_drop < 0:
        raise PetsegError(f"--max-drop {args.max_drop} must be zero or more mIoU points")
    if args.holdout_images < 0:
        raise PetsegError(f"--holdout-images {args.holdout_images} must be zero or more")
    if args.integer_only and args.keep_float:
        raise PetsegError("--integer-only and --keep-float contradict each other; drop one")
    if not 0 <= args.min_agreement <= 100:
        raise PetsegError(f"--min-agreement {args.min_agreement} must be a percentage, 0 to 100")


# Flags that shape only some variants: (flag, given, the variants that use it). --quantizer is not
# one: a variant only one quantizer makes ignores it, as documented (variants.py).
def _unused_flags(args: argparse.Namespace) -> list[tuple[str, bool, tuple[str, ...]]]:
    return [("--integer-only", args.integer_only, ("int8",)),
            ("--no-bias-correction", not args.bias_correction, ("int8",)),
            (f"--activation-ranges {args.activation_ranges}",
             args.activation_ranges != BUILD.activation_ranges, ("int8",)),
            (f"--io-type {args.io_type}", args.io_type is not None, ("int8",))]


def _check_flags_apply(args: argparse.Namespace, variants: list[str]) -> None:
    """A flag that no chosen variant uses contradicts the choice: say so rather than ignore it."""
    for flag, given, users in _unused_flags(args):
        if given and not set(users) & set(variants):
            raise PetsegError(f"{flag} applies to {' and '.join(users)} only, and --quantize "
                              f"{','.join(variants)} asks for none of them; add {users[0]} or drop "
                              f"{flag.split()[0]}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .variants import parse_variants

    variants = parse_variants(args.quantize)
    _check(args)
    _check_flags_apply(args, variants)
    from petseg.modelfile import check_model_path

    check_model_path(args.model, (".keras",))
    from .pipeline import ExportJob, run_export

    job = ExportJob(model_path=args.model, variants=variants, out=args.out or args.model.parent,
                    data=args.data, quantizer=args.quantizer,
                    sampling=Sampling(args.calibration_samples, args.verify_images, args.holdout_images,
                                      args.seed),
                    build=Build(args.decoder, int8_io_type(args.io_type, args.integer_only),
                                args.bias_correction, args.report, args.activation_ranges),
                    fallback=Fallback(Budget(args.max_drop, args.min_agreement / 100), tuple(args.keep_float),
                                      args.integer_only))
    return run_export(job)


def entry() -> None:
    sys.exit(quiet_cli(main, prog="petseg-export"))


if __name__ == "__main__":
    entry()
