"""Load the trained Keras model safely and read what training recorded about it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from petseg.description import KERAS, Description
from petseg.errors import PetsegError
from petseg.labels import NUM_CLASSES
from petseg.modelfile import check_model_path, read_description, sidecar

if TYPE_CHECKING:
    import keras


def load_keras_model(path: Path) -> keras.Model:
    """Load ``path`` with Keras ``safe_mode`` and check it is a petseg segmentation model."""
    path = check_model_path(path, (".keras",))
    import keras  # noqa: F811 - imported here so that path checks stay fast

    try:
        # safe_mode refuses Lambda layers and other deserialised code: a model file is data.
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, TypeError, KeyError... for bad files
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise PetsegError(f"cannot load {path} safely ({reason}); pass a model written by "
                          "petseg-train") from exc
    shape_in, shape_out = model.input_shape, model.output_shape
    if (not isinstance(shape_in, tuple) or len(shape_in) != 4 or shape_in[3] != 3
            or shape_in[1] != shape_in[2] or shape_in[1] is None
            or not isinstance(shape_out, tuple) or shape_out[1:] != (*shape_in[1:3], NUM_CLASSES)):
        raise PetsegError(f"{path} is not a petseg segmentation model (input {shape_in}, output "
                          f"{shape_out}); pass a model written by petseg-train")
    return model


class KerasSegmenter:
    """A trained .keras model behind the calls petseg-predict makes on any model (needs TensorFlow).

    Registered as the ``keras`` entry of the ``petseg.model_formats`` entry points (pyproject.toml),
    through which the core opens it without importing this stage.
    """

    def __init__(self, path: Path) -> None:
        try:
            import keras  # noqa: F401 - only to name the missing piece before any work
        except ImportError as exc:
            raise PetsegError(f"{path}: running a .keras model needs TensorFlow (pip install "
                              "'petseg[train]'); or pass an exported .tflite") from exc
        self.model = load_keras_model(path)
        self.image_size = int(self.model.input_shape[1])

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Class ids (N, S, S) for uint8 images (N, S, S, 3)."""
        from petseg.train.evaluate import predict_classes

        return predict_classes(self.model, images)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_trained(path: Path) -> tuple[keras.Model, Description]:
    """The trained model and its description (a plain one for a .keras that petseg-train did not write)."""
    model = load_keras_model(path)
    description = read_description(path)
    size = int(model.input_shape[1])
    if description and description.image_size != size:
        raise PetsegError(f"{sidecar(path)} gives image_size {description.image_size}, but {path} takes "
                          f"{size}x{size} images; delete the stale JSON or retrain with petseg-train")
    return model, description or Description(variant=KERAS, image_size=size)
