"""Multiply-accumulates per image of a Keras model, as the Keras graph computes them.

The exported graphs differ (the Winograd decoder does fewer, the sub-pixel one the same);
petseg-bench counts those from the .tflite (petseg.graph.count_macs).
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np


def _leaves(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Every layer that computes something, inside nested models (the encoder, decoder blocks)."""
    inner = getattr(layer, "layers", None)
    if inner is None:
        yield layer
        return
    for child in inner:
        yield from _leaves(child)


def layer_macs(layer: keras.layers.Layer) -> int:
    """MACs of one convolution-like layer per image (0 for the others)."""
    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                              keras.layers.Conv2DTranspose, keras.layers.Dense)):
        return 0
    out = layer.output.shape
    taps = int(np.prod(layer.kernel.shape[:-1]))  # kernel window x inputs per output channel
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(np.prod(out[1:])) * int(np.prod(layer.kernel_size))
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Every input pixel meets every tap once: kernel (kh, kw, out, in).
        return int(np.prod(layer.input.shape[1:3])) * int(np.prod(layer.kernel.shape))
    return int(np.prod(out[1:])) * taps


def keras_macs(model: keras.Model) -> int:
    """MACs per image of the convolutions and dense layers (what dominates a U-Net)."""
    return sum(layer_macs(layer) for layer in _leaves(model))
