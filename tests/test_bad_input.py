"""The bad-input battery: every CLI refuses bad input with one line, status 2, nothing half-written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from petseg.errors import run_cli


def cli(name: str):
    from importlib import import_module

    module = {"train": "petseg.train.cli", "export": "petseg.export.cli", "bench": "petseg.benchmark.cli",
              "predict": "petseg.predict"}[name]
    return import_module(module).main


def refused(capsys, name: str, args: list, expect: str, watch: Path | None = None) -> None:
    """Run a CLI in-process and check the contract for bad input."""
    before = set(watch.rglob("*")) if watch and watch.exists() else set()
    status = run_cli(cli(name), [str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert expect in err, err
    if watch and watch.exists():
        assert set(watch.rglob("*")) == before, "a failed run left files behind"


@pytest.fixture
def jpeg(tmp_path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.full((40, 30, 3), 120, np.uint8)).save(path)
    return path


# --- petseg-train -----------------------------------------------------------------------------

TRAIN = ["--encoder-weights", "none", "--epochs", "1", "--image-size", "64"]


def test_train_nonexistent_data(capsys, tmp_path):
    refused(capsys, "train", ["--data", tmp_path / "nope", *TRAIN, "--out", tmp_path / "o"],
            "is not a directory", tmp_path)


def test_train_directory_without_trimaps(capsys, official_dir):
    import shutil

    shutil.rmtree(official_dir / "annotations" / "trimaps")
    refused(capsys, "train", ["--data", official_dir, *TRAIN], "has no annotations/trimaps/")


def test_train_empty_split_file(capsys, official_dir):
    (official_dir / "annotations" / "trainval.txt").write_text("\n  \n")
    refused(capsys, "train", ["--data", official_dir, *TRAIN], "lists no images")


def test_train_split_naming_absent_images(capsys, official_dir):
    (official_dir / "annotations" / "trainval.txt").write_text("Ghost_1 1 1 1\nGhost_2 1 1 1\n")
    refused(capsys, "train", ["--data", official_dir, *TRAIN], "no usable examples in the train split")


def test_train_split_escaping_the_dataset(capsys, official_dir):
    (official_dir / "annotations" / "trainval.txt").write_text("../../../etc/passwd 1 1 1\n")
    refused(capsys, "train", ["--data", official_dir, *TRAIN], "not a plain image name")


def test_train_every_image_broken(capsys, official_dir):
    for path in (official_dir / "images").glob("*trainval*"):
        path.write_bytes(b"\x00" * 10)
    refused(capsys, "train", ["--data", official_dir, *TRAIN], "no usable examples in the train split")


def test_train_trimaps_out_of_range(capsys, official_dir):
    for path in (official_dir / "annotations" / "trimaps").glob("*trainval*"):
        Image.fromarray(np.full((64, 64), 9, np.uint8)).save(path)
    refused(capsys, "train", ["--data", official_dir, *TRAIN], "no usable examples in the train split")


def test_train_missing_encoder_weights(capsys, tmp_path):
    refused(capsys, "train", ["--data", "synthetic:4", "--encoder-weights", tmp_path / "w.h5"],
            "no such file")


def test_train_encoder_weights_that_are_a_photo(capsys, tmp_path, jpeg):
    refused(capsys, "train", ["--data", "synthetic:4", "--encoder-weights", jpeg, "--epochs", "1",
                              "--image-size", "64", "--out", tmp_path / "o"], "cannot load encoder weights")


def test_train_out_is_a_file(capsys, jpeg):
    refused(capsys, "train", ["--data", "synthetic:4", *TRAIN, "--out", jpeg], "is an existing file")


def test_train_out_cannot_be_created(capsys):
    refused(capsys, "train", ["--data", "synthetic:4", *TRAIN, "--out", "/proc/petseg-out"],
            "cannot create output directory")


@pytest.mark.parametrize("args, expect", [
    (["--epochs", "0"], "--epochs 0 must be at least 1"),
    (["--image-size", "100"], "multiple of 32"),
    (["--data", "synthetic:abc"], "must be a whole number"),
    (["--val-fraction", "1.5"], "--val-fraction"),
])
def test_train_bad_settings(capsys, args, expect):
    base = {"--data": "synthetic:4", "--encoder-weights": "none", "--epochs": "1", "--image-size": "64"}
    base.update(dict(zip(args[::2], args[1::2])))
    refused(capsys, "train", [x for kv in base.items() for x in kv], expect)


# --- petseg-export ----------------------------------------------------------------------------


def test_export_missing_model(capsys, tmp_path):
    refused(capsys, "export", ["--model", tmp_path / "petseg.keras"], "does not exist", tmp_path)


def test_export_empty_model_file(capsys, tmp_path):
    (tmp_path / "petseg.keras").write_bytes(b"")
    refused(capsys, "export", ["--model", tmp_path / "petseg.keras"], "not a Keras 3 .keras model", tmp_path)


def test_export_photo_renamed_keras(capsys, tmp_path, jpeg):
    jpeg.rename(tmp_path / "petseg.keras")
    refused(capsys, "export", ["--model", tmp_path / "petseg.keras"], "not a Keras 3 .keras model", tmp_path)


def test_export_agreement_floor_out_of_range(capsys, tmp_path):
    refused(capsys, "export", ["--model", tmp_path / "petseg.keras", "--min-agreement", "120"],
            "must be a percentage", tmp_path)


def _save(model, path: Path) -> Path:
    model.save(path)
    return path


def test_export_keras_with_a_lambda_layer(capsys, tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    path = _save(model, tmp_path / "lambda.keras")
    refused(capsys, "export", ["--model", path, "--data", "synthetic:4"], "cannot load", tmp_path)


def test_export_keras_that_is_not_petseg(capsys, tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    path = _save(model, tmp_path / "classifier.keras")
    refused(capsys, "export", ["--model", path, "--data", "synthetic:4"], "not a petseg segmentation model",
            tmp_path)


def test_export_corrupt_keras_archive(capsys, tmp_path):
    path = tmp_path / "broken.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{not json")
    refused(capsys, "export", ["--model", path], "cannot load", tmp_path)


def test_export_unknown_variant(capsys, tiny_model):
    refused(capsys, "export", ["--model", tiny_model, "--quantize", "int4"], "unknown variant 'int4'")


def test_export_zero_calibration_samples(capsys, tiny_model):
    refused(capsys, "export", ["--model", tiny_model, "--calibration-samples", "0"],
            "--calibration-samples 0 must be at least 1")


def test_export_calibration_set_without_images(capsys, tiny_model, official_dir, tmp_path):
    (official_dir / "annotations" / "trainval.txt").write_text("Ghost 1 1 1\n")
    refused(capsys, "export", ["--model", tiny_model, "--data", official_dir, "--out", tmp_path / "x" / "y"],
            "no usable examples in the train split", watch=tmp_path)  # nor the folders --out named


def test_export_keep_float_naming_no_layer(capsys, tiny_model, tmp_path):
    refused(capsys, "export", ["--model", tiny_model, "--quantize", "int8", "--keep-float", "nosuchlayer",
                               "--calibration-samples", "4", "--verify-images", "2", "--out", tmp_path / "x"],
            "--keep-float nosuchlayer: no quantised tensor has that in its name", watch=tmp_path)


def test_export_out_is_a_file(capsys, tiny_model, jpeg):
    refused(capsys, "export", ["--model", tiny_model, "--out", jpeg], "is an existing file")


# --- petseg-bench -----------------------------------------------------------------------------


def test_bench_nonexistent(capsys, tmp_path):
    refused(capsys, "bench", [tmp_path / "m.tflite"], "does not exist")


def test_bench_directory(capsys, tmp_path):
    refused(capsys, "bench", [tmp_path], "is a directory")


def test_bench_photo_renamed_tflite(capsys, tmp_path, jpeg):
    path = jpeg.rename(tmp_path / "m.tflite")
    refused(capsys, "bench", [path], "not a TFLite model")


def test_bench_model_that_is_not_an_image_model(capsys, tmp_path, tiny_tflite):
    path = tmp_path / "vector.tflite"
    path.write_bytes(tiny_tflite(shape_in=(1, 16)))
    refused(capsys, "bench", [path, "--no-accuracy"], "not a square RGB image")


def test_bench_dataset_without_trimaps(capsys, tmp_path, official_dir, tiny_tflite):
    import shutil

    path = tmp_path / "seg.tflite"
    path.write_bytes(tiny_tflite())
    shutil.rmtree(official_dir / "annotations" / "trimaps")
    refused(capsys, "bench", [path, "--data", official_dir, "--runs", "1", "--warmup", "0",
                              "--min-seconds", "0"], "has no annotations/trimaps/")


def test_bench_bad_threads(capsys, tmp_path, tiny_tflite):
    path = tmp_path / "seg.tflite"
    path.write_bytes(tiny_tflite())
    refused(capsys, "bench", [path, "--threads", "0"], "--threads")


# --- petseg-predict ---------------------------------------------------------------------------


@pytest.fixture
def seg_model(tmp_path, tiny_tflite) -> Path:
    path = tmp_path / "seg.tflite"
    path.write_bytes(tiny_tflite())
    return path


def test_predict_unreadable_photo(capsys, seg_model, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    refused(capsys, "predict", [seg_model, bad, "-o", tmp_path / "out"], "not a readable image")
    assert not (tmp_path / "out").exists()


def test_predict_zero_byte_photo(capsys, seg_model, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    refused(capsys, "predict", [seg_model, tmp_path / "empty.png"], "not a readable image")


def test_predict_directory_instead_of_photo(capsys, seg_model, tmp_path):
    refused(capsys, "predict", [seg_model, tmp_path], "not a readable image")


def test_predict_model_of_another_kind(capsys, tmp_path, jpeg):
    other = tmp_path / "model.pt"
    other.write_bytes(b"PK\x03\x04torch")
    refused(capsys, "predict", [other, jpeg], "not a TFLite model")


@pytest.mark.parametrize("mode, size", [("RGBA", (50, 40)), ("P", (33, 21)), ("L", (8, 8)),
                                        ("CMYK", (20, 30)), ("RGB", (1, 1))])
def test_predict_accepts_any_photo_pillow_reads(capsys, seg_model, tmp_path, mode, size):
    from petseg.predict import main

    photo = tmp_path / f"photo.{'jpg' if mode in ('CMYK', 'L') else 'png'}"
    Image.new(mode, size).save(photo)
    assert main([str(seg_model), str(photo), "-o", str(tmp_path / "out"), "--json"]) == 0
    mask = Image.open(tmp_path / "out" / "photo_mask.png")
    assert mask.size == size and mask.mode == "P"
    assert '"pet_share"' in capsys.readouterr().out
