"""Sidecar metadata JSON that travels beside every model file."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import PetsegError


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
