"""The petseg U-Net's forward pass with its transposed convs in a form XNNPACK runs faster.

Every form computes the same function as the Keras model (up to float rounding): batch norm
is folded into the kernels, and each 3x3 stride-2 transposed conv becomes plain convolutions.

- ``winograd`` (the float variants' default): Winograd F(2,2) per axis, 25 products per input
  pixel instead of 36 (winograd.py); blocks with an odd height or width fall back to sub-pixel.
- ``subpixel`` (int8's default, see pipeline.decoder): four parity convs + depth-to-space,
  the same MACs as the transposed conv.
- ``transpose-conv``: the Keras graph as is (TRANSPOSE_CONV ops).

The 3-channel logits head is always col2im (subpixel.py): too few outputs for either form.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from petseg.train.model import DECODER_FILTERS

from .subpixel import col2im_transpose_conv, subpixel_transpose_conv
from .winograd import winograd_transpose_conv


def _foldable(layer: keras.layers.Layer) -> bool:
    return (isinstance(layer, keras.layers.Conv2DTranspose) and tuple(layer.kernel_size) == (3, 3)
            and tuple(layer.strides) == (2, 2) and layer.padding == "same")


def folded_weights(conv: keras.layers.Conv2DTranspose, bn: keras.layers.BatchNormalization | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Conv2D-layout kernel (kh, kw, in, out) and bias, batch norm folded in."""
    kernel = np.transpose(keras.ops.convert_to_numpy(conv.kernel), (0, 1, 3, 2))
    bias = keras.ops.convert_to_numpy(conv.bias) if conv.use_bias else np.zeros(kernel.shape[-1], np.float32)
    if bn is not None:
        gamma, beta, mean, var = (keras.ops.convert_to_numpy(v) for v in
                                  (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
        scale = gamma / np.sqrt(var + bn.epsilon)
        kernel, bias = kernel * scale, (bias - mean) * scale + beta
    return kernel.astype(np.float32), bias.astype(np.float32)


def has_petseg_decoder(model: keras.Model) -> bool:
    names = {layer.name for layer in model.layers}
    if not {"to_minus1_1", "encoder", "logits", *(f"up_{f}" for f in DECODER_FILTERS)} <= names:
        return False
    blocks = [model.get_layer(f"up_{f}").layers for f in DECODER_FILTERS]
    return _foldable(model.get_layer("logits")) and all(
        len(b) == 3 and _foldable(b[0]) and isinstance(b[1], keras.layers.BatchNormalization)
        for b in blocks)


def upsample(x: tf.Tensor, kernel: np.ndarray, bias: np.ndarray, form: str) -> tf.Tensor:
    """One decoder block: transposed conv + folded batch norm + ReLU, in ``form``."""
    # Winograd takes rows and columns in pairs, one image at a time (export fixes batch 1).
    pairs = x.shape[0] == 1 and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0
    if form == "winograd" and pairs:
        return winograd_transpose_conv(x, kernel, bias, relu=True)
    return subpixel_transpose_conv(x, kernel, bias, relu=True)


def fast_forward(model: keras.Model, form: str = "winograd") -> Callable[[tf.Tensor], tf.Tensor]:
    """The petseg U-Net's logits with the decoder in ``form`` ('winograd' or 'subpixel').

    The folded weights are read here, eagerly, and enter the graph as constants.
    """
    blocks = [folded_weights(*model.get_layer(f"up_{f}").layers[:2]) for f in DECODER_FILTERS]
    head = folded_weights(model.get_layer("logits"), None)
    rescale, encoder = model.get_layer("to_minus1_1"), model.get_layer("encoder")

    def forward(image: tf.Tensor) -> tf.Tensor:
        *skips, x = encoder(rescale(image), training=False)
        for (kernel, bias), skip in zip(blocks, reversed(skips)):
            x = tf.concat([upsample(x, kernel, bias, form), skip], axis=-1)
        return col2im_transpose_conv(x, *head)

    return forward
