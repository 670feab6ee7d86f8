"""Open an exported model by its file type, behind one interface (set_input/invoke/predict)."""

from __future__ import annotations

from pathlib import Path

from .errors import PetsegError


def open_model(path: Path, num_threads: int | None = None, verified: bool = False):
    """A TFLiteModel for .tflite files, an OnnxModel for .onnx files."""
    path = Path(path)
    if path.is_dir():
        raise PetsegError(f"{path} is a directory; pass a model file")
    if path.suffix == ".onnx":
        from .onnx_runtime import OnnxModel

        return OnnxModel(path, num_threads)
    from .runtime import TFLiteModel

    return TFLiteModel(path, num_threads=num_threads, verified=verified)


def describe_io(path: Path) -> dict:
    """Input and output tensors (name, shape, dtype, quantisation) of an exported model."""
    path = Path(path)
    if path.suffix == ".onnx":
        model = open_model(path)
        return {"inputs": [{"name": model.input.name, "shape": [1, *model.input.shape[1:]],
                            "dtype": model.input_dtype, "quantization": [0.0, 0]}],
                "outputs": [{"name": o.name, "shape": [1, *o.shape[1:]], "dtype": "float32",
                             "quantization": [0.0, 0]} for o in model.session.get_outputs()]}
    from .runtime import probe

    return probe(path)
