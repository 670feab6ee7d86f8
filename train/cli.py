"""petseg-train: train the pet-segmentation U-Net and write models/petseg.keras."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from petseg.dataset import SOURCES_HELP
from petseg.errors import PetsegError, run_cli

# TensorFlow's C++ start-up chatter would bury the one line a user needs; set before TF loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULTS_NOTE = ("The defaults are the measured recipe (see README): ImageNet encoder fine-tuned with "
                 "its batch norms frozen, flip/zoom/colour augmentation, Adam with cosine decay, batch 64.")


def build_parser() -> argparse.ArgumentParser:
    from .recipe import Recipe

    d = Recipe()
    p = argparse.ArgumentParser(prog="petseg-train", description=__doc__, epilog=DEFAULTS_NOTE,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="tfds", help=f"dataset: {SOURCES_HELP}")
    p.add_argument("--out", type=Path, default=Path("models"), help="directory for the artifacts")
    p.add_argument("--image-size", type=int, default=128, help="square input size, a multiple of 32")
    p.add_argument("--encoder-weights", default=d.encoder_weights,
                   help="'imagenet' (download), 'none', or PATH to a MobileNetV2 no-top .weights.h5")
    p.add_argument("--fine-tune", action=argparse.BooleanOptionalAction, default=d.fine_tune,
                   help="also train the encoder")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate, help="peak learning rate")
    p.add_argument("--max-zoom", type=float, default=d.max_zoom,
                   help="largest random zoom for augmentation (1 = flips and colour only)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of trainval held out for validation (the test split is never used to choose)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", action="store_true",
                   help="continue from the last completed epoch after an interruption")
    p.add_argument("--distribute", choices=("none", "mirrored", "multiworker"), default="none",
                   help="tf.distribute: MirroredStrategy over local GPUs, or MultiWorkerMirroredStrategy "
                        "across hosts configured by TF_CONFIG")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _check(args: argparse.Namespace) -> None:
    if args.epochs < 1:
        raise PetsegError(f"--epochs {args.epochs} must be at least 1")
    if args.batch_size < 1:
        raise PetsegError(f"--batch-size {args.batch_size} must be at least 1")
    if not 0 < args.val_fraction < 1:
        raise PetsegError(f"--val-fraction {args.val_fraction} must lie between 0 and 1, e.g. 0.1")
    if args.max_zoom < 1:
        raise PetsegError(f"--max-zoom {args.max_zoom} must be at least 1")
    weights = args.encoder_weights
    if weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise PetsegError(f"--encoder-weights {weights}: no such file; pass 'imagenet', 'none' "
                          "or the path of a MobileNetV2 .weights.h5 file")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check(args)
    from petseg.dataset import load_dataset

    data = load_dataset(args.data, args.image_size, val_fraction=args.val_fraction, seed=args.seed)
    print(data.summary())
    from .distribute import make_strategy
    from .recipe import Recipe
    from .trainer import METADATA_FILE, MODEL_FILE, train

    strategy, is_chief = make_strategy(args.distribute)
    if args.distribute != "none":
        print(f"{type(strategy).__name__} over {strategy.num_replicas_in_sync} replicas")
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                    fine_tune=args.fine_tune, max_zoom=args.max_zoom, seed=args.seed,
                    encoder_weights=args.encoder_weights)
    metrics = train(data, recipe, args.out, resume=args.resume, strategy=strategy, is_chief=is_chief,
                    val_fraction=args.val_fraction)
    test = metrics["test"]
    per_class = ", ".join(f"{k} {v:.3f}" for k, v in test["per_class_iou"].items() if v is not None)
    print(f"test ({test['images']} images): pixel accuracy {test['pixel_accuracy']:.4f}, "
          f"mean IoU {test['mean_iou']:.4f} ({per_class})")
    print(f"wrote {args.out / MODEL_FILE} and {args.out / METADATA_FILE}")
    return 0


def entry() -> None:
    sys.exit(run_cli(main, prog="petseg-train"))


if __name__ == "__main__":
    entry()
