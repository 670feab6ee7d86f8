"""int8 weights rounded to cancel their error on the layer's real inputs, not each to its nearest.

Rounding every weight to its nearest int8 step is optimal for the weights and not for the output:
after bias correction had removed the mean of the rounding error (bias_correction.py), the rest of
it still cost the seed model 0.34 % pixel agreement with float weights in the encoder (issue 20).
GPTQ's rule (Frantar et al., "GPTQ", ICLR 2023; Optimal Brain Quantization, Frantar & Alistarh,
NeurIPS 2022) rounds a kernel's inputs one at a time and moves the error of each onto the weights
not yet rounded, weighted by the inverse of the inputs' second moments H = E[x x^T], so that the
output W x, not W, stays closest to float.

The result must be what the converter computes: int8 on the converter's own grid (symmetric, one
scale per output channel, max |w| / 127). So each channel's largest weight keeps its value (it
sets the scale and lands on 127 exactly) and the others stay within -127..127; the converter then
rounds the already-rounded weights to themselves (tests/test_int8_accuracy.py checks it).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Added to H's diagonal, as a share of its mean: keeps the inverse well conditioned where inputs are
# nearly collinear (GPTQ's "dampening"; 1 % is its default).
DAMPING = 0.01
# Pixels of one layer's input used to estimate H: a few hundred thousand are plenty for d <= 960.
MAX_ROWS = 200_000


def conv_patches(x: tf.Tensor, kernel_size: tuple[int, int], strides: tuple[int, int],
                 padding: str) -> np.ndarray:
    """(pixels, kh * kw, channels): each output pixel's input patch, in the kernel's (kh, kw, in) order."""
    kh, kw = kernel_size
    if (kh, kw, *strides) == (1, 1, 1, 1):
        patches = x
    else:
        patches = tf.image.extract_patches(x, sizes=[1, kh, kw, 1], strides=[1, *strides, 1],
                                           rates=[1, 1, 1, 1], padding=padding.upper())
    flat = tf.reshape(patches, (-1, kh * kw, x.shape[-1])).numpy()
    if len(flat) > MAX_ROWS:  # an even subsample: neighbouring pixels are nearly the same
        flat = flat[:: -(-len(flat) // MAX_ROWS)]
    return flat.astype(np.float64)


def second_moments(patches: np.ndarray, depthwise: bool) -> np.ndarray:
    """H per group of weights that share inputs: (1, d, d) for a conv, (channels, k, k) for depthwise."""
    n = len(patches)
    if depthwise:
        return np.einsum("mic,mjc->cij", patches, patches) / n
    flat = patches.reshape(n, -1)
    return (flat.T @ flat / n)[None]


def rounded(weights: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """``weights`` (groups, rows, d) rounded to each row's int8 grid, errors spread by ``moments``.

    ``moments`` (groups, d, d) is H for each group's inputs; rows (output channels) of a group share
    them. Returns the rounded weights as floats on the grid (integer * row scale).
    """
    w = weights.astype(np.float64).copy()
    scale = np.abs(w).max(axis=2, keepdims=True) / 127.0
    scale = np.where(scale > 0, scale, 1.0)
    # The largest weight of each row sets the scale: it must keep its value, so nothing moves it.
    movable = np.ones_like(w)
    np.put_along_axis(movable, np.abs(w).argmax(axis=2)[..., None], 0.0, axis=2)
    try:
        upper = _inverse_cholesky(moments)  # (groups, d, d), upper triangular
    except np.linalg.LinAlgError:  # H too ill-conditioned even damped: round to nearest instead
        return (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)
    for i in range(w.shape[2]):
        q = np.clip(np.round(w[:, :, i] / scale[..., 0]), -127, 127) * scale[..., 0]
        error = (w[:, :, i] - q) / upper[:, None, i, i]
        w[:, :, i + 1:] -= movable[:, :, i + 1:] * error[..., None] * upper[:, None, i, i + 1:]
        w[:, :, i] = q
    return w.astype(np.float32)


def _inverse_cholesky(moments: np.ndarray) -> np.ndarray:
    """Upper Cholesky factor of each H's inverse, as GPTQ uses it; inputs never seen get unit weight."""
    h = moments.copy()
    d = h.shape[-1]
    diagonal = np.diagonal(h, axis1=1, axis2=2).copy()
    dead = diagonal <= 0
    diagonal[dead] = 1.0
    damp = DAMPING * diagonal.mean(axis=1)
    idx = np.arange(d)
    h[:, idx, idx] = diagonal + damp[:, None]
    inverse = np.linalg.inv(h)
    # U with U^T U = H^-1 is the transpose of NumPy's lower factor (torch's cholesky(upper=True)).
    return np.ascontiguousarray(np.transpose(np.linalg.cholesky(inverse), (0, 2, 1)))
