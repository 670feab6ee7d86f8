"""petseg-predict on a trained model: masks at the photo's resolution, overlay, box and share."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from petseg.predict import describe, main


def test_describe_reports_box_and_share():
    classes = np.ones((10, 20), np.uint8)
    classes[2:5, 3:9] = 0
    classes[5, 3:9] = 2
    result = describe(classes)
    assert result["bbox"] == [3, 2, 9, 6]
    assert result["pet_share"] == np.mean(classes != 1)
    assert describe(np.ones((4, 4), np.uint8))["bbox"] is None


def test_predict_with_the_keras_model(tiny_model, tmp_path, capsys):
    from petseg.synthetic import draw_pet

    photo, _ = draw_pet(np.random.default_rng(0), 150)
    photo = photo.resize((150, 110))
    photo.save(tmp_path / "cat.jpg")
    assert main([str(tiny_model), str(tmp_path / "cat.jpg"), "-o", str(tmp_path / "out"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["size"] == [150, 110]
    mask = Image.open(result["mask"])
    assert mask.size == (150, 110) and set(np.unique(np.asarray(mask))) <= {0, 1, 2}
    assert Image.open(result["overlay"]).size == (150, 110)
    assert 0 <= result["pet_share"] <= 1
