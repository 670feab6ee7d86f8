"""A model's description checked against the model file itself, before petseg acts on any of it.

The description (description.py) is input like any other: a sidecar can be edited, copied from
another variant or tampered with, and its image size decides how large the images are that
petseg draws and allocates. Every copy (the sidecar and the one inside the .tflite) must agree
with the tensors the runtime reports for the file, or the model is refused in one line.
"""

from __future__ import annotations

from pathlib import Path

from .description import KERAS, Description, from_json
from .errors import PetsegError
from .modelfile import read_embedded, read_sidecar, sidecar, variant_of_file

_FIX = "delete the stale JSON beside the model, or re-export it with petseg-export"


def every_copy(model_path: Path) -> list[tuple[Path, Description]]:
    """Each description of ``model_path`` with where it was read: the sidecar, the embedded copy."""
    path = Path(model_path)
    variant = KERAS if path.suffix == ".keras" else variant_of_file(path)
    copies = ((sidecar(path), read_sidecar(path)), (path, read_embedded(path)))
    return [(where, from_json(data, where, variant)) for where, data in copies if data is not None]


def check_described(model_path: Path, io: dict) -> None:
    """Every description of ``model_path`` agrees with ``io``, its tensors as the runtime reports them
    (models.describe_io's form: inputs and outputs with shape and dtype)."""
    tensor_in, tensor_out = io["inputs"][0], io["outputs"][0]
    shape_in = [int(x) for x in tensor_in["shape"]]
    for where, description in every_copy(model_path):
        said = "its embedded petseg.json" if where == Path(model_path) else str(where)
        if description.image_size != shape_in[1]:
            raise PetsegError(f"{model_path}: {said} gives image_size {description.image_size}, but the "
                              f"model takes {shape_in[1]}x{shape_in[2]} images; {_FIX}")
        classes = int(tensor_out["shape"][-1])
        if len(description.classes) != classes:
            raise PetsegError(f"{model_path}: {said} names {len(description.classes)} classes, but the "
                              f"model returns {classes} scores per pixel; {_FIX}")
        recorded = description.input.tensor
        for name, actual in (("shape", shape_in), ("dtype", tensor_in["dtype"])):
            if name in recorded and _plain(recorded[name]) != actual:
                raise PetsegError(f"{model_path}: {said} gives input {name} {recorded[name]!r}, but the "
                                  f"model's input is {actual!r}; {_FIX}")


def _plain(value: object) -> object:
    return list(value) if isinstance(value, (list, tuple)) else value
