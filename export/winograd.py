"""A 3x3, stride-2, 'same' transposed conv in Winograd form: 25 products where sub-pixel needs 36.

Along one axis the transposed conv makes two outputs per input pixel m: output 2m from taps
2 and 0 (inputs m-1 and m), output 2m+1 from tap 1 (input m). For two neighbouring inputs that
is 6 products. The two even outputs of the pair form a 2-tap convolution, which Winograd's
F(2,2) computes from three products, (d0-d1)k2, d1(k2+k0) and (d2-d1)k0, so the pair costs 5.
Over rows and columns that is 25 products instead of 36, each a 1x1 conv on a half-resolution
map. Input differences and output sums are cheap elementwise ops, and XNNPACK spends nearly all
of this model's time in GEMM microkernels, so fewer MACs is what lowers latency.
"""

from __future__ import annotations

import functools
import itertools
import operator
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from .shuffle import depth_to_space


class _Term(NamedTuple):
    source: str  # which difference of the pair's inputs d0, d1, d2 it multiplies
    taps: tuple[float, float, float]  # coefficients of kernel taps 0, 1, 2
    phases: tuple[int, ...]  # output pixels 4t+p it adds to


# One axis, inputs d0, d1, d2 = padded rows 2t, 2t+1, 2t+2 (input rows 2t-1, 2t, 2t+1).
# Outputs 4t and 4t+2 are the even pair (F(2,2)); 4t+1 and 4t+3 each take tap 1 alone.
_TERMS = (
    _Term("d0-d1", (0, 0, 1), (0,)),
    _Term("d1", (1, 0, 1), (0, 2)),
    _Term("d1", (0, 1, 0), (1,)),
    _Term("d2-d1", (1, 0, 0), (2,)),
    _Term("d2", (0, 1, 0), (3,)),
)
# The term that feeds only phase p: the one product per output pixel that carries the bias.
_ALONE = {t.phases[0]: i for i, t in enumerate(_TERMS) if len(t.phases) == 1}


def _differences(d0: tf.Tensor, d1: tf.Tensor, d2: tf.Tensor) -> dict[str, tf.Tensor]:
    return {"d0-d1": d0 - d1, "d1": d1, "d2-d1": d2 - d1, "d2": d2}


def _transformed_inputs(x: tf.Tensor) -> dict[tuple[str, str], tf.Tensor]:
    """The 16 half-resolution maps the products read, keyed by (row source, column source)."""
    _, h, w, c = x.shape
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    # A free reshape exposes row and column parity; unit slices keep every op inside XNNPACK
    # (an integer index becomes a shrink-axis STRIDED_SLICE, which XNNPACK rejects).
    v = tf.reshape(padded, [h // 2 + 1, 2, w // 2 + 1, 2 * c])
    rows = _differences(v[:-1, 0:1], v[:-1, 1:2], v[1:, 0:1])
    maps = {}
    for row_source, r in rows.items():
        cols = _differences(r[:, :, :-1, :c], r[:, :, :-1, c:], r[:, :, 1:, :c])
        for col_source, m in cols.items():
            maps[row_source, col_source] = tf.reshape(m, [1, h // 2, w // 2, c])
    return maps


def winograd_transpose_conv(x: tf.Tensor, kernel: np.ndarray, bias: np.ndarray, relu: bool) -> tf.Tensor:
    """conv2d_transpose(x, 3x3, stride 2, 'same') + bias (and ReLU); ``kernel`` in Conv2D layout.

    Height and width must be even (inputs are taken in pairs); batch must be 1.
    """
    maps = _transformed_inputs(x)
    sums: dict[tuple[int, int], list[tf.Tensor]] = {}
    for (i, row), (j, col) in itertools.product(enumerate(_TERMS), repeat=2):
        weight = np.einsum("i,j,ijab->ab", row.taps, col.taps, kernel).astype(np.float32)
        y = tf.nn.conv2d(maps[row.source, col.source], tf.constant(weight[None, None]), 1, "VALID")
        owns = [(u, v) for u in row.phases for v in col.phases if _ALONE[u] == i and _ALONE[v] == j]
        if owns:
            y = tf.nn.bias_add(y, bias)
        for u, v in itertools.product(row.phases, col.phases):
            sums.setdefault((u, v), []).append(y)
    phases = []
    for u, v in itertools.product(range(4), repeat=2):
        total = functools.reduce(operator.add, sums[u, v])  # ADD: XNNPACK has no ADD_N
        phases.append(tf.nn.relu(total) if relu else total)
    # XNNPACK's CONCATENATION takes at most 5 inputs; 16 at once would run outside the delegate.
    rows = [tf.concat(phases[u * 4:u * 4 + 4], axis=-1) for u in range(4)]
    return depth_to_space(tf.concat(rows, axis=-1), 4)
