"""ONNX Runtime behind the same interface as TFLiteModel, so one table can hold both runtimes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .described import check_described
from .environment import package_version
from .errors import PetsegError
from .modelfile import check_model_path
from .runtime import check_image_io
from .segmenter import Segmenter


class OnnxModel(Segmenter):
    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise PetsegError("timing .onnx models needs ONNX Runtime: pip install 'petseg[onnx]'") from exc
        path = check_model_path(path, (".onnx",))
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
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
        return 0

    def set_input(self, image: np.ndarray) -> None:
        self._feed = {self.input.name: image[None].astype(np.dtype(self.input_dtype))}

    def invoke(self) -> None:
        self._out = self.session.run(None, self._feed)[0]

    def logits(self) -> np.ndarray:
        return self._out[0].astype(np.float32)
