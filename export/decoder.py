"""The petseg U-Net's forward pass with its transposed convs in a form XNNPACK runs faster.

Every form computes the same function as the Keras model (up to float rounding): batch norm
is folded into the kernels, and each 3x3 stride-2 transposed conv becomes plain convolutions.

- ``winograd`` (the float variants' default): Winograd F(2,2) per axis, 25 products per input
  pixel instead of 36 (winograd.py) on blocks whose input has at least WINOGRAD_MIN_PIXELS
  pixels; smaller blocks, and those with an odd height or width, are sub-pixel.
- ``subpixel`` (int8's default, see converter.Int8Variant): four parity convs + depth-to-space,
  the same MACs as the transposed conv.
- ``transpose-conv``: the Keras graph as is (TRANSPOSE_CONV ops).

Any model size works (train/sizes.py): the model's graph is replayed layer by layer, and only
the layers recognised here are replaced, whatever their filter count: a decoder block
(transposed conv, batch norm, ReLU) and a bare transposed conv such as the logits head. Every
other layer (the encoder, the small sizes' cheaper blocks, resizes) runs as Keras converts it.

A bare one with few outputs (the 3-class head) is col2im (subpixel.py) in the ``winograd`` form:
four convs with 3 outputs each waste XNNPACK's GEMM tiles. The ``subpixel`` form (int8's) keeps
the sub-pixel head: in int8 one of col2im's sums left XNNPACK on the trained seed model (ADD x1:
its input and output scales too far apart), while every sub-pixel op stays delegated.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from petseg.train.model import ENCODER_NAME, SCALING_NAME

from .subpixel import channel_parts, col2im_transpose_conv, subpixel_transpose_conv
from .winograd import winograd_transpose_conv

# A bare transposed conv with at most this many outputs is a logits head (col2im in float).
HEAD_CHANNELS = 16
# Winograd's 25 weight matrices per block are 2.8x sub-pixel's 9 taps, and on a small map each
# is read for a few pixels only: there the block waits on memory, not on multiplies. With the
# 4x4 and 8x8 blocks of a 128x128 seed in sub-pixel (16x16 and 32x32 in Winograd), fp32 ran
# about 10 % faster on an AMD Zen 3 (one thread, paired runs) and its file fell from 40.4 to
# 28.0 MB; the logits are the same function.
WINOGRAD_MIN_PIXELS = 256


def _foldable(layer: keras.layers.Layer) -> bool:
    return (isinstance(layer, keras.layers.Conv2DTranspose) and tuple(layer.kernel_size) == (3, 3)
            and tuple(layer.strides) == (2, 2) and layer.padding == "same"
            and tuple(layer.dilation_rate) == (1, 1) and layer.activation is keras.activations.linear)


def _is_block(layer: keras.layers.Layer) -> bool:
    """A decoder block: transposed conv, batch norm, ReLU (no cap, no slope), nothing else."""
    if not isinstance(layer, keras.Sequential) or len(layer.layers) != 3:
        return False
    conv, bn, relu = layer.layers
    return (_foldable(conv) and isinstance(bn, keras.layers.BatchNormalization)
            and isinstance(relu, keras.layers.ReLU) and relu.max_value is None
            and not relu.negative_slope and not relu.threshold)


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
    """Whether the model is petseg's U-Net (any size) with a transposed conv to rewrite."""
    names = {layer.name for layer in model.layers}
    return ({SCALING_NAME, ENCODER_NAME} <= names
            and any(_rewrite(layer, "subpixel") for layer in model.layers))


def folded_transpose_conv(x: tf.Tensor, kernel: np.ndarray, bias: np.ndarray, form: str,
                          relu: bool = True) -> tf.Tensor:
    """One decoder block: transposed conv + folded batch norm (+ ReLU), in ``form``."""
    # Winograd takes rows and columns in pairs, one image at a time (export fixes batch 1).
    pairs = x.shape[0] == 1 and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0
    if form == "winograd" and pairs and x.shape[1] * x.shape[2] >= WINOGRAD_MIN_PIXELS:
        return winograd_transpose_conv(x, kernel, bias, relu=relu)
    return subpixel_transpose_conv(x, kernel, bias, relu=relu)


class _Rewritten(keras.layers.Layer):
    """A layer replaced by its rewritten forward pass; the folded weights are graph constants."""

    def __init__(self, forward: Callable[[tf.Tensor], tf.Tensor], name: str) -> None:
        super().__init__(name=name, trainable=False)
        self.forward = forward

    def call(self, x: tf.Tensor, training: bool | None = None, mask: tf.Tensor | None = None) -> tf.Tensor:
        # The replaced layer's recorded call passes these; a rewrite is inference only.
        return self.forward(x)


def _rewrite(layer: keras.layers.Layer, form: str) -> _Rewritten | None:
    """The fast form of ``layer``, or None when it is not one petseg rewrites."""
    if _is_block(layer):
        kernel, bias = folded_weights(*layer.layers[:2])
        return _Rewritten(lambda x: folded_transpose_conv(x, kernel, bias, form), layer.name)
    if not _foldable(layer):
        return None
    kernel, bias = folded_weights(layer, None)
    if kernel.shape[-1] <= HEAD_CHANNELS and form != "subpixel":
        # The skip connection's concatenation feeding the head is then left unused (and pruned).
        return _Rewritten(lambda x: col2im_transpose_conv(channel_parts(x), kernel, bias), layer.name)
    return _Rewritten(lambda x: folded_transpose_conv(x, kernel, bias, form, relu=False), layer.name)


def fast_forward(model: keras.Model, form: str = "winograd") -> Callable[[tf.Tensor], tf.Tensor]:
    """The petseg U-Net's logits with its transposed convs in ``form`` ('winograd' or 'subpixel').

    The model's graph is cloned with the recognised layers swapped for their rewrites and every
    other layer shared; the folded weights are read here, eagerly, and enter the graph as constants.
    """
    fast = keras.models.clone_model(model, clone_function=lambda layer: _rewrite(layer, form) or layer)
    return lambda image: fast(image, training=False)
