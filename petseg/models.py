"""Open an exported model by its file type, behind one interface (set_input/invoke/predict)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .errors import PetsegError

# Model formats a stage reads (a .keras needs the training stack): each stage declares its
# formats as entry points in this group, named by file suffix, so that the core names no stage
# and imports one only when such a file is opened.
FORMAT_HOOKS = "petseg.model_formats"


def open_model(path: Path, num_threads: int | None = None, verified: bool = False):
    """A TFLiteModel for .tflite files, an OnnxModel for .onnx files, a stage's model for its formats."""
    # Each opener checks its own kind of file (modelfile.check_model_path), after the format
    # hooks have had their say: a stage may register any suffix.
    path = Path(path)
    if path.suffix == ".onnx":
        from .onnx_runtime import OnnxModel

        return OnnxModel(path, num_threads)
    opener = format_opener(path.suffix)
    if opener is not None:
        return opener(path)
    from .runtime import TFLiteModel

    return TFLiteModel(path, num_threads=num_threads, verified=verified)


def format_opener(suffix: str) -> Callable[[Path], Any] | None:
    """What a stage registered for files ending in ``suffix`` (e.g. '.keras'), or None."""
    for hook in entry_points(group=FORMAT_HOOKS, name=suffix.removeprefix(".")):
        try:
            return hook.load()
        except ImportError as exc:
            raise PetsegError(f"{suffix} models need petseg's training extra (pip install "
                              f"'petseg[train]'; {exc}); or pass an exported .tflite") from exc
    return None


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
