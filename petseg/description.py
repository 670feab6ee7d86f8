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

import numpy as np

from .errors import PetsegError
from .labels import CLASSES
from .paths import absolute, read_path, read_source, recorded_source

# 1: the first versioned schema. Files without "schema" come from petseg before it and are read
# by _legacy. Bump it when a field changes meaning; readers refuse a schema newer than theirs.
SCHEMA = 1
KERAS = "keras"  # the variant name of the trained model itself
RAW_PIXELS = "raw RGB 0..255; the model scales to [-1, 1] itself"
# Sane bounds, checked before anything is allocated from a description: an image side far beyond
# any segmentation input (a tampered 10**7 made petseg-bench draw images until the kernel killed
# it), and an input mean/std in 0..255 pixel units.
MAX_IMAGE_SIZE = 4096
# What a trained model's description says about its architecture beside ``size`` and
# ``decoder_filters`` (train/sizes.Size.architecture_details); every export carries it on.
ARCHITECTURE = ("decoder_blocks", "head", "encoder_scale", "encoder_width")
MAX_PIXEL_UNITS = 1024.0


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
class SourceModel:
    """The trained model an export came from."""

    path: str
    sha256: str
    trained_on: str | None = None  # the dataset that model was trained on

    def to_json(self) -> dict:
        return {"path": absolute(self.path), "sha256": self.sha256,
                "trained_on": recorded_source(self.trained_on)}


@dataclass(frozen=True)
class Description:
    variant: str  # KERAS for the trained model, else the export variant (fp32, int8, ...)
    image_size: int
    classes: tuple[str, ...] = CLASSES
    input: InputConvention = InputConvention()
    size: str = "seed"  # the model size (train/sizes.py)
    decoder_filters: tuple[int, ...] = ()
    dataset: str | None = None  # images it was trained on (Keras), calibrated and verified on (exports)
    # The training split's seed and validation share, which say which training images were held
    # out (an export's own calibration seed is recorded under details["calibration"]).
    val_fraction: float = 0.1
    seed: int = 0
    best_epoch: int | None = None  # the trained model's epoch (counted from 1)
    source_model: SourceModel | None = None  # exports only
    details: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA

    def to_json(self) -> dict:
        """The JSON form; recorded paths absolute, so that the file reads the same from anywhere."""
        typed = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "details"}
        typed["dataset"] = recorded_source(self.dataset)
        return _plain({"schema": self.schema, **typed, **self.details})

    def derived(self, **changes: Any) -> Description:
        """This description with ``changes`` (an export's, from its trained model's)."""
        return replace(self, **changes)


def from_json(data: Any, where: Path | str, variant: str = KERAS) -> Description:
    """The description in ``data`` (parsed JSON); a one-line PetsegError naming ``where`` if it is not one.

    ``variant`` is what a file written before the schema is taken for when it names none.
    """
    if not isinstance(data, dict):
        raise PetsegError(f"{where}: does not hold petseg metadata; {_FIX}")
    schema = data.get("schema")
    if schema is None:
        data = _legacy(data, variant)
    elif not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise PetsegError(f"{where}: its metadata's schema {schema!r} is not a schema number; {_FIX}")
    elif schema > SCHEMA:
        raise PetsegError(f"{where}: its metadata has schema {schema}, newer than this petseg reads "
                          f"({SCHEMA}); upgrade petseg")
    known = {f.name for f in fields(Description)} - {"details", "schema"}
    for name in ("variant", "image_size"):
        if data.get(name) is None:
            raise PetsegError(f"{where}: its metadata has no {name!r}; {_FIX}")
    _check_types(data, where)
    typed = {k: data[k] for k in known if data.get(k) is not None}
    if "dataset" in typed:
        typed["dataset"] = read_source(typed["dataset"], where)
    typed.update(classes=tuple(typed.get("classes", CLASSES)), input=_input(data.get("input", {}), where),
                 decoder_filters=tuple(typed.get("decoder_filters", ())))
    if "source_model" in typed:
        typed["source_model"] = _source_model(typed["source_model"], where)
    details = {k: v for k, v in data.items() if k not in known and k != "schema"}
    return Description(**typed, details=details)


_FIX = "re-export the model with petseg-export (or retrain it with petseg-train)"
# The fields a stage acts on: (types, in words); None stands for a field left out.
_TYPES = {"variant": (str, "a string"), "image_size": (int, "an integer"), "size": (str, "a string"),
          "dataset": (str, "a string"), "val_fraction": ((int, float), "a number"),
          "seed": (int, "an integer"), "best_epoch": (int, "an integer"), "classes": (list, "a list"),
          "decoder_filters": (list, "a list"), "input": (dict, "a record"),
          "source_model": (dict, "a record"), "calibration": (dict, "a record"),
          "verification": (dict, "a record"), "recipe": (dict, "a record")}


def _check_types(data: dict, where: Path | str) -> None:
    """Types and ranges of the fields the stages act on."""
    for name, (kind, said) in _TYPES.items():
        value = data.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise PetsegError(f"{where}: its metadata field {name!r} is {value!r}, not {said}; {_FIX}")
    ranges = (("image_size", 1 <= data["image_size"] <= MAX_IMAGE_SIZE, f"1..{MAX_IMAGE_SIZE}"),
              ("best_epoch", data.get("best_epoch") is None or data["best_epoch"] >= 1, "1 or more"),
              ("val_fraction", 0 < data.get("val_fraction", 0.1) < 1, "between 0 and 1"))
    for name, ok, bounds in ranges:
        if not ok:
            raise PetsegError(f"{where}: its metadata gives {name} {data[name]!r}, out of range "
                              f"({bounds}); {_FIX}")
    names = data.get("classes", CLASSES)
    if len(names) != len(CLASSES) or not all(isinstance(n, str) for n in names):
        raise PetsegError(f"{where}: its metadata lists classes {names!r}, not {len(CLASSES)} names; "
                          "petseg works with its own pet/background/border models")
    filters = data.get("decoder_filters") or []
    if not all(isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in filters):
        raise PetsegError(f"{where}: its metadata gives decoder_filters {filters!r}, not channel counts; "
                          f"{_FIX}")


def _source_model(record: dict, where: Path | str) -> SourceModel:
    path, sha256, trained_on = record.get("path"), record.get("sha256"), record.get("trained_on")
    if not (isinstance(path, str) and isinstance(sha256, str) and isinstance(trained_on, (str, type(None)))):
        raise PetsegError(f"{where}: its metadata's source_model {record!r} is not a path and sha256; {_FIX}")
    if not Path(path).is_absolute():
        path = read_path(path, where)
    return SourceModel(path, sha256, read_source(trained_on, where))


def _input(spec: Any, where: Path | str) -> InputConvention:
    try:
        mean = np.broadcast_to(np.asarray(spec.get("mean", 0.0), np.float32), (3,))
        std = np.broadcast_to(np.asarray(spec.get("std", 1.0), np.float32), (3,))
    except (TypeError, ValueError) as exc:
        raise PetsegError(f"{where}: its metadata gives an input mean/std that is not 1 or 3 numbers "
                          f"({exc}); re-export the model with petseg-export") from exc
    sane = (np.all(np.abs(mean) <= MAX_PIXEL_UNITS) and np.all(np.abs(std) <= MAX_PIXEL_UNITS)
            and np.all(np.abs(std) >= 1 / MAX_PIXEL_UNITS))
    if not sane:  # also refuses NaN and infinity: no comparison holds for them
        raise PetsegError(f"{where}: its metadata gives input mean {mean.tolist()} and std {std.tolist()}; "
                          f"both must be finite pixel units (at most {MAX_PIXEL_UNITS:g}) and std non-zero: "
                          "re-export the model with petseg-export")
    tensor = {k: v for k, v in spec.items() if k not in ("mean", "std", "normalisation")}
    return InputConvention(tuple(map(float, mean)), tuple(map(float, std)),
                           str(spec.get("normalisation", RAW_PIXELS)), tensor)


def _legacy(data: dict, variant: str) -> dict:
    """A description written before the schema (exports and trained models of petseg 0.1.0)."""
    def section(name: str) -> dict:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    recipe, trained, source = section("recipe"), section("data"), section("source_model")
    dataset = section("calibration").get("source") or trained.get("source") or source.get("trained_on")
    moved = {"variant": data.get("variant") or variant, "size": data.get("size") or recipe.get("size"),
             "dataset": dataset, "seed": recipe.get("seed"), "val_fraction": trained.get("val_fraction")}
    return {**data, **{k: v for k, v in moved.items() if v is not None}}


def _plain(value: Any) -> Any:
    """Tuples as lists, so that a description survives a JSON round trip unchanged."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_json"):
        return _plain(value.to_json())
    return value
