"""The U-Net: a MobileNetV2 encoder with a pix2pix-style decoder, in a screen of code."""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from petseg.errors import PetsegError
from petseg.labels import NUM_CLASSES

# Encoder activations the decoder reuses, from fine (64x64 at 128 input) to coarse (4x4).
SKIP_LAYERS = ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
               "block_13_expand_relu", "block_16_project")
DECODER_FILTERS = (512, 256, 128, 64)
ENCODER_NAME = "encoder"


def build_encoder(image_size: int, weights: str = "imagenet") -> keras.Model:
    """MobileNetV2 (alpha 1.0) cut at the skip layers.

    ``weights`` is ``imagenet`` (Keras downloads them), ``none`` (random) or the
    path of a Keras weights file for ``MobileNetV2(include_top=False)``.
    """
    shape = (image_size, image_size, 3)
    if weights == "imagenet":
        try:
            base = keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights="imagenet")
        except Exception as exc:  # download failures come as several exception types
            raise PetsegError("cannot download the ImageNet weights for MobileNetV2 (offline?); pass "
                              "--encoder-weights PATH to a local .weights.h5 file, or 'none'") from exc
    else:
        base = keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights=None)
        if weights != "none":
            _load_encoder_weights(base, Path(weights))
    taps = [base.get_layer(name).output for name in SKIP_LAYERS]
    return keras.Model(base.input, taps, name=ENCODER_NAME)


def _load_encoder_weights(base: keras.Model, path: Path) -> None:
    if not path.is_file():
        raise PetsegError(f"encoder weights {path} not found; pass an existing .weights.h5 file, "
                          "'imagenet' or 'none' to --encoder-weights")
    try:
        base.load_weights(path)
    except Exception as exc:  # h5py and Keras raise a variety of types for a wrong file
        raise PetsegError(f"cannot load encoder weights from {path} ({exc}); it must be a Keras "
                          "weights file for MobileNetV2(alpha=1.0, include_top=False)") from exc


def upsample(filters: int, name: str) -> keras.Sequential:
    """Double the resolution: transposed conv (no bias, batch norm follows), batch norm, ReLU."""
    return keras.Sequential([
        layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False,
                               kernel_initializer=keras.initializers.RandomNormal(0.0, 0.02)),
        # Momentum 0.9, not Keras' 0.99: a small dataset gives few steps per epoch, and with 0.99
        # the moving statistics used at inference lag the weights for dozens of epochs.
        layers.BatchNormalization(momentum=0.9),
        layers.ReLU(),
    ], name=name)


def build_unet(image_size: int = 128, encoder_weights: str = "imagenet",
               fine_tune: bool = False) -> keras.Model:
    """The segmentation model; it takes raw 0..255 RGB and returns per-pixel logits.

    Scaling to [-1, 1] happens inside the model, as MobileNetV2's ImageNet
    weights expect, so exported models take camera bytes directly.
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="to_minus1_1")(inputs)
    encoder = build_encoder(image_size, encoder_weights)
    encoder.trainable = fine_tune
    for layer in encoder.layers:
        # Fine-tuning or not, the encoder's batch norms keep their ImageNet statistics: batches of
        # a few hundred pets are too small to re-estimate them.
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    *skips, x = encoder(x)
    for filters, skip in zip(DECODER_FILTERS, reversed(skips)):
        x = upsample(filters, name=f"up_{filters}")(x)
        x = layers.Concatenate(name=f"skip_{filters}")([x, skip])
    logits = layers.Conv2DTranspose(NUM_CLASSES, 3, strides=2, padding="same", name="logits")(x)
    return keras.Model(inputs, logits, name="petseg_unet")
