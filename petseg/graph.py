"""What the graph holds: ops, which of them the delegate left on plain kernels, and MACs."""

from __future__ import annotations

from collections import Counter

import numpy as np


def ops_outside_delegate(interpreter) -> Counter:
    """Count, by op name, the nodes that run outside the delegate (XNNPACK by default).

    After delegation the node list holds the original nodes plus one DELEGATE
    node per delegated partition. A partition covers every node between the
    DELEGATE node's inputs and outputs; whatever no partition covers runs on
    TFLite's own kernels (often the reason a variant is slow).
    """
    nodes = interpreter._get_ops_details()  # noqa: SLF001 - the only view of the node list
    originals = [n for n in nodes if n["op_name"] != "DELEGATE"]
    producer = {int(t): n for n in originals for t in n["outputs"]}
    covered: set[int] = set()
    for delegate in (n for n in nodes if n["op_name"] == "DELEGATE"):
        boundary = {int(t) for t in delegate["inputs"]}
        stack = [int(t) for t in delegate["outputs"]]
        while stack:
            tensor = stack.pop()
            node = producer.get(tensor)
            if tensor in boundary or node is None or node["index"] in covered:
                continue
            covered.add(node["index"])
            stack.extend(int(t) for t in node["inputs"] if t >= 0)
    return Counter(n["op_name"] for n in originals if n["index"] not in covered)


# The ops that do a network's multiply-accumulates (nearly all of a U-Net's time).
MAC_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"})


def count_macs(interpreter) -> int:
    """Multiply-accumulates per inference of the convolution-like ops (what dominates a U-Net)."""
    return sum(macs_by_op(interpreter).values())


def macs_by_op(interpreter) -> Counter:
    """Multiply-accumulates per inference, by op name (CONV_2D, DEPTHWISE_CONV_2D, ...)."""
    shapes = {t["index"]: tuple(int(x) for x in t["shape"]) for t in interpreter.get_tensor_details()}
    total: Counter = Counter()
    for node in interpreter._get_ops_details():  # noqa: SLF001
        op = node["op_name"]
        if op in MAC_OPS:
            total[op] += _node_macs(op, list(node["inputs"]), list(node["outputs"]), shapes)
    return total


def _node_macs(op: str, ins: list[int], outs: list[int], shapes: dict[int, tuple[int, ...]]) -> int:
    if op == "TRANSPOSE_CONV":  # inputs: output_shape, weights [O, H, W, I], input
        weights, data = shapes.get(ins[1]), shapes.get(ins[2])
        return int(np.prod(data)) * weights[0] * weights[1] * weights[2] if weights and data else 0
    weights, out = shapes.get(ins[1]), shapes.get(outs[0])
    if not weights or not out:
        return 0
    if op == "CONV_2D":  # weights [O, H, W, I]
        return int(np.prod(out)) * weights[1] * weights[2] * weights[3]
    if op == "DEPTHWISE_CONV_2D":  # weights [1, H, W, O]
        return int(np.prod(out)) * weights[1] * weights[2]
    return int(np.prod(out)) * weights[1]  # FULLY_CONNECTED weights [O, I]
