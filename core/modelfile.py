"""petseg's description of a model file: the sidecar JSON beside it, or the copy inside it.

``petseg-export`` writes the same description twice: ``petseg_<variant>.json`` beside the
model, and ``petseg.json`` inside the ``.tflite`` (an associated file of the TFLite
metadata, stored in the zip archive appended to the flatbuffer). Reading the inside copy
needs only the standard library, so the runtime-only install can do it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

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


def classes_of(meta: dict | None, path: Path) -> tuple[str, ...]:
    """The class names a model's metadata lists (petseg's three when it has none)."""
    from .labels import CLASSES

    names = (meta or {}).get("classes", CLASSES)
    if (not isinstance(names, (list, tuple)) or len(names) != len(CLASSES)
            or not all(isinstance(n, str) for n in names)):
        raise PetsegError(f"{path}: its metadata lists classes {names!r}, not {len(CLASSES)} names; "
                          "petseg works with its own pet/background/border models")
    return tuple(names)


def input_normalisation(meta: dict | None, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) the model's input expects, as ``(pixel - mean) / std`` over 0..255 pixels."""
    spec = (meta or {}).get("input") or {}
    try:
        mean = np.broadcast_to(np.asarray(spec.get("mean", 0.0), np.float32), (3,))
        std = np.broadcast_to(np.asarray(spec.get("std", 1.0), np.float32), (3,))
    except (TypeError, ValueError) as exc:
        raise PetsegError(f"{path}: its metadata gives an input mean/std that is not 1 or 3 numbers "
                          f"({exc}); re-export the model with petseg-export") from exc
    if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) or np.any(std == 0):
        raise PetsegError(f"{path}: its metadata gives input std {std.tolist()}; it must be finite and "
                          "non-zero: re-export the model with petseg-export")
    return mean, std


def read_metadata(model_path: Path) -> dict | None:
    """The sidecar when there is one (it may be newer), else the copy inside the model, else None."""
    meta = read_sidecar(model_path) or read_embedded(model_path)
    if meta is not None:
        _check_fields(meta, model_path)
    return meta


# The fields other stages act on, and what each must be; the rest is for people to read.
_FIELDS = {"variant": str, "image_size": int, "classes": list, "input": dict, "calibration": dict,
           "source_model": dict}


def _check_fields(meta: dict, path: Path) -> None:
    for name, kind in _FIELDS.items():
        value = meta.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise PetsegError(f"{path}: its metadata field {name!r} is {value!r}, not a {kind.__name__}; "
                              "re-export the model with petseg-export")
    if meta.get("image_size") is not None and meta["image_size"] < 1:
        raise PetsegError(f"{path}: its metadata gives image_size {meta['image_size']}; re-export the model")
