"""ONNX Runtime behind the same interface as TFLiteModel, so one table can hold both runtimes."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from .described import check_described
from .environment import package_version
from .errors import PetsegError
from .modelfile import check_model_path
from .runtime import check_image_io
from .segmenter import Segmenter


class OnnxModel(Segmenter):
    def __init__(self, path: Path, num_threads: int | None = None,
                 profile_prefix: Path | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise PetsegError("timing .onnx models needs ONNX Runtime: pip install 'petseg[onnx]'") from exc
        path = check_model_path(path, (".onnx",))
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        if profile_prefix is not None:  # ONNX Runtime's node profile (benchmark/profile_worker.py)
            options.enable_profiling = True
            options.profile_file_prefix = str(profile_prefix)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise PetsegError(f"{path} is not a usable ONNX model ({exc}); re-export it") from exc
        self.path = path
        self.input = self.session.get_inputs()[0]
        output = self.session.get_outputs()[0]
        check_image_io([1, *self.input.shape[1:]], [1, *output.shape[1:]], path)
        check_described(path, {"inputs": [{"shape": [1, *self.input.shape[1:]], "dtype": self.input_dtype}],
                               "outputs": [{"shape": [1, *output.shape[1:]]}]})
        self._feed: dict[str, np.ndarray] = {}
        self._out: np.ndarray | None = None

    @property
    def image_size(self) -> int:
        return int(self.input.shape[1])

    @property
    def runtime_name(self) -> str:
        return f"onnxruntime {package_version('onnxruntime')}"

    @property
    def input_dtype(self) -> str:
        return "uint8" if "uint8" in self.input.type else "float32"

    def outside_delegate(self) -> dict[str, int]:
        return {}

    def macs(self) -> int:
        return sum(node.macs for node in conv_macs(self.path))

    def set_input(self, image: np.ndarray) -> None:
        self._feed = {self.input.name: image[None].astype(np.dtype(self.input_dtype))}

    def invoke(self) -> None:
        self._out = self.session.run(None, self._feed)[0]

    def logits(self) -> np.ndarray:
        return self._out[0].astype(np.float32)


# The ONNX ops that do multiply-accumulates, and where their weights sit among the inputs.
WEIGHT_INPUT = {"Conv": 1, "ConvTranspose": 1, "ConvInteger": 1, "QLinearConv": 3, "Gemm": 1,
                 "MatMul": 1, "MatMulInteger": 1, "QLinearMatMul": 3}


class MacNode(NamedTuple):
    name: str
    op_type: str
    weights: list[int]
    macs: int


def conv_macs(path: Path) -> list[MacNode]:
    """Each multiply-accumulating node in the file: its name, op type, weight shape and MACs.

    Counted on the graph as written, with ONNX's shape inference (the onnx package, in
    petseg[onnx]): ONNX Runtime's own profile omits the weights of the ops it prepacks. Empty
    where onnx is not installed.
    """
    try:
        import onnx
    except ImportError:
        return []
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes = {v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]
              for v in (*graph.input, *graph.value_info, *graph.output)}
    shapes.update({t.name: list(t.dims) for t in graph.initializer})
    found = []
    for node in graph.node:
        at = WEIGHT_INPUT.get(node.op_type)
        if at is None or len(node.input) <= at:
            continue
        data, weights = shapes.get(node.input[0]), shapes.get(node.input[at])
        out = shapes.get(node.output[0])
        if not data or not weights or not out:
            continue
        found.append(MacNode(node.name, node.op_type, weights, _node_macs(node, data, weights, out)))
    return found


def _node_macs(node, data: list[int], weights: list[int], out: list[int]) -> int:
    op = node.op_type
    if op == "ConvTranspose":  # weights [C_in, C_out / group, kH, kW]: every input pixel
        return int(np.prod(data)) * int(np.prod(weights[1:]))
    if op in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):  # K: the data's last axis,
        trans_a = any(a.name == "transA" and a.i for a in node.attribute)  # or its first for Gemm's transA
        return int(np.prod(out)) * (data[0] if trans_a else data[-1])
    return int(np.prod(out)) * int(np.prod(weights[1:]))  # weights [C_out, C_in / group, kH, kW]
