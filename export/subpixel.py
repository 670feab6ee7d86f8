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
shifted taps (col2im): 2 ms less per image at one thread. The shifts and sums run
on channel-first planes, and the skip connection's concatenation before the head
is never made: each of its parts gets its own share of the 1x1 conv.
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


def col2im_transpose_conv(x: tf.Tensor | list[tf.Tensor], kernel: np.ndarray, bias: np.ndarray) -> tf.Tensor:
    """Same result as conv2d_transpose(x, 3x3, stride 2, 'same') + bias, for few output channels.

    ``x`` may be the list of tensors the input is concatenated from along channels: each then gets
    its share of the 1x1 conv and the sums add up, so the concatenation is never copied.
    """
    parts = x if isinstance(x, list) else [x]
    cin, cout = kernel.shape[2:]
    # Rows: input channel; columns: (tap, class): all nine taps' products of one pixel at once.
    taps = np.transpose(kernel, (2, 0, 1, 3)).reshape(cin, 9 * cout)
    cols, start = [], 0
    for part in parts:
        width = part.shape[-1]
        share = np.ascontiguousarray(taps[start:start + width])[None, None]
        cols.append(tf.nn.conv2d(part, tf.constant(share), 1, "VALID"))
        start += width
    if start != cin:
        raise ValueError(f"the parts' {start} channels are not the kernel's {cin}")
    # The shifts and sums run on planes (tap and class first): channel-last, every slice of a
    # 3-class tap would copy 12 bytes per pixel. On an Intel Xeon (AVX-512) the head took 0.65x
    # the time of col2im on 27 interleaved channels, the concatenation's copy included. Every
    # tensor stays 4-D, as GPU delegates want.
    planes = tf.transpose(functools.reduce(operator.add, cols), [0, 3, 1, 2])  # [n, 9 taps x classes, h, w]
    planes = tf.pad(planes, [[0, 0], [0, 0], [1, 0], [1, 0]])
    shifted = {(0, 0): planes[:, :, 1:, 1:], (1, 0): planes[:, :, :-1, 1:],
               (0, 1): planes[:, :, 1:, :-1], (1, 1): planes[:, :, :-1, :-1]}
    parities = []
    for row in (0, 1):
        for col in (0, 1):
            terms = [shifted[dr, dc][:, (tr * 3 + tc) * cout:(tr * 3 + tc + 1) * cout]
                     for tr, dr in _TAPS[row] for tc, dc in _TAPS[col]]
            parities.append(functools.reduce(operator.add, terms))  # ADD: XNNPACK has no ADD_N
    y = tf.concat(parities, 1) + tf.constant(np.tile(bias, 4).reshape(1, 4 * cout, 1, 1))
    # Back to pixels, channels ordered (row parity, column parity, class) as depth-to-space reads them.
    return depth_to_space(tf.transpose(y, [0, 2, 3, 1]), 2)


def channel_parts(x: tf.Tensor) -> list[tf.Tensor]:
    """The tensors ``x`` was concatenated from along its channels, while a graph is traced; else [x]."""
    try:
        op = x.op  # eager tensors and NumPy arrays have no producing op
    except AttributeError:
        return [x]
    if op.type != "ConcatV2":
        return [x]
    *parts, axis = op.inputs
    return list(parts) if tf.get_static_value(axis) in (-1, len(x.shape) - 1) else [x]
