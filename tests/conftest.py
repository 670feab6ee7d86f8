"""Shared fixtures: small generated data, and the real material in ../shared when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data" / "oxford-iiit-pet-3breeds"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.0_no_top.weights.h5"


@pytest.fixture
def official_dir(tmp_path: Path) -> Path:
    """A tiny dataset in the official Oxford-IIIT Pet layout, drawn synthetically."""
    from official_layout import write_official_layout

    return write_official_layout(tmp_path / "pets", n_trainval=10, n_test=4, size=64)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data/oxford-iiit-pet-3breeds is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    if not SHARED_WEIGHTS.is_file():
        pytest.skip("../shared/weights is absent")
    return SHARED_WEIGHTS


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A petseg.keras trained for 2 epochs on synthetic pets at 64x64: fast, but real weights."""
    from petseg.train.cli import main

    out = tmp_path_factory.mktemp("models")
    assert main(["--data", "synthetic:24", "--image-size", "64", "--encoder-weights", "none",
                 "--epochs", "2", "--batch-size", "8", "--out", str(out)]) == 0
    return out / "petseg.keras"


@pytest.fixture(scope="session")
def learned_model(tmp_path_factory) -> Path:
    """A petseg.keras trained from scratch just long enough to find the synthetic pets.

    tiny_model's 6 steps leave it predicting background nearly everywhere, and anything that does
    the same agrees with it; tests that compare predictions need a model with something to lose.
    """
    from petseg.train.cli import main

    out = tmp_path_factory.mktemp("learned")
    assert main(["--data", "synthetic:24", "--image-size", "64", "--encoder-weights", "none",
                 "--epochs", "4", "--batch-size", "4", "--learning-rate", "3e-3", "--out", str(out)]) == 0
    return out / "petseg.keras"


@pytest.fixture(scope="session")
def pretrained_tiny_model(tmp_path_factory, shared_weights) -> Path:
    """Like tiny_model, but on the real ImageNet encoder weights (int16x8 needs realistic ranges)."""
    from petseg.train.cli import main

    out = tmp_path_factory.mktemp("pretrained")
    assert main(["--data", "synthetic:24", "--image-size", "64", "--encoder-weights", str(shared_weights),
                 "--epochs", "2", "--batch-size", "8", "--out", str(out)]) == 0
    return out / "petseg.keras"


def _tflite_logits(model, images: np.ndarray) -> np.ndarray:
    """Float logits (N, S, S, C) of a petseg TFLiteModel, or of the .tflite at a path, one image at
    a time as a device runs it."""
    from petseg.runtime import TFLiteModel

    model = model if isinstance(model, TFLiteModel) else TFLiteModel(model)
    out = []
    for image in images:
        model.set_input(image)
        model.invoke()
        out.append(model.logits())
    return np.stack(out)


@pytest.fixture(scope="session")
def tflite_logits():
    return _tflite_logits


def _tiny_tflite(shape_in=(1, 32, 32, 3), channels_out=3) -> bytes:
    """A small valid TFLite model (not petseg's), built with TensorFlow."""
    import tensorflow as tf

    conv = tf.keras.layers.Conv2D(channels_out, 3, padding="same")

    @tf.function(input_signature=[tf.TensorSpec(shape_in, tf.float32)])
    def f(x):
        return conv(x) if len(shape_in) == 4 else tf.reduce_sum(x, axis=-1, keepdims=True)

    return tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()]).convert()


@pytest.fixture(scope="session")
def tiny_tflite():
    return _tiny_tflite
