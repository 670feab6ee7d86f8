"""The one description of a petseg model, shared by every stage: typed, versioned, read in one place.

petseg-train writes it beside ``petseg.keras`` (``petseg.json``); petseg-export writes one beside
each variant (``petseg_<variant>.json``) and packs the same JSON inside the ``.tflite`` (an
associated file of its TFLite metadata); petseg-bench and petseg-predict read it from either
place (modelfile.py). Only this module turns it into JSON or back: the typed fields are what
the stages act on, ``details`` is everything else (recipe, metrics, verification, versions),
kept for people to read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import PetsegError
from .labels import CLASSES

# 1: the first versioned schema. Files without "schema" come from petseg before it and are read
# by _legacy. Bump it when a field changes meaning; readers refuse a schema newer than theirs.
SCHEMA = 1
KERAS = "keras"  # the variant name of the trained model itself
RAW_PIXELS = "raw RGB 0..255; the model scales to [-1, 1] itself"


@dataclass(frozen=True)
class InputConvention:
    """What the model's input expects, as ``(pixel - mean) / std`` over 0..255 RGB pixels."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    normalisation: str = RAW_PIXELS
    tensor: dict[str, Any] = field(default_factory=dict)  # name, shape, dtype, quantisation (exports)

    def to_json(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "normalisation": self.normalisation,
                **self.tensor}


@dataclass(frozen=True)
class Description:
    variant: str  # KERAS for the trained model, else the export variant (fp32, int8, ...)
    image_size: int
    classes: tuple[str, ...] = CLASSES
    input: InputConvention = InputConvention()
    size: str = "seed"  # the model size (train/sizes.py)
    decoder_filters: tuple[int, ...] = ()
    dataset: str | None = None  # images it was trained on (Keras), calibrated and verified on (exports)
    val_fraction: float = 0.1  # with seed: which training images were held out
    seed: int = 0
    best_epoch: int | None = None  # the trained model's epoch (counted from 1)
    details: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA

    def to_json(self) -> dict:
        typed = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("details", "input")}
        return _plain({"schema": self.schema, **typed, "input": self.input.to_json(), **self.details})

    def derived(self, **changes: Any) -> Description:
        """This description with ``changes`` (an export's, from its trained model's)."""
        return replace(self, **changes)

    @property
    def source_path(self) -> Path | None:
        """The trained .keras an export came from, as recorded at export time."""
        path = (self.details.get("source_model") or {}).get("path")
        return Path(path) if isinstance(path, str) else None


def from_json(data: Any, where: Path | str) -> Description:
    """The description in ``data`` (parsed JSON); a one-line PetsegError naming ``where`` if it is not one."""
    fix = "re-export the model with petseg-export (or retrain with petseg-train)"
    if not isinstance(data, dict):
        raise PetsegError(f"{where}: does not hold petseg metadata; {fix}")
    schema = data.get("schema")
    if schema is None:
        data = _legacy(data)
    elif not isinstance(schema, int) or isinstance(schema, bool) or schema > SCHEMA:
        raise PetsegError(f"{where}: its metadata has schema {schema!r}, newer than this petseg reads "
                          f"({SCHEMA}); upgrade petseg")
    known = {f.name for f in fields(Description)} - {"details", "schema"}
    typed = {k: data[k] for k in known if data.get(k) is not None}
    details = {k: v for k, v in data.items() if k not in known and k != "schema"}
    try:
        return _checked(Description(**{**typed, "details": details, "schema": SCHEMA}), where)
    except (TypeError, ValueError) as exc:
        raise PetsegError(f"{where}: its metadata is malformed ({exc}); {fix}") from exc


def _checked(d: Description, where: Path | str) -> Description:
    """Types and ranges of the fields the stages act on, converted to their Python form."""
    fix = "re-export the model with petseg-export"
    for name, kind, said in (("variant", str, "a string"), ("image_size", int, "an integer"),
                             ("size", str, "a string"), ("val_fraction", (int, float), "a number"),
                             ("seed", int, "an integer")):
        value = getattr(d, name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise PetsegError(f"{where}: its metadata field {name!r} is {value!r}, not {said}; {fix}")
    if d.image_size < 1:
        raise PetsegError(f"{where}: its metadata gives image_size {d.image_size}; {fix}")
    names = d.classes
    if (not isinstance(names, (list, tuple)) or len(names) != len(CLASSES)
            or not all(isinstance(n, str) for n in names)):
        raise PetsegError(f"{where}: its metadata lists classes {names!r}, not {len(CLASSES)} names; "
                          "petseg works with its own pet/background/border models")
    spec = d.input if isinstance(d.input, InputConvention) else _input(d.input, where)
    return replace(d, classes=tuple(names), input=spec, decoder_filters=tuple(d.decoder_filters))


def _input(spec: Any, where: Path | str) -> InputConvention:
    import numpy as np

    if not isinstance(spec, dict):
        raise PetsegError(f"{where}: its metadata field 'input' is {spec!r}, not a dict; re-export the model")
    try:
        mean = np.broadcast_to(np.asarray(spec.get("mean", 0.0), np.float32), (3,))
        std = np.broadcast_to(np.asarray(spec.get("std", 1.0), np.float32), (3,))
    except (TypeError, ValueError) as exc:
        raise PetsegError(f"{where}: its metadata gives an input mean/std that is not 1 or 3 numbers "
                          f"({exc}); re-export the model with petseg-export") from exc
    if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) or np.any(std == 0):
        raise PetsegError(f"{where}: its metadata gives input std {std.tolist()}; it must be finite and "
                          "non-zero: re-export the model with petseg-export")
    tensor = {k: v for k, v in spec.items() if k not in ("mean", "std", "normalisation")}
    return InputConvention(tuple(map(float, mean)), tuple(map(float, std)),
                           str(spec.get("normalisation", RAW_PIXELS)), tensor)


def _legacy(data: dict) -> dict:
    """A description written before the schema (petseg 0.1 exports and trained models)."""
    def section(name: str) -> dict:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    recipe, trained, source = section("recipe"), section("data"), section("source_model")
    dataset = section("calibration").get("source") or trained.get("source") or source.get("trained_on")
    moved = {"variant": data.get("variant") or KERAS, "size": data.get("size") or recipe.get("size"),
             "dataset": dataset, "seed": recipe.get("seed"), "val_fraction": trained.get("val_fraction")}
    return {**data, **{k: v for k, v in moved.items() if v is not None}}


def _plain(value: Any) -> Any:
    """Tuples as lists, so that a description survives a JSON round trip unchanged."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
