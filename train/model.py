"""The U-Net: a MobileNetV2 encoder with a pix2pix-style decoder, or a cheaper one (sizes.py)."""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from petseg.errors import PetsegError
from petseg.labels import NUM_CLASSES

from .recipe import default_train_encoder_bn
from .sizes import BLOCKS, DEFAULT_SIZE, Size, get_size

# Encoder activations the decoder reuses, from fine (64x64 at 128 input) to coarse (4x4).
SKIP_LAYERS = ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
               "block_13_expand_relu", "block_16_project")
ENCODER_NAME = "encoder"
SCALING_NAME = "to_minus1_1"  # the layer that maps 0..255 pixels to [-1, 1]
ENCODER_INPUT_NAME = "encoder_input"  # the resize to the encoder's side, where a size has one


def build_encoder(image_size: int, weights: str = "imagenet", width: float = 1.0) -> keras.Model:
    """MobileNetV2 at ``width`` (alpha) cut at the skip layers.

    ``weights`` is ``imagenet`` (Keras downloads them), ``none`` (random) or the
    path of a Keras weights file for ``MobileNetV2(include_top=False)``, alpha 1.0. A thinner
    encoder with weights keeps the pretrained alpha-1.0 network's most important channels
    (prune.py); its batch-norm statistics then need re-estimating (recalibrate.py).
    """
    if weights == "none":
        base = keras.applications.MobileNetV2(input_shape=(image_size, image_size, 3), include_top=False,
                                              weights=None, alpha=width)
    else:
        base = pretrained_mobilenet_v2(image_size, weights)
        if width != 1.0:
            from .prune import thinned_mobilenet_v2

            base = thinned_mobilenet_v2(base, width)
    return encoder_of(base)


def encoder_of(base: keras.Model) -> keras.Model:
    """A MobileNetV2 cut at the skip layers: the encoder, which returns its taps as a list."""
    return keras.Model(base.input, [base.get_layer(name).output for name in SKIP_LAYERS], name=ENCODER_NAME)


def pretrained_mobilenet_v2(image_size: int, weights: str) -> keras.Model:
    """The whole alpha-1.0 MobileNetV2 (no top) with ``weights``: 'imagenet' or a weights file."""
    shape = (image_size, image_size, 3)
    if weights == "imagenet":
        try:
            return keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights="imagenet")
        except Exception as exc:  # download failures come as several exception types
            raise PetsegError("cannot download the ImageNet weights for MobileNetV2 (offline?); pass "
                              "--encoder-weights PATH to a local .weights.h5 file, or 'none'") from exc
    base = keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights=None)
    _load_encoder_weights(base, Path(weights))
    return base


def _load_encoder_weights(base: keras.Model, path: Path) -> None:
    if not path.is_file():
        raise PetsegError(f"encoder weights {path} not found; pass an existing .weights.h5 file, "
                          "'imagenet' or 'none' to --encoder-weights")
    try:
        base.load_weights(path)
    except Exception as exc:  # h5py and Keras raise a variety of types for a wrong file
        raise PetsegError(f"cannot load encoder weights from {path} ({exc}); it must be a Keras "
                          "weights file for MobileNetV2(alpha=1.0, include_top=False)") from exc


def transpose_block(filters: int, name: str, bn_momentum: float = 0.9) -> keras.Sequential:
    """The ``transpose`` decoder block, doubling the resolution: transposed conv (no bias, batch norm
    follows), batch norm, ReLU."""
    return keras.Sequential([
        layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False,
                               kernel_initializer=keras.initializers.RandomNormal(0.0, 0.02)),
        layers.BatchNormalization(momentum=bn_momentum),  # see Recipe.bn_momentum
        layers.ReLU(),
    ], name=name)


def _pointwise_up(filters: int, bn_momentum: float) -> list[layers.Layer]:
    # The 1x1 conv runs before the resize: at the low resolution it costs a quarter.
    return [layers.Conv2D(filters, 1, use_bias=False), layers.BatchNormalization(momentum=bn_momentum),
            layers.ReLU(), layers.UpSampling2D(2, interpolation="bilinear")]


def bilinear_block(filters: int, name: str, bn_momentum: float = 0.9) -> keras.Sequential:
    """The ``bilinear`` decoder block, doubling the resolution cheaply: 1x1 conv, batch norm, ReLU,
    bilinear x2 (sizes.py says why)."""
    return keras.Sequential(_pointwise_up(filters, bn_momentum), name=name)


def separable_block(filters: int, name: str, bn_momentum: float = 0.9) -> keras.Sequential:
    """The ``separable`` decoder block: bilinear_block's layers after a 3x3 depthwise conv, batch norm
    and ReLU (some spatial context)."""
    return keras.Sequential([
        layers.DepthwiseConv2D(3, padding="same", use_bias=False),
        layers.BatchNormalization(momentum=bn_momentum),
        layers.ReLU(),
        *_pointwise_up(filters, bn_momentum),
    ], name=name)


# The builder of each block kind sizes.BLOCKS names (sizes.py stays free of Keras, so that the CLIs
# check a size before TensorFlow loads): kind "x" is built by x_block, and a kind without one fails
# here, on import.
BLOCK_BUILDERS = {kind: globals()[f"{kind}_block"] for kind in BLOCKS}


def build_unet(image_size: int = 128, encoder_weights: str = "imagenet", fine_tune: bool = False,
               train_encoder_bn: bool | None = None, bn_momentum: float = 0.9,
               size: str = DEFAULT_SIZE, encoder_width: float | None = None) -> keras.Model:
    """The segmentation model; it takes raw 0..255 RGB and returns per-pixel logits.

    Scaling to [-1, 1] happens inside the model, as MobileNetV2's ImageNet
    weights expect, so exported models take camera bytes directly. The encoder's
    batch norms train when ``train_encoder_bn`` (default: without pretrained weights),
    see Recipe. ``size`` picks the decoder (sizes.py); ``seed`` is the tutorial's U-Net.
    ``encoder_width`` replaces the size's own encoder width (sizes.ENCODER_WIDTHS).
    """
    spec = get_size(size).with_encoder_width(encoder_width)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name=SCALING_NAME)(inputs)
    encoder_size = spec.encoder_size(image_size)
    if encoder_size != image_size:
        # An exact 2x2 average at scale 0.5 (half-pixel centres), and unlike AVERAGE_POOL_2D
        # XNNPACK runs it in int8.
        x = layers.Resizing(encoder_size, encoder_size, interpolation="bilinear", name=ENCODER_INPUT_NAME)(x)
    encoder = build_encoder(encoder_size, encoder_weights, spec.encoder_width)
    encoder.trainable = fine_tune
    if train_encoder_bn is None:
        train_encoder_bn = default_train_encoder_bn(encoder_weights)
    for layer in encoder.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = train_encoder_bn
            if train_encoder_bn:
                layer.momentum = bn_momentum
    *skips, x = encoder(x)
    for kind, filters, skip in zip(spec.blocks, spec.decoder_filters, reversed(skips)):
        x = BLOCK_BUILDERS[kind](filters, name=f"up_{filters}", bn_momentum=bn_momentum)(x)
        x = layers.Concatenate(name=f"skip_{filters}")([x, skip])
    name = "petseg_unet" if spec.name == "seed" else f"petseg_unet_{spec.name}"
    return keras.Model(inputs, _head(x, spec, image_size), name=name)


def _head(x: keras.KerasTensor, spec: Size, image_size: int) -> keras.KerasTensor:
    """Per-pixel logits at the image size from the last decoder features."""
    if spec.head == "transpose":
        resize = x.shape[1] * 2 != image_size
        x = layers.Conv2DTranspose(NUM_CLASSES, 3, strides=2, padding="same",
                                   name="head" if resize else "logits")(x)
    elif spec.head == "bilinear":
        resize = True
        x = layers.Conv2D(NUM_CLASSES, 1, name="head")(x)
    else:  # sizes.HEADS names the heads; a name added there needs its branch here
        raise ValueError(f"no head builder for {spec.head!r} (sizes.HEADS)")
    if not resize:
        return x
    # Logits are smooth at this scale (DeepLab resizes them 4x): bilinear is enough, and cheap.
    factor = image_size // x.shape[1]
    if factor * x.shape[1] == image_size:
        return layers.UpSampling2D(factor, interpolation="bilinear", name="logits")(x)
    return layers.Resizing(image_size, image_size, interpolation="bilinear", name="logits")(x)
