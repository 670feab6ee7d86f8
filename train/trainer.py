"""Fit the U-Net with per-epoch checkpoints, keep the best epoch, write the artifacts."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from petseg import atomic
from petseg.dataset import Dataset
from petseg.description import KERAS, Description, InputConvention
from petseg.environment import versions
from petseg.labels import CLASSES
from petseg.modelfile import TRAINED_MODEL, write_description

from .checkpoint import EpochCheckpoint, load_state
from .distill import DistillationLoss, accuracy, load_teacher, with_teacher
from .distribute import Distribution
from .evaluate import evaluate
from .macs import keras_macs
from .model import ENCODER_NAME, build_unet
from .pipeline import eval_dataset, partial_batch_padding, training_dataset
from .recipe import Recipe
from .sizes import Size, get_size
from .thin_encoder import adapt_pruned_encoder

MODEL_FILE = TRAINED_MODEL
HISTORY_FILE = "history.json"
CURVES_FILE = "training_curves.png"
CHECKPOINTS = ".checkpoints"


def train(data: Dataset, recipe: Recipe, out: Path, resume: bool = False,
          distribution: Distribution | None = None, val_fraction: float = 0.1) -> dict | None:
    """Train, evaluate the best epoch on the test split, and write the artifacts to ``out``.

    Under MultiWorkerMirroredStrategy every worker trains and checkpoints (saving takes all
    of them), but only the chief writes into ``out``; the others checkpoint into a scratch
    directory, write nothing else, and return None.
    """
    distribution = distribution or Distribution(tf.distribute.get_strategy())
    keras.utils.set_random_seed(recipe.seed)
    with _checkpoint_dir(out, distribution.chief) as ckpt_dir:
        state = _start_state(ckpt_dir, resume, recipe)
        started = time.perf_counter()
        # Outside the strategy's scope: its own training steps cannot update mirrored variables.
        encoder = None if state else _adapted_encoder(data, recipe)
        with distribution.strategy.scope():
            model = (keras.saving.load_model(ckpt_dir / state["last"]) if state
                     else _compiled_model(data, recipe, encoder))
        # A pruned encoder's adaptation is training time too (a resumed run's was counted before
        # the interruption only in its printed figures).
        preparing = 0.0 if state else time.perf_counter() - started
        pads = {split: partial_batch_padding(len(data[split]), recipe.batch_size,
                                             distribution.strategy.num_replicas_in_sync)
                for split in ("train", "val")}
        checkpoint = EpochCheckpoint(ckpt_dir, state, loss_scale=_loss_scale(data, pads))
        seconds = _fit(model, data, recipe, checkpoint, state, pads) + preparing
        if not distribution.chief:
            return None
        best = keras.saving.load_model(ckpt_dir / checkpoint.state["best"], compile=False)
        metrics = {split: evaluate(best, data[split]) for split in ("val", "test")}
        _write_artifacts(out, best, data, recipe, checkpoint.state, metrics, seconds, val_fraction,
                         _distribution_details(distribution, pads))
    return metrics


def _loss_scale(data: Dataset, pads: dict[str, int]) -> dict[str, float]:
    """Keras averages a batch's loss over all its images, blanks included: over an epoch that is the
    true mean times real / (real + blanks), which these factors undo (the accuracy is weighted)."""
    return {key: (len(data[split]) + pads[split]) / len(data[split])
            for key, split in (("loss", "train"), ("val_loss", "val")) if pads[split]}


def _distribution_details(distribution: Distribution, pads: dict[str, int]) -> dict | None:
    details = distribution.strategy_details()
    if details is not None and any(pads.values()):
        details["partial_batches"] = {
            "padded": pads, "weight": 0.0,
            "how": "the last batch of each split filled with blank images of weight 0, so that it "
                   "splits evenly between replicas: the blanks add no gradient (that batch's real "
                   "images weigh as in a full batch) and count in no metric; the logged losses are "
                   "rescaled to the real images' mean"}
    return details


@contextlib.contextmanager
def _checkpoint_dir(out: Path, chief: bool) -> Iterator[Path]:
    """The chief's checkpoints live beside its artifacts (and go once they are written); another
    worker's in a scratch directory that is gone when it finishes."""
    if not chief:
        with tempfile.TemporaryDirectory(prefix="petseg-worker-") as scratch:
            yield Path(scratch)
        return
    ckpt_dir = atomic.ensure_dir(Path(out)) / CHECKPOINTS
    yield ckpt_dir
    shutil.rmtree(ckpt_dir, ignore_errors=True)


def _start_state(ckpt_dir: Path, resume: bool, recipe: Recipe) -> dict | None:
    state = load_state(ckpt_dir) if resume else None
    if resume and state is None:
        print(f"no checkpoint in {ckpt_dir}; starting from epoch 1")
    if not resume and ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    if state:
        print(f"resuming after epoch {state['epoch']} of {recipe.epochs}")
    return state


def _fit(model: keras.Model, data: Dataset, recipe: Recipe, checkpoint: EpochCheckpoint,
         state: dict | None, pads: dict[str, int]) -> float:
    """Run the remaining epochs; the training seconds, including those before a resume."""
    first_epoch = state["epoch"] if state else 0
    if not state:
        model.summary(line_length=100, expand_nested=False)
    started = time.perf_counter()
    if first_epoch < recipe.epochs:
        train_ds = training_dataset(data["train"], recipe.batch_size, recipe.seed, recipe.max_zoom,
                                    pads["train"])
        val_ds = eval_dataset(data["val"], recipe.batch_size, pads["val"])
        if recipe.teacher:
            teacher = load_teacher(Path(recipe.teacher), data.image_size)
            train_ds, val_ds = with_teacher(train_ds, teacher), with_teacher(val_ds, teacher)
        model.fit(train_ds, validation_data=val_ds,
                  epochs=recipe.epochs, initial_epoch=first_epoch, verbose=2,
                  shuffle=False,  # the tf.data pipeline shuffles; this only silences Keras' warning
                  callbacks=[checkpoint])
    return time.perf_counter() - started + sum(r["seconds"] for r in (state or {}).get("history", []))


def _built(data: Dataset, recipe: Recipe, weights: str | None = None) -> keras.Model:
    """The recipe's U-Net; ``weights`` replaces its encoder weights (the recipe still decides
    which batch norms train)."""
    return build_unet(data.image_size, weights or recipe.encoder_weights, recipe.fine_tune,
                      recipe.train_encoder_bn, recipe.bn_momentum, size=recipe.size,
                      encoder_width=recipe.encoder_width)


def _adapted_encoder(data: Dataset, recipe: Recipe) -> list[np.ndarray] | None:
    """A pruned pretrained encoder's weights, made ready (thin_encoder.py); None for any other."""
    if _size(recipe).encoder_width == 1.0 or recipe.encoder_weights == "none":
        return None
    # Its statistics and the kept channels' activations need putting right before the decoder
    # learns from them.
    print(f"encoder pruned to width {_size(recipe).encoder_width:g}: re-estimating its batch norms, "
          f"then {recipe.reconstruction_epochs} epochs reconstructing its taps")
    unet = _built(data, recipe)
    errors = adapt_pruned_encoder(unet, recipe.encoder_weights, data["train"].images,
                                  recipe.reconstruction_epochs, recipe.seed)
    if errors:
        print(f"tap reconstruction error {errors[0]:.4f} -> {errors[-1]:.4f} (target variances)")
    return unet.get_layer(ENCODER_NAME).get_weights()


def _compiled_model(data: Dataset, recipe: Recipe, encoder: list[np.ndarray] | None = None) -> keras.Model:
    # An adapted encoder brings its weights: pruning the pretrained ones again would be wasted.
    model = _built(data, recipe, None if encoder is None else "none")
    if encoder is not None:
        model.get_layer(ENCODER_NAME).set_weights(encoder)
    steps = max(1, int(np.ceil(len(data["train"]) / recipe.batch_size))) * recipe.epochs
    # Cosine decay to zero over the whole run: big steps early, fine ones at the end.
    schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, decay_steps=steps)
    if recipe.teacher:  # the targets carry the teacher's logits too (distill.py)
        loss, metric = DistillationLoss(recipe.distill_weight, recipe.distill_temperature), accuracy
    else:
        loss, metric = keras.losses.SparseCategoricalCrossentropy(from_logits=True), "accuracy"
    # Weighted: the blank images that fill a partial batch (pipeline.py) weigh 0.
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, weighted_metrics=[metric])
    return model


def _size(recipe: Recipe) -> Size:
    return get_size(recipe.size).with_encoder_width(recipe.encoder_width)


def _write_artifacts(out: Path, model: keras.Model, data: Dataset, recipe: Recipe, state: dict,
                     metrics: dict, seconds: float, val_fraction: float, distribution: dict | None) -> None:
    best_epoch = state["best_epoch"]
    with atomic.atomic_path(out / MODEL_FILE, suffix=".keras") as tmp:
        model.save(tmp)
    atomic.write_json(out / HISTORY_FILE, state["history"])
    size = _size(recipe)
    write_description(out / MODEL_FILE, Description(
        variant=KERAS, image_size=data.image_size, classes=CLASSES,
        input=InputConvention(normalisation="x / 127.5 - 1, inside the model",
                              tensor={"dtype": "uint8", "layout": "NHWC RGB", "range": [0, 255]}),
        size=size.name, decoder_filters=size.decoder_filters, dataset=data.source,
        val_fraction=val_fraction, seed=recipe.seed, best_epoch=best_epoch,
        details={
            "model": MODEL_FILE,
            "output": {"kind": "logits", "classes": len(CLASSES)},
            **size.architecture_details(),  # decoder blocks, head, encoder scale and width
            "gmac_per_image": round(keras_macs(model) / 1e9, 4),  # the Keras graph's; exports differ
            "data": {"counts": data.counts(), "skipped": dict(data.skipped)},
            "recipe": asdict(recipe),
            "distribution": distribution,
            "epochs_run": state["epoch"],
            "train_seconds": round(seconds, 1),
            "metrics": metrics,
            "versions": versions("tensorflow", "keras"),
        }))
    try:
        from .curves import plot_history
    except ImportError:  # matplotlib is optional; the history JSON holds the same figures
        return
    plot_history(state["history"], out / CURVES_FILE, best_epoch)
