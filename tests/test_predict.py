"""petseg-predict on a trained model: masks at the photo's resolution, overlay, box and share."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from petseg.predict import main, mask_summary


def test_mask_summary_reports_box_and_share():
    classes = np.ones((10, 20), np.uint8)
    classes[2:5, 3:9] = 0
    classes[5, 3:9] = 2
    result = mask_summary(classes)
    assert result["bbox"] == [3, 2, 9, 6]
    assert result["pet_share"] == np.mean(classes != 1)
    assert mask_summary(np.ones((4, 4), np.uint8))["bbox"] is None


def test_predict_with_the_keras_model(learned_model, tmp_path, capsys):
    from petseg.dataset import load_rgb, resize_image
    from petseg.export.trained_model import load_keras_model
    from petseg.synthetic import draw_pet
    from petseg.train.evaluate import predict_classes

    photo, _ = draw_pet(np.random.default_rng(0), 150)
    photo.resize((150, 110)).save(tmp_path / "cat.png")
    assert main([str(learned_model), str(tmp_path / "cat.png"), "-o", str(tmp_path / "out"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["size"] == [150, 110] and Image.open(result["overlay"]).size == (150, 110)
    mask = np.asarray(Image.open(result["mask"]))
    # The mask is the Keras model's own answer, brought back to the photo's size...
    model = load_keras_model(learned_model)
    size = model.input_shape[1]
    own = predict_classes(model, resize_image(load_rgb(tmp_path / "cat.png"), size)[None])[0]
    assert np.array_equal(mask, np.asarray(Image.fromarray(own).resize((150, 110), Image.NEAREST)))
    # ...and the printed share and box describe that mask (the learned model finds the drawn pet).
    pet = mask != 1
    assert result["pet_share"] == pytest.approx(pet.mean()) and pet.any()
    rows, cols = np.flatnonzero(pet.any(1)), np.flatnonzero(pet.any(0))
    assert result["bbox"] == [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def test_phone_photo_gets_mask_and_overlay_as_displayed(tmp_path, tiny_tflite, capsys):
    # A phone's portrait photo: stored 242x233 (landscape) with EXIF "rotate 90°", displayed 233x242.
    model = tmp_path / "seg.tflite"
    model.write_bytes(tiny_tflite())
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (242, 233), (90, 140, 60)).save(tmp_path / "phone.jpg", exif=exif)
    assert main([str(model), str(tmp_path / "phone.jpg"), "-o", str(tmp_path / "out"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["size"] == [233, 242]
    assert Image.open(result["mask"]).size == (233, 242)
    assert Image.open(result["overlay"]).size == (233, 242)


def test_the_core_package_never_imports_a_stage():
    # The shared core (petseg) sits under every stage; a stage's code reaches it only through
    # the stage-neutral model-format hook (entry points), never through an import.
    import ast
    from pathlib import Path

    import petseg

    stages = ("petseg.train", "petseg.export", "petseg.benchmark")
    offenders = []
    for source in Path(petseg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{source.name}: {n}" for n in names if n.startswith(stages)]
    assert not offenders


def test_keras_models_open_through_the_format_hook(tiny_model):
    from petseg.models import open_model

    model = open_model(tiny_model)
    assert type(model).__module__.startswith("petseg.export")  # the stage that owns .keras loading
    images = np.zeros((2, model.image_size, model.image_size, 3), np.uint8)
    assert model.predict(images).shape == (2, model.image_size, model.image_size)
