"""The model description every stage shares: one typed, versioned form, read and written in one place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from petseg.description import KERAS, SCHEMA, Description, InputConvention, SourceModel, from_json
from petseg.errors import PetsegError
from petseg.modelfile import read_description, sidecar, variant_file, variant_of_file


def test_a_description_survives_its_json_round_trip(tmp_path):
    d = Description(variant="int8", image_size=128, size="small", decoder_filters=(256, 128, 64, 32),
                    dataset="synthetic:24", val_fraction=0.2, seed=3, best_epoch=7,
                    input=InputConvention(tensor={"dtype": "uint8", "quantization": [1.0, 0]}),
                    source_model=SourceModel(str(tmp_path / "m" / "petseg.keras"), "0" * 64, "tfds"),
                    details={"verification": {"agreement": 0.99}})
    data = json.loads(json.dumps(d.to_json()))
    assert data["schema"] == SCHEMA and data["input"]["dtype"] == "uint8"
    assert from_json(data, "x") == d


def test_files_written_before_the_schema_still_read():
    # What petseg 0.1 wrote beside an export and beside a trained model (abridged, same keys).
    export = {"model": "petseg_int8.tflite", "variant": "int8", "classes": ["pet", "background", "border"],
              "image_size": 64, "input": {"mean": [0.0] * 3, "std": [1.0] * 3, "dtype": "uint8"},
              "calibration": {"images": 8, "split": "train", "source": "synthetic:24", "seed": 0},
              "recipe": {"seed": 5, "size": "tiny"},
              "source_model": {"path": "m/petseg.keras", "sha256": "0" * 64, "trained_on": "tfds"}}
    d = from_json(export, "old.json")
    assert (d.variant, d.size, d.dataset, d.seed, d.image_size) == ("int8", "tiny", "synthetic:24", 5, 64)
    # A relative path reads relative to the file that records it (paths.py).
    assert d.input.tensor == {"dtype": "uint8"} and d.source_model == SourceModel(
        str(Path("m/petseg.keras").absolute()), "0" * 64, "tfds")
    trained = {"model": "petseg.keras", "image_size": 128, "size": "seed", "best_epoch": 4,
               "data": {"source": "tfds", "val_fraction": 0.2}, "recipe": {"seed": 1}}
    d = from_json(trained, "old.json")
    assert (d.variant, d.dataset, d.val_fraction, d.seed, d.best_epoch) == (KERAS, "tfds", 0.2, 1, 4)


def test_an_old_export_without_a_variant_is_named_by_its_file(tmp_path):
    model = tmp_path / "petseg_fp16.tflite"
    model.write_bytes(b"")
    sidecar(model).write_text(json.dumps({"image_size": 64}))
    assert read_description(model).variant == "fp16"


@pytest.mark.parametrize("data, complaint", [
    ({"schema": SCHEMA + 1, "variant": "int8", "image_size": 64}, "newer than this petseg reads"),
    ({"schema": SCHEMA, "variant": "int8", "image_size": "64"}, "'image_size' is '64', not an integer"),
    ({"schema": SCHEMA, "variant": "int8", "image_size": 0}, "image_size 0"),
    ({"schema": SCHEMA, "variant": "int8", "image_size": 64, "classes": ["cat"]}, "not 3 names"),
    ({"schema": SCHEMA, "variant": "int8", "image_size": 64, "input": {"std": [0, 1, 1]}}, "non-zero"),
    ({"schema": SCHEMA, "variant": "int8"}, "has no 'image_size'"),
    ({"schema": "1", "variant": "int8", "image_size": 64}, "is not a schema number"),
    ({"schema": SCHEMA, "variant": "int8", "image_size": 64, "dataset": 5}, "'dataset' is 5, not a string"),
    ({"schema": SCHEMA, "variant": "int8", "image_size": 64, "val_fraction": 7}, "val_fraction 7"),
    ({"schema": SCHEMA, "variant": "int8", "image_size": 64, "decoder_filters": ["a"]}, "not channel counts"),
    ({"schema": SCHEMA, "variant": "int8", "image_size": 64, "source_model": "x"}, "not a record"),
    ({"schema": SCHEMA, "variant": "int8", "image_size": 64, "source_model": {"path": 1}}, "path and sha256"),
    ({"schema": SCHEMA, "variant": "int8", "image_size": 64, "calibration": [8]}, "'calibration'"),
    ([1, 2], "does not hold petseg metadata"),
])
def test_a_bad_description_is_refused_in_one_line(tmp_path, data, complaint):
    model = tmp_path / "petseg_int8.tflite"
    model.write_bytes(b"")
    sidecar(model).write_text(json.dumps(data))
    with pytest.raises(PetsegError) as info:
        read_description(model)
    message = str(info.value)
    assert complaint in message and "\n" not in message and str(sidecar(model)) in message


def test_the_file_name_rule_lives_in_one_place(tmp_path):
    assert variant_file(tmp_path, "int8") == tmp_path / "petseg_int8.tflite"
    assert variant_file(tmp_path, "onnx-int8") == tmp_path / "petseg_onnx-int8.onnx"
    assert variant_of_file(variant_file(tmp_path, "wi4")) == "wi4"
