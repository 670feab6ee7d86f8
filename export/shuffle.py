"""Depth-to-space for the rewritten decoder, as one op or as reshape/transpose/reshape.

The converter quantises DEPTH_TO_SPACE to int8, but the LiteRT Quantizer (AEQ) has no rule for it:
it would stay float between a DEQUANTIZE and a QUANTIZE, and the model would not be integer
only. Written as reshape -> transpose -> reshape (the same numbers, batch 1), every op has an
int8 and an int16 form in AEQ. The form is chosen while the graph is traced, with
``reshaped_shuffles()`` around the conversion.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import tensorflow as tf

_RESHAPED = contextvars.ContextVar("petseg_reshaped_shuffles", default=False)


@contextlib.contextmanager
def reshaped_shuffles() -> Iterator[None]:
    token = _RESHAPED.set(True)
    try:
        yield
    finally:
        _RESHAPED.reset(token)


def depth_to_space(x: tf.Tensor, block: int) -> tf.Tensor:
    """``tf.nn.depth_to_space(x, block)``; for a batch of 1 in the reshaped form when asked."""
    if not _RESHAPED.get():
        return tf.nn.depth_to_space(x, block)
    _, h, w, c = x.shape
    out = c // (block * block)
    # Channels are ordered (row offset, column offset, channel): split off the row offset, move
    # it next to the row, and the remaining (column offset, channel) pairs unfold along the width.
    y = tf.reshape(x, [h, w, block, block * out])
    y = tf.transpose(y, [0, 2, 1, 3])
    return tf.reshape(y, [1, h * block, w * block, out])
