"""The training recipe: everything that decides the trained weights besides the data."""

from __future__ import annotations

from dataclasses import dataclass


def default_train_encoder_bn(encoder_weights: str) -> bool:
    """Whether the encoder's batch norms train when nothing says: exactly when there are no
    pretrained weights (``--encoder-weights none``), see Recipe.train_encoder_bn."""
    return encoder_weights == "none"


@dataclass
class Recipe:
    """Everything that decides the trained weights besides the data."""

    # The model size (sizes.py). The defaults below are the seed size's; recipe_for() gives each
    # size its own.
    size: str = "seed"
    # The encoder's width (train/sizes.ENCODER_WIDTHS); None: the size's own.
    encoder_width: float | None = None
    # Epochs a pruned pretrained encoder spends learning back its taps before the U-Net trains
    # (train/reconstruct.py); 0: pruned and re-estimated only.
    reconstruction_epochs: int = 20
    # A trained petseg.keras whose logits teach this model (train/distill.py), the soft term's
    # share of the loss and its temperature; None: labels only.
    teacher: str | None = None
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    epochs: int = 22
    batch_size: int = 64
    learning_rate: float = 1e-3
    fine_tune: bool = True
    max_zoom: float = 1.25
    seed: int = 0
    encoder_weights: str = "imagenet"
    # The encoder's batch norms keep their pretrained statistics (batches of a few hundred pets are
    # too small to re-estimate ImageNet's); from scratch they start at mean 0, variance 1 and must
    # learn the data's. None: default_train_encoder_bn's answer.
    train_encoder_bn: bool | None = None
    # Momentum of every batch norm that trains. Keras' 0.99 (MobileNetV2's 0.999) leaves the moving
    # statistics used at inference far behind the weights when an epoch is a handful of steps. None:
    # 0.9 (measured best for the decoder on the pretrained encoder), or 0.7 when the encoder's batch
    # norms train too: with every statistic starting from nothing, 0.9 left a 32-step run on
    # synthetic pets predicting background only (training accuracy 0.84); 0.7 found the pets.
    bn_momentum: float | None = None

    def __post_init__(self) -> None:
        if self.train_encoder_bn is None:
            self.train_encoder_bn = default_train_encoder_bn(self.encoder_weights)
        if self.bn_momentum is None:
            self.bn_momentum = 0.7 if self.train_encoder_bn else 0.9


# Where each size's tuned recipe differs from the defaults above (the seed's). Tuned on the
# validation images of the 3-breed slice only; the study is in docs/recipes.md.
SIZE_RECIPES: dict[str, dict] = {
    "seed": {},
    # The narrow decoders learn more slowly: at the seed's 22 epochs their best (lowest validation
    # loss) epoch was the last or next to last. Twice the peak rate and more epochs, still within
    # the seed's training time: tiny's validation mIoU went from 0.642 (22 epochs, 3e-3) to 0.689.
    "small": {"epochs": 34, "learning_rate": 2e-3},
    "tiny": {"epochs": 40, "learning_rate": 2e-3},
}


def size_defaults(field: str) -> str:
    """Each size's default for ``field``, for --help: ``<size> <value>`` per size, comma-separated."""
    return ", ".join(f"{size} {values.get(field, getattr(Recipe, field))}"
                     for size, values in SIZE_RECIPES.items())


def recipe_for(size: str, **overrides) -> Recipe:
    """The recipe of ``size``, with ``overrides`` (those not None: what the user set) on top."""
    from .sizes import get_size

    get_size(size)  # an unknown size fails here, in one line
    given = {k: v for k, v in overrides.items() if v is not None}
    return Recipe(size=size, **{**SIZE_RECIPES[size], **given})
