"""What petseg reads from a TFLite graph: MACs per op, counted by hand here."""

from __future__ import annotations

import numpy as np
import pytest

from petseg.graph import count_macs
from petseg.runtime import load_runtime

tf = pytest.importorskip("tensorflow")


def _interpreter(fn, shape):
    """``fn`` converted to TFLite (batch 1, float32 input of ``shape``), loaded in LiteRT."""
    concrete = tf.function(fn, input_signature=[tf.TensorSpec(shape, tf.float32)]).get_concrete_function()
    interpreter = load_runtime().interpreter_class(
        model_content=tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert())
    interpreter.allocate_tensors()
    return interpreter


def _ops(interpreter) -> set[str]:
    return {op["op_name"] for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"}


W = np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype(np.float32)  # 3x3, 4 in, 5 out


@pytest.mark.parametrize("op, shape, fn, macs", [
    # Each output pixel and channel: one product per kernel tap and input channel.
    ("CONV_2D", (1, 8, 8, 4), lambda x: tf.nn.conv2d(x, W, 1, "SAME"),
     8 * 8 * 5 * (3 * 3 * 4)),
    # Stride 2 halves each side of the output, and the MACs with it.
    ("CONV_2D", (1, 8, 8, 4), lambda x: tf.nn.conv2d(x, W, 2, "SAME"),
     4 * 4 * 5 * (3 * 3 * 4)),
    # Depthwise: each output channel sees its own input channel only.
    ("DEPTHWISE_CONV_2D", (1, 8, 8, 4),
     lambda x: tf.nn.depthwise_conv2d(x, W[..., :1], [1, 1, 1, 1], "SAME"),
     8 * 8 * 4 * (3 * 3)),
    # Transposed conv (filter [3, 3, out 4, in 5]), stride 2: every input pixel and channel is
    # spread over 3x3 taps of the 4 output channels, whatever the stride.
    ("TRANSPOSE_CONV", (1, 4, 4, 5),
     lambda x: tf.nn.conv2d_transpose(x, W, [1, 8, 8, 4], 2, "SAME"),
     4 * 4 * 5 * (3 * 3 * 4)),
    ("FULLY_CONNECTED", (1, 10),
     lambda x: tf.matmul(x, np.ones((10, 6), np.float32)), 10 * 6),
])
def test_count_macs_by_hand(op, shape, fn, macs):
    interpreter = _interpreter(fn, shape)
    assert op in _ops(interpreter)
    assert count_macs(interpreter) == macs


def test_ops_without_multiply_accumulates_count_nothing():
    interpreter = _interpreter(lambda x: tf.nn.relu(x + 1.0), (1, 8, 8, 4))
    assert count_macs(interpreter) == 0
