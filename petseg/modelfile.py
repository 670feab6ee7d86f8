"""Where a model's description (description.py) lives: the sidecar JSON beside it, or the copy inside it.

``petseg-export`` writes the same description twice: ``petseg_<variant>.json`` beside the
model, and ``petseg.json`` inside the ``.tflite`` (an associated file of the TFLite
metadata, stored in the zip archive appended to the flatbuffer). Reading the inside copy
needs only the standard library, so the runtime-only install can do it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from .atomic import write_json
from .description import KERAS, Description, from_json
from .errors import PetsegError

EMBEDDED_JSON = "petseg.json"


def sidecar(model_path: Path) -> Path:
    """``models/petseg_int8.tflite`` -> ``models/petseg_int8.json``."""
    return Path(model_path).with_suffix(".json")


def read_sidecar(model_path: Path) -> dict | None:
    """The metadata beside ``model_path``, or None when there is none."""
    path = sidecar(model_path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PetsegError(f"{path} is not valid JSON ({exc}); delete it or re-export the model") from exc
    if not isinstance(meta, dict):
        raise PetsegError(f"{path} does not hold petseg metadata; delete it or re-export the model")
    return meta


def read_embedded(model_path: Path) -> dict | None:
    """The ``petseg.json`` packed inside an exported ``.tflite``, or None when it has none."""
    path = Path(model_path)
    if path.suffix != ".tflite" or not path.is_file() or not zipfile.is_zipfile(path):
        return None
    fix = "re-export the model with petseg-export, or put its .json beside it"
    try:
        with zipfile.ZipFile(path) as archive:
            if EMBEDDED_JSON not in archive.namelist():
                return None
            meta = json.loads(archive.read(EMBEDDED_JSON).decode("utf-8"))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        # ValueError covers bad JSON and bad UTF-8; BadZipFile a failed CRC or a cut archive.
        raise PetsegError(f"{path}: its embedded metadata ({EMBEDDED_JSON}) is damaged "
                          f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); {fix}") from exc
    if not isinstance(meta, dict):
        raise PetsegError(f"{path}: its embedded {EMBEDDED_JSON} does not hold petseg metadata; {fix}")
    return meta


def read_description(model_path: Path) -> Description | None:
    """The sidecar when there is one (it may be newer), else the copy inside the model, else None."""
    data = read_sidecar(model_path)
    where = sidecar(model_path) if data is not None else model_path
    if data is None:
        data = read_embedded(model_path)
    # A file from before the schema that names no variant is taken for what its name says.
    variant = KERAS if Path(model_path).suffix == ".keras" else variant_of_file(model_path)
    return None if data is None else from_json(data, where, variant)


def write_description(dest: Path, description: Description) -> Path:
    """Write ``description`` beside a model written outside atomic.write_files (training)."""
    write_json(sidecar(dest), description.to_json())
    return sidecar(dest)


# Every stage names the model files the same way: this is the one place that says how.
TRAINED_MODEL = "petseg.keras"
PREFIX = "petseg_"


# The variants whose files are not TFLite (the ONNX comparison variants); every other one is.
ONNX_VARIANTS = ("onnx", "onnx-int8")


def variant_suffix(variant: str) -> str:
    """The file suffix of ``variant``'s export: ``.onnx`` for the ONNX variants, ``.tflite`` otherwise."""
    return ".onnx" if variant in ONNX_VARIANTS else ".tflite"


def variant_file(directory: Path, variant: str) -> Path:
    """``models``, ``int8`` -> ``models/petseg_int8.tflite``."""
    return Path(directory) / f"{PREFIX}{variant}{variant_suffix(variant)}"


def variant_of_file(path: Path) -> str:
    """The variant a file is named for, when its description does not say (``petseg_int8`` -> ``int8``)."""
    return Path(path).stem.removeprefix(PREFIX)


def variant_of(path: Path, description: Description | None) -> str:
    """The variant a model is: what its ``description`` says, else what its file is named for."""
    return description.variant if description else variant_of_file(path)


# What to do about a missing model, by the kind of file that was asked for.
_MISSING = {".keras": "train one with petseg-train (or make model), or pass --model",
            ".onnx": "pass an exported .onnx model",
            ".tflite": "pass the path of an exported .tflite model"}
TFLITE_IDENTIFIER = b"TFL3"


def check_model_path(path: Path, kinds: tuple[str, ...] = (".tflite", ".onnx", ".keras")) -> Path:
    """Refuse what cannot be a model of one of ``kinds`` before any runtime (or TensorFlow) sees it.

    A file is a .onnx or .keras by its suffix, and otherwise taken for a .tflite, whose
    flatbuffer header is checked.
    """
    path = Path(path)
    kind = path.suffix if path.suffix in (".onnx", ".keras") else ".tflite"
    if path.is_dir():
        raise PetsegError(f"{path} is a directory; pass a model file ({' or '.join(kinds)})")
    if kind not in kinds:
        raise PetsegError(f"{path} is not a {' or '.join(kinds)} model; pass one"
                          + (" (the petseg.keras that petseg-train wrote)" if kinds == (".keras",) else ""))
    if not path.is_file():
        raise PetsegError(f"{path} does not exist; {_MISSING[kind]}")
    if kind == ".keras" and not zipfile.is_zipfile(path):
        raise PetsegError(f"{path} is not a Keras 3 .keras model file; pass the petseg.keras that "
                          "petseg-train wrote")
    if kind == ".tflite":
        with open(path, "rb") as f:
            header = f.read(16)
        if len(header) < 16 or header[4:8] != TFLITE_IDENTIFIER:
            raise PetsegError(f"{path} is not a TFLite model (no TFL3 flatbuffer header); "
                              "export one with petseg-export")
    return path
