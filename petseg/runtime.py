"""The LiteRT interpreter, loaded without TensorFlow, and a model wrapper that speaks images.

``ai_edge_litert`` is the maintained runtime; ``tflite_runtime`` is accepted only
as a fallback for devices that have nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .child import run_module
from .described import check_described
from .description import InputConvention
from .environment import package_version
from .errors import PetsegError
from .graph import count_macs, ops_outside_delegate
from .modelfile import check_model_path, read_description
from .segmenter import Segmenter


@dataclass(frozen=True)
class Runtime:
    name: str
    version: str
    interpreter_class: type


def load_runtime() -> Runtime:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Runtime("ai-edge-litert", package_version("ai-edge-litert") or "?", Interpreter)
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Runtime("tflite-runtime", package_version("tflite-runtime") or "?", Interpreter)
    except ImportError as exc:
        raise PetsegError("no TFLite runtime found; pip install ai-edge-litert") from exc


def probe(path: Path, timeout: float = 120.0) -> dict:
    """Load, allocate and run ``path`` once in a child process and return its I/O details.

    A malformed flatbuffer can crash the native interpreter outright, so the
    first contact happens in a process whose death we can survive and report.
    """
    check_model_path(path, (".tflite",))
    answer = run_module("petseg.runtime_probe", [str(path)], f"{path} is not a usable TFLite model",
                        "re-export it with petseg-export", timeout)
    return json.loads(answer)


class TFLiteModel(Segmenter):
    """An image segmentation model in LiteRT: uint8 images in, class ids out."""

    def __init__(self, path: Path, num_threads: int | None = None, verified: bool = False) -> None:
        if not verified:
            probe(path)
        self.path = Path(path)
        self.runtime = load_runtime()
        self.interpreter = self.runtime.interpreter_class(model_path=str(path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        check_image_io(self.input["shape"], self.output["shape"], path)
        self.mean, self.std, self.raw_pixels = checked_convention(path, self.input, self.output)

    @property
    def image_size(self) -> int:
        return int(self.input["shape"][1])

    @property
    def runtime_name(self) -> str:
        return f"{self.runtime.name} {self.runtime.version}"

    @property
    def input_dtype(self) -> str:
        return np.dtype(self.input["dtype"]).name

    def outside_delegate(self) -> dict[str, int]:
        return dict(ops_outside_delegate(self.interpreter))

    def macs(self) -> int:
        return count_macs(self.interpreter)

    def set_input(self, image: np.ndarray) -> None:
        pixels = image[None] if self.raw_pixels else (image[None].astype(np.float32) - self.mean) / self.std
        self.interpreter.set_tensor(self.input["index"], quantize(pixels, self.input))

    def invoke(self) -> None:
        self.interpreter.invoke()

    def logits(self) -> np.ndarray:
        return dequantize(self.interpreter.get_tensor(self.output["index"]), self.output)[0]


def checked_convention(path: Path, tensor_in: dict, tensor_out: dict) -> tuple[np.ndarray, np.ndarray, bool]:
    """input_convention, once every copy of the description agrees with the model's own tensors:
    every runner reads a description through here, so none acts on a tampered one."""
    check_described(path, {"inputs": [_tensor(tensor_in)], "outputs": [_tensor(tensor_out)]})
    return input_convention(path)


def input_convention(path: Path) -> tuple[np.ndarray, np.ndarray, bool]:
    """Mean, std and whether the model takes raw 0..255 pixels, from its metadata (raw if none)."""
    description = read_description(path)
    convention = description.input if description else InputConvention()
    mean, std = np.asarray(convention.mean, np.float32), np.asarray(convention.std, np.float32)
    return mean, std, not mean.any() and bool(np.all(std == 1))


def _tensor(detail: dict) -> dict:
    return {"shape": [int(x) for x in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name}


def check_image_io(input_shape, output_shape, path: Path) -> None:
    ins, outs = list(input_shape), list(output_shape)
    if len(ins) != 4 or ins[3] != 3 or ins[1] != ins[2]:
        raise PetsegError(f"{path} takes input of shape {ins}, not a square RGB image "
                          "[1, S, S, 3]; petseg works with image segmentation models")
    if len(outs) != 4 or outs[1:3] != ins[1:3]:
        raise PetsegError(f"{path} returns shape {outs}, not per-pixel class scores "
                          f"[1, {ins[1]}, {ins[2]}, C]; petseg works with image segmentation models")


def quantize(pixels: np.ndarray, detail: dict) -> np.ndarray:
    """Raw 0..255 pixels as the model's input tensor (the model scales them itself)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return pixels.astype(dtype)
    scale, zero = detail["quantization"]
    q = np.round(pixels.astype(np.float32) / (scale or 1.0) + zero)
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if np.dtype(detail["dtype"]).kind == "f" or not scale:
        return values.astype(np.float32)
    return (values.astype(np.float32) - zero) * scale
