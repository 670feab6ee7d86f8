"""petseg-train: train the pet-segmentation U-Net and write models/petseg.keras."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from petseg.dataset import SOURCES_HELP
from petseg.errors import PetsegError
from petseg.quiet import VERBOSE_HELP, quiet_cli

DEFAULTS_NOTE = ("The defaults are the measured recipe (see docs/recipes.md): ImageNet encoder "
                 "fine-tuned with its batch norms frozen, flip/zoom/colour augmentation, Adam with cosine "
                 "decay, batch 64. Each --size has its own epochs and learning rate, tuned on validation "
                 "images.")


def build_parser() -> argparse.ArgumentParser:
    from .recipe import Recipe, size_defaults
    from .sizes import DEFAULT_SIZE, SIZES

    d = Recipe()
    p = argparse.ArgumentParser(prog="petseg-train", description=__doc__, epilog=DEFAULTS_NOTE,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="tfds", help=f"dataset: {SOURCES_HELP}")
    p.add_argument("--out", type=Path, default=Path("models"), help="directory for the artifacts")
    p.add_argument("--image-size", type=int, default=128, help="square input size, a multiple of 32")
    p.add_argument("--size", default=DEFAULT_SIZE, metavar="{" + ",".join(SIZES) + "}",
                   help="model size: seed is the tutorial's U-Net; small and tiny keep its encoder with "
                        "cheaper decoders (README, 'Model sizes')")
    p.add_argument("--encoder-width", type=float, default=argparse.SUPPRESS,
                   help="MobileNetV2 width (alpha) of the encoder: 1.0, 0.75, 0.5 or 0.35; the thinner ones "
                        "keep the pretrained alpha-1.0 encoder's most important channels (default: the "
                        "size's own, " + ", ".join(f"{s.name} {s.encoder_width:g}" for s in SIZES.values())
                        + ")")
    p.add_argument("--reconstruction-epochs", type=int, default=d.reconstruction_epochs,
                   help="with --encoder-width below 1 and pretrained weights: epochs the pruned encoder "
                        "spends learning back the alpha-1.0 encoder's activations before the U-Net trains")
    p.add_argument("--teacher", type=Path, default=None, metavar="PATH",
                   help="a trained petseg.keras (e.g. the seed size's) whose logits teach this model "
                        "alongside the labels: knowledge distillation on the augmented training images")
    p.add_argument("--distill-weight", type=float, default=d.distill_weight,
                   help="with --teacher: the teacher's share of the loss, 0..1")
    p.add_argument("--encoder-weights", default=d.encoder_weights,
                   help="'imagenet' (download), 'none', or PATH to a MobileNetV2 no-top .weights.h5")
    p.add_argument("--fine-tune", action=argparse.BooleanOptionalAction, default=d.fine_tune,
                   help="also train the encoder")
    # Unset: the --size's own value (recipe.SIZE_RECIPES), listed in the help.
    per_size = {"default": argparse.SUPPRESS}
    p.add_argument("--epochs", type=int, help=f"default per size: {size_defaults('epochs')}", **per_size)
    p.add_argument("--batch-size", type=int, help=f"default per size: {size_defaults('batch_size')}",
                   **per_size)
    p.add_argument("--learning-rate", type=float, **per_size,
                   help=f"peak learning rate; default per size: {size_defaults('learning_rate')}")
    p.add_argument("--max-zoom", type=float, default=d.max_zoom,
                   help="largest random zoom for augmentation (1 = flips and colour only)")
    p.add_argument("--bn-momentum", type=float, default=None,
                   help="momentum of the batch norms that train: the decoder's, and the encoder's "
                        "too without pretrained weights (default 0.9, or 0.7 without pretrained weights)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of trainval held out for validation (the test split is never used to choose)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", action="store_true",
                   help="continue from the last completed epoch after an interruption")
    p.add_argument("--distribute", choices=("none", "mirrored", "multiworker"), default="none",
                   help="tf.distribute: MirroredStrategy over local GPUs, or MultiWorkerMirroredStrategy "
                        "across hosts configured by TF_CONFIG")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    p.add_argument("--debug", action="store_true", help="show tracebacks (and what --verbose shows)")
    return p


def _check(args: argparse.Namespace) -> None:
    if args.epochs is not None and args.epochs < 1:
        raise PetsegError(f"--epochs {args.epochs} must be at least 1")
    if args.batch_size is not None and args.batch_size < 1:
        raise PetsegError(f"--batch-size {args.batch_size} must be at least 1")
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise PetsegError(f"--learning-rate {args.learning_rate} must be above 0, e.g. 1e-3")
    if not 0 < args.val_fraction < 1:
        raise PetsegError(f"--val-fraction {args.val_fraction} must lie between 0 and 1, e.g. 0.1")
    if args.bn_momentum is not None and not 0 <= args.bn_momentum < 1:
        raise PetsegError(f"--bn-momentum {args.bn_momentum} must lie in [0, 1), e.g. 0.9")
    if args.reconstruction_epochs < 0:
        raise PetsegError(f"--reconstruction-epochs {args.reconstruction_epochs} must be 0 or more")
    if not 0 <= args.distill_weight <= 1:
        raise PetsegError(f"--distill-weight {args.distill_weight} must lie in [0, 1], e.g. 0.5")
    if args.teacher is not None:
        _check_teacher(args.teacher, args.image_size)
    if args.max_zoom < 1:
        raise PetsegError(f"--max-zoom {args.max_zoom} must be at least 1")
    if args.resume and args.distribute == "multiworker":
        raise PetsegError("--resume does not work with --distribute multiworker (only the chief keeps "
                          "its checkpoints); start the run again without --resume")
    from .sizes import get_size

    get_size(args.size).encoder_size(args.image_size)  # an unknown size, or one that does not fit
    get_size(args.size).with_encoder_width(args.encoder_width)
    weights = args.encoder_weights
    if weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise PetsegError(f"--encoder-weights {weights}: no such file; pass 'imagenet', 'none' "
                          "or the path of a MobileNetV2 .weights.h5 file")


def _check_teacher(path: Path, image_size: int) -> None:
    """Before any data loads: the teacher is a petseg-train model at this image size (its description)."""
    from petseg.modelfile import read_description

    fix = f"pass a petseg.keras that petseg-train wrote at --image-size {image_size}"
    if path.suffix != ".keras" or not path.is_file():
        raise PetsegError(f"--teacher {path}: no such .keras file; {fix}")
    description = read_description(path)
    if description is None:
        raise PetsegError(f"--teacher {path} has no petseg.json beside it; {fix}")
    if description.image_size != image_size:
        side = description.image_size
        raise PetsegError(f"--teacher {path} was trained at {side}x{side} and this training is at "
                          f"{image_size}x{image_size}; {fix}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("epochs", "batch_size", "learning_rate", "encoder_width"):  # unset: the size's own
        vars(args).setdefault(name, None)
    _check(args)
    from petseg.dataset import load_dataset

    data = load_dataset(args.data, args.image_size, val_fraction=args.val_fraction, seed=args.seed)
    print(data.summary())
    from petseg.modelfile import sidecar

    from .distribute import check_batch_size, make_strategy
    from .recipe import recipe_for
    from .trainer import MODEL_FILE, train

    distribution = make_strategy(args.distribute)
    if args.distribute != "none":
        print(f"{type(distribution.strategy).__name__.lstrip('_')} over "
              f"{distribution.strategy.num_replicas_in_sync} replicas")
    recipe = recipe_for(args.size, encoder_width=args.encoder_width, epochs=args.epochs,
                        batch_size=args.batch_size, learning_rate=args.learning_rate,
                        fine_tune=args.fine_tune, max_zoom=args.max_zoom, seed=args.seed,
                        encoder_weights=args.encoder_weights, bn_momentum=args.bn_momentum,
                        reconstruction_epochs=args.reconstruction_epochs,
                        teacher=str(args.teacher) if args.teacher else None,
                        distill_weight=args.distill_weight)
    check_batch_size(distribution, recipe.batch_size)
    metrics = train(data, recipe, args.out, resume=args.resume, distribution=distribution,
                    val_fraction=args.val_fraction)
    if metrics is None:
        print(f"worker {distribution.task}: training done; the chief (worker 0) writes the model "
              "and its metadata")
        return 0
    test = metrics["test"]
    per_class = ", ".join(f"{k} {v:.3f}" for k, v in test["per_class_iou"].items() if v is not None)
    print(f"test ({test['images']} images): pixel accuracy {test['pixel_accuracy']:.4f}, "
          f"mean IoU {test['mean_iou']:.4f} ({per_class})")
    print(f"wrote {args.out / MODEL_FILE} and {sidecar(args.out / MODEL_FILE)}")
    return 0


def entry() -> None:
    sys.exit(quiet_cli(main, prog="petseg-train"))


if __name__ == "__main__":
    entry()
