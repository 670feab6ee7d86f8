"""A 3x3 stride-2 transposed conv rewritten as four small convs + depth-to-space, or as col2im.

A 3x3, stride-2, 'same' transposed conv produces each output pixel from at
most 2x2 input pixels, and which taps apply depends only on the pixel's row and
column parity. Splitting it into the four parity convolutions (2x2, 2x1, 1x2,
1x1 kernels) and interleaving them with DEPTH_TO_SPACE computes the same numbers
with the same MACs, but as plain convolutions, which XNNPACK runs about twice
as fast as TRANSPOSE_CONV on x86 (see docs/performance.md). Batch norm is folded into the
kernels (see decoder.py) and ReLU into each conv, so the converter has nothing left to fuse.

The 3-channel logits head is the exception: four convs with 3 outputs each
leave XNNPACK's GEMM tiles mostly empty (4.7 ms for 18 M MACs). There one 1x1
conv computes all nine taps (27 outputs), and each output parity adds up its
shifted taps (col2im): 2 ms less per image at one thread.
"""

from __future__ import annotations

import functools
import operator

import numpy as np
import tensorflow as tf

from .shuffle import depth_to_space


def subpixel_transpose_conv(x: tf.Tensor, kernel: np.ndarray, bias: np.ndarray, relu: bool) -> tf.Tensor:
    """Same result as conv2d_transpose(x, 3x3, stride 2, 'same') followed by bias (and ReLU)."""
    padded = tf.pad(x, [[0, 0], [1, 0], [1, 0], [0, 0]])  # row/col m-1 for the even outputs
    # Output row 2m takes taps 0 (input row m) and 2 (row m-1); row 2m+1 takes tap 1 (row m).
    even, odd = kernel[2::-2], kernel[1:2]
    parts = [
        (padded, even[:, 2::-2]),  # even row, even column
        (padded[:, :, 1:], even[:, 1:2]),  # even row, odd column
        (padded[:, 1:, :], odd[:, 2::-2]),  # odd row, even column
        (x, odd[:, 1:2]),  # odd row, odd column
    ]
    outs = []
    for inputs, k in parts:
        y = tf.nn.bias_add(tf.nn.conv2d(inputs, tf.constant(np.ascontiguousarray(k)), 1, "VALID"), bias)
        outs.append(tf.nn.relu(y) if relu else y)
    return depth_to_space(tf.concat(outs, axis=-1), 2)


# Output parity -> [(kernel tap, input offset)]: parity 0 reads taps 0 (pixel m) and 2 (pixel m-1).
_TAPS = {0: ((0, 0), (2, 1)), 1: ((1, 0),)}


def col2im_transpose_conv(x: tf.Tensor, kernel: np.ndarray, bias: np.ndarray) -> tf.Tensor:
    """Same result as conv2d_transpose(x, 3x3, stride 2, 'same') + bias, for few output channels."""
    cin, cout = kernel.shape[2:]
    taps = np.ascontiguousarray(np.transpose(kernel, (2, 0, 1, 3)).reshape(1, 1, cin, 9 * cout))
    cols = tf.pad(tf.nn.conv2d(x, tf.constant(taps), 1, "VALID"), [[0, 0], [1, 0], [1, 0], [0, 0]])
    shifted = {(0, 0): cols[:, 1:, 1:], (1, 0): cols[:, :-1, 1:],
               (0, 1): cols[:, 1:, :-1], (1, 1): cols[:, :-1, :-1]}
    parities = []
    for row in (0, 1):
        for col in (0, 1):
            terms = [shifted[dr, dc][..., (tr * 3 + tc) * cout:(tr * 3 + tc + 1) * cout]
                     for tr, dr in _TAPS[row] for tc, dc in _TAPS[col]]
            parities.append(functools.reduce(operator.add, terms))  # ADD: XNNPACK has no ADD_N
    return depth_to_space(tf.nn.bias_add(tf.concat(parities, axis=-1), np.tile(bias, 4)), 2)
