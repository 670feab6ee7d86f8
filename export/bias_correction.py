"""Empirical bias correction: int8's rounding error fixed in the float graph, before conversion.

Rounding a conv's folded weights to int8 (per output channel, as the converter does) shifts each
output channel's mean by (W_int8 - W) times the channel's mean input. Where the input carries a
large mean (MobileNetV2's early layers) the shift reaches a fifth of the channel's spread, and it
compounds downstream: that, not the lack of float layers, is most of int8's loss (issue 20).

The correction (Nagel et al., "Data-Free Quantization", ICCV 2019, its empirical form) runs the
calibration images twice, eagerly, with every conv hooked:

1. the float model records each conv's mean output per channel;
2. a copy whose convs compute with int8 weights runs layer after layer. Each plain or depthwise
   conv first rounds its weights to cancel their error on the inputs it now sees, the outputs
   of the already-corrected layers before it (gptq.py); transposed convs round to nearest.
   Then each conv's mean shift from step 1 is measured on those inputs (sequential),
   subtracted from its output at once and from its bias for good.

The copy keeps the fitted int8 weights (already on the converter's grid, which leaves them as
they are), the float weights of the transposed convs (the converter rounds them to nearest as
step 2 did) and the corrected biases. fp32 and fp16 export the unmodified model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers

# The rows (and columns) of a 3x3 kernel each sub-pixel parity conv of a stride-2 transposed conv
# takes (subpixel.py); each parity is its own conv, so its own per-channel int8 scale.
_PARITY_TAPS = ((0, 2), (1,))
_CONVS = (layers.Conv2D, layers.DepthwiseConv2D, layers.Conv2DTranspose)
# Calibration images the correction runs on, as one batch: on the seed model 64 gave the same
# test accuracy as all 270 (99.20 % agreement either way) in a third of the time.
CORRECTION_IMAGES = 64
FIT_ROUNDING = True  # gptq.py's rounding where it applies; False: each weight to its nearest step


@dataclass
class _Site:
    """A conv, the batch norm after it (if any): where a correction goes."""

    conv: layers.Layer
    bn: layers.BatchNormalization | None
    float_mean: np.ndarray | None = None
    shift: np.ndarray | None = None  # the conv's output-mean error, in its own (pre-BN) units
    float_kernel: np.ndarray | None = None  # the trained kernel
    fitted_kernel: np.ndarray | None = None  # its int8 rounding fitted to the inputs (gptq.py)

    def bn_scale(self) -> np.ndarray:
        """Per output channel, what the batch norm multiplies the conv's output by."""
        if self.bn is None:
            return np.ones(self.channels(), np.float32)
        gamma = keras.ops.convert_to_numpy(self.bn.gamma) if self.bn.scale else 1.0
        var = keras.ops.convert_to_numpy(self.bn.moving_variance)
        return (gamma / np.sqrt(var + self.bn.epsilon)).astype(np.float32)

    def channels(self) -> int:
        kernel = self.conv.kernel.shape  # Conv2D (.., in, out); transposed (.., out, in); depthwise
        if isinstance(self.conv, layers.DepthwiseConv2D):
            return kernel[2] * kernel[3]
        return kernel[2] if isinstance(self.conv, layers.Conv2DTranspose) else kernel[3]


def corrected_for_int8(model: keras.Model, images: np.ndarray, decoder: str = "subpixel"
                       ) -> tuple[keras.Model, dict]:
    """A copy of ``model`` whose biases cancel the mean error of int8 weights, and a summary of it.

    ``images`` (uint8, N x S x S x 3) are calibration images, run as one batch so that every
    layer's correction is known before the next layer runs; ``decoder`` is the form the int8 file
    is converted with (decoder.py), which decides how a transposed conv's weights are rounded.
    """
    copy = keras.models.model_from_json(model.to_json())
    copy.set_weights(model.get_weights())
    sites = _sites(copy)
    batch = tf.constant(images, tf.float32)
    with _hooks(sites, _record_float):
        copy(batch, training=False)
    with _rounded_kernels(sites, decoder), _hooks(sites, _correct):
        copy(batch, training=False)
    for site in sites:
        _fold_into_bias(site)
    shifts = [float(np.abs(s.shift * s.bn_scale()).max()) for s in sites]
    return copy, {"method": "int8 rounding fitted to each conv's inputs (GPTQ), then empirical bias "
                            "correction, sequential", "images": len(images), "layers": len(sites),
                  "fitted_layers": sum(s.fitted_kernel is not None for s in sites),
                  "largest_shift": max(shifts, default=0.0)}


def _sites(model: keras.Model) -> list[_Site]:
    """Every conv with a place for a bias (its own, or the batch norm's beta), in call order."""
    sites = []
    for layer, feeds in _all_layers(model):
        if isinstance(layer, layers.BatchNormalization) and sites and feeds(sites[-1].conv, layer):
            sites[-1].bn = sites[-1].bn or layer
        if isinstance(layer, _CONVS):
            sites.append(_Site(layer, None))
    return [s for s in sites if s.bn is not None or s.conv.use_bias]


def _all_layers(model: keras.Model) -> Iterator[tuple[layers.Layer, Callable]]:
    """Each layer with a test of whether one layer feeds another directly in its container."""
    if isinstance(model, keras.Sequential):
        chain = model.layers
        def feeds(a, b):
            return a in chain and chain.index(a) + 1 == chain.index(b)
    else:
        def feeds(a, b):
            return a.output is b.input
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer, feeds


@contextmanager
def _hooks(sites: list[_Site], hook: Callable) -> Iterator[None]:
    """Each site's conv calls ``hook(site, call, x)`` and returns what it returns: ``call()`` computes
    the conv's own output, ``x`` is its input."""
    originals = [s.conv.call for s in sites]
    for site, call in zip(sites, originals):
        site.conv.call = _wrap(site, call, hook)
    try:
        yield
    finally:
        for site, call in zip(sites, originals):
            site.conv.call = call


def _wrap(site: _Site, call: Callable, hook: Callable) -> Callable:
    def hooked(*args, **kwargs):
        return hook(site, lambda: call(*args, **kwargs), args[0])
    return hooked


def _channel_mean(y: tf.Tensor) -> np.ndarray:
    return tf.reduce_mean(y, axis=(0, 1, 2)).numpy().astype(np.float32)


def _record_float(site: _Site, call: Callable[[], tf.Tensor], _x: tf.Tensor) -> tf.Tensor:
    """The float pass: the conv's output mean per channel, to correct towards."""
    y = call()
    site.float_mean = _channel_mean(y)
    return y


def _correct(site: _Site, call: Callable[[], tf.Tensor], x: tf.Tensor) -> tf.Tensor:
    """On the corrected layers' outputs ``x``: fit the int8 rounding to them where the conv allows
    it (gptq.py), then measure the output's mean shift and remove it."""
    if FIT_ROUNDING and _fits(site.conv):
        site.fitted_kernel = _fitted_kernel(site, x)
        site.conv.kernel.assign(site.fitted_kernel)
    y = call()
    site.shift = _channel_mean(y) - site.float_mean
    return y - site.shift


def _fits(conv: layers.Layer) -> bool:
    """Whether gptq.py's rounding applies: plain and depthwise (multiplier 1) convs, undilated."""
    if isinstance(conv, layers.Conv2DTranspose) or tuple(conv.dilation_rate) != (1, 1):
        return False
    if isinstance(conv, layers.DepthwiseConv2D):
        return conv.kernel.shape[3] == 1
    return conv.groups == 1


def _fitted_kernel(site: _Site, x: tf.Tensor) -> np.ndarray:
    """The site's kernel rounded on its batch norm-folded int8 grid by gptq.py, then unfolded."""
    from . import gptq

    conv, kernel, bn = site.conv, site.float_kernel, site.bn_scale()
    kh, kw, cin, out = kernel.shape
    patches = gptq.conv_patches(x, (kh, kw), tuple(conv.strides), conv.padding)
    depthwise = isinstance(conv, layers.DepthwiseConv2D)
    if depthwise:  # (kh, kw, C, 1): each channel its own group of kh * kw weights
        folded = (kernel[..., 0] * bn).reshape(kh * kw, cin).T[:, None, :]
    else:  # (kh, kw, in, out): one group, a row per output channel
        folded = (kernel * bn).reshape(kh * kw * cin, out).T[None]
    q = gptq.rounded(folded, gptq.second_moments(patches, depthwise))
    q = q[:, 0, :].T.reshape(kh, kw, cin, 1) if depthwise else q[0].T.reshape(kh, kw, cin, out)
    scale = bn.reshape(1, 1, -1, 1) if depthwise else bn
    # A channel its batch norm zeroes keeps its weights: they compute nothing.
    return np.where(scale != 0, q / _safe(scale), kernel).astype(np.float32)


def _fold_into_bias(site: _Site) -> None:
    if site.bn is not None:
        site.bn.beta.assign(site.bn.beta - site.shift * site.bn_scale())
    else:
        site.conv.bias.assign(site.conv.bias - site.shift)


@contextmanager
def _rounded_kernels(sites: list[_Site], decoder: str) -> Iterator[None]:
    """Every site's kernel as the int8 file will compute with it (batch norm folded, then rounded)."""
    kept = [keras.ops.convert_to_numpy(s.conv.kernel) for s in sites]
    for site, kernel in zip(sites, kept):
        site.float_kernel = kernel
        site.conv.kernel.assign(rounded_kernel(site.conv, kernel, site.bn_scale(), decoder))
    try:
        yield
    finally:  # a kernel fitted meanwhile stays: it is already on the converter's int8 grid
        for site, kernel in zip(sites, kept):
            site.conv.kernel.assign(kernel if site.fitted_kernel is None else site.fitted_kernel)


def rounded_kernel(conv: layers.Layer, kernel: np.ndarray, bn_scale: np.ndarray, decoder: str) -> np.ndarray:
    """``kernel`` after folding ``bn_scale`` in, int8 rounding per output channel, and unfolding.

    Symmetric, narrow range (-127..127), one scale per output channel of each conv the converter
    emits: the TFLite int8 weight scheme.
    """
    if isinstance(conv, layers.DepthwiseConv2D):  # (kh, kw, in, multiplier), out = in * multiplier
        shape = kernel.shape
        flat = kernel.reshape(*shape[:2], 1, shape[2] * shape[3])
        return rounded_kernel(layers.Conv2D(1, 1), flat, bn_scale, decoder).reshape(shape)
    if isinstance(conv, layers.Conv2DTranspose):  # (kh, kw, out, in)
        return _rounded_transposed(kernel, bn_scale, decoder)
    folded = kernel * bn_scale
    return _round_per_channel(folded, axes=(0, 1, 2)) / _safe(bn_scale)


def _rounded_transposed(kernel: np.ndarray, bn_scale: np.ndarray, decoder: str) -> np.ndarray:
    folded = kernel * bn_scale[:, None]
    if decoder != "subpixel" or kernel.shape[:2] != (3, 3):
        return _round_per_channel(folded, axes=(0, 1, 3)) / _safe(bn_scale)[:, None]
    out = np.empty_like(folded)
    for rows in _PARITY_TAPS:
        for cols in _PARITY_TAPS:
            part = folded[np.ix_(rows, cols)]
            out[np.ix_(rows, cols)] = _round_per_channel(part, axes=(0, 1, 3))
    return out / _safe(bn_scale)[:, None]


def _round_per_channel(w: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    scale = np.abs(w).max(axis=axes, keepdims=True) / 127.0
    scale = np.where(scale > 0, scale, 1.0)
    return (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)


def _safe(scale: np.ndarray) -> np.ndarray:
    # A channel the batch norm zeroes has a zero folded kernel: nothing to round, nothing to undo.
    return np.where(scale != 0, scale, 1.0).astype(np.float32)
