"""Exports that apps load unchanged: MediaPipe Tasks, LiteRT's signature runner, metadata inside."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from petseg.errors import run_cli
from petseg.labels import CLASSES
from petseg.runtime import TFLiteModel

VARIANTS = ("fp32", "fp16", "int8", "dynamic")


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory) -> Path:
    from petseg.export.cli import main

    out = tmp_path_factory.mktemp("app")
    assert main(["--model", str(tiny_model), "--quantize", ",".join(VARIANTS), "--out", str(out),
                 "--calibration-samples", "8", "--verify-images", "2", "--max-drop", "off"]) == 0
    return out


@pytest.fixture(scope="module")
def test_images() -> np.ndarray:
    from petseg.dataset import load_dataset

    return load_dataset("synthetic:24", 64, splits=("test",))["test"].images


def _mediapipe():
    return pytest.importorskip("mediapipe", reason="no mediapipe wheel for this platform")


@pytest.mark.parametrize("variant", ["fp32", "fp16", "int8"])
def test_mediapipe_segments_each_export_as_is(exported, test_images, variant, tflite_logits):
    mp = _mediapipe()
    from mediapipe.tasks.python import BaseOptions, vision

    path = exported / f"petseg_{variant}.tflite"
    ours = np.argmax(tflite_logits(path, test_images), axis=-1)
    options = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                           output_category_mask=True, output_confidence_masks=True)
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        assert segmenter.labels == list(CLASSES)
        for image, expected in zip(test_images, ours):
            result = segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                data=np.ascontiguousarray(image)))
            category = result.category_mask.numpy_view().reshape(expected.shape)
            assert np.mean(category == expected) >= 0.995
            confidence = np.stack([m.numpy_view().reshape(expected.shape)
                                   for m in result.confidence_masks], axis=-1)
            np.testing.assert_allclose(confidence.sum(axis=-1), 1.0, atol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_serving_signature_returns_the_logits(exported, test_images, variant):
    from ai_edge_litert.interpreter import Interpreter

    path = exported / f"petseg_{variant}.tflite"
    interpreter = Interpreter(model_path=str(path))
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["image"],
                                                                    "outputs": ["logits"]}}
    runner = interpreter.get_signature_runner("serving_default")
    dtype = interpreter.get_input_details()[0]["dtype"]
    model = TFLiteModel(path)
    for image in test_images[:2]:
        logits = runner(image=image[None].astype(dtype))["logits"]
        model.set_input(image)
        model.invoke()
        raw = model.interpreter.get_tensor(model.output["index"])
        np.testing.assert_array_equal(logits, raw)
    assert model.output["name"] == "logits"


def test_metadata_inside_matches_the_json_beside(exported):
    from petseg.modelfile import read_embedded, read_sidecar

    for variant in VARIANTS:
        path = exported / f"petseg_{variant}.tflite"
        inside = read_embedded(path)
        assert inside == read_sidecar(path)
        assert inside["variant"] == variant and inside["classes"] == list(CLASSES)
        assert inside["input"]["mean"] == [0, 0, 0] and inside["input"]["std"] == [1, 1, 1]
        assert inside["recipe"]["epochs"] == 2 and len(inside["source_model"]["sha256"]) == 64
        with zipfile.ZipFile(path) as archive:
            assert archive.read("labels.txt").decode().split() == list(CLASSES)


def test_model_card_fields(exported):
    _mediapipe()
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    from mediapipe.tasks.python.metadata import metadata

    buffer = metadata.get_metadata_buffer((exported / "petseg_int8.tflite").read_bytes())
    card = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(buffer, 0))
    assert card.name == b"petseg int8" and card.version.startswith(b"petseg ")
    assert b"0..255" in card.description and card.license.startswith(b"Apache-2.0")
    assert card.minParserVersion == b"1.5.0"  # custom metadata (the softmax) needs 1.5
    image = card.subgraphMetadata[0].inputTensorMetadata[0]
    norm = image.processUnits[0].options
    assert list(norm.mean) == [0, 0, 0] and list(norm.std) == [1, 1, 1]


def test_metadata_and_signature_change_no_op(tiny_model, exported):
    from petseg.export.converter import float_graph
    from petseg.export.trained_model import load_keras_model
    from petseg.export.verify import _as_file

    def ops(path: Path) -> list[str]:
        return [op["op_name"] for op in TFLiteModel(path).interpreter._get_ops_details()]

    plain = float_graph(load_keras_model(tiny_model), "winograd")
    with _as_file(plain, ".tflite") as path:
        assert ops(path) == ops(exported / "petseg_fp32.tflite")
    assert len((exported / "petseg_fp32.tflite").read_bytes()) - len(plain) < 20_000


def _bench(args: list, tmp_path: Path):
    from test_bench import bench

    return bench(args, tmp_path)


def test_bench_and_predict_use_the_metadata_inside(exported, tmp_path, capsys):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(exported / "petseg_int8.tflite", alone / "model.tflite")
    # No --data: the dataset comes from the metadata inside the model.
    proc = _bench([alone / "model.tflite", "--runs", "2", "--warmup", "0", "--min-seconds", "0",
                   "--json", tmp_path / "b.json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "using the petseg metadata inside the model" in proc.stdout
    assert "assuming" not in proc.stdout
    row = json.loads((tmp_path / "b.json").read_text())["results"][0]
    assert row["variant"] == "int8" and row["miou"] is not None

    from petseg.predict import main
    from petseg.synthetic import draw_pet

    draw_pet(np.random.default_rng(1), 80)[0].save(tmp_path / "pet.png")
    assert main([str(alone / "model.tflite"), str(tmp_path / "pet.png"), "-o", str(tmp_path / "p"),
                 "--json"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "assuming" not in captured.err + out
    assert set(json.loads(out[out.index("["):])[0]["class_share"]) == set(CLASSES)


def _damage_embedded_json(path: Path) -> None:
    data = bytearray(path.read_bytes())
    start = data.rindex(b'"variant"')  # inside the stored (uncompressed) petseg.json
    data[start:start + 9] = b"\x00garbage\x00"
    path.write_bytes(bytes(data))


def test_garbage_metadata_is_a_one_line_error(exported, tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    shutil.copy(exported / "petseg_fp32.tflite", bad)
    _damage_embedded_json(bad)
    proc = _bench([bad, "--no-accuracy", "--runs", "1", "--warmup", "0", "--min-seconds", "0"], tmp_path)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert "embedded metadata" in err and "damaged" in err and len(err.splitlines()) == 1

    from petseg.predict import main

    photo = tmp_path / "pet.png"
    from petseg.synthetic import draw_pet

    draw_pet(np.random.default_rng(2), 64)[0].save(photo)
    assert run_cli(main, [str(bad), str(photo), "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert "damaged" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "p").exists()


def _readme_block(marker: str) -> str:
    text = (REPO / "README.md").read_text()
    found = re.search(rf"<!-- {marker} -->\s*```python\n(.*?)```", text, re.S)
    assert found, f"README has no python block after <!-- {marker} -->"
    return found.group(1)


def test_readme_app_snippets_run(exported, tmp_path, monkeypatch):
    _mediapipe()
    from petseg.synthetic import draw_pet

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(exported / "petseg_int8.tflite", models / "petseg_int8.tflite")
    draw_pet(np.random.default_rng(3), 200)[0].resize((200, 150)).save(tmp_path / "cat.jpg")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(_readme_block("app: mediapipe"), "README mediapipe", "exec"), scope)
    assert scope["mask"].shape[:2] == (150, 200) and set(np.unique(scope["mask"])) <= {0, 1, 2}
    exec(compile(_readme_block("app: litert"), "README litert", "exec"), scope)
    assert scope["logits"].shape == (1, 64, 64, 3)


@pytest.mark.shared
def test_mediapipe_agrees_on_real_photos(pretrained_tiny_model, shared_data, tmp_path, tflite_logits):
    """30 real test photos of the 3-breed slice, at the model's input size, int8 and fp32."""
    mp = _mediapipe()
    from mediapipe.tasks.python import BaseOptions, vision

    from petseg.dataset import load_dataset
    from petseg.export.cli import main

    assert main(["--model", str(pretrained_tiny_model), "--quantize", "fp32,int8", "--out", str(tmp_path),
                 "--calibration-samples", "8", "--verify-images", "2", "--max-drop", "off"]) == 0
    photos = load_dataset(str(shared_data), 64, splits=("test",), limit=30)["test"].images
    for variant in ("fp32", "int8"):
        path = tmp_path / f"petseg_{variant}.tflite"
        ours = np.argmax(tflite_logits(path, photos), axis=-1)
        options = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                               output_category_mask=True)
        with vision.ImageSegmenter.create_from_options(options) as segmenter:
            # numpy_view() looks into MediaPipe's buffer, which dies with the result: copy it.
            masks = np.stack([segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                         data=np.ascontiguousarray(p)))
                              .category_mask.numpy_view().reshape(64, 64).copy() for p in photos])
        assert np.mean(masks == ours) >= 0.995, variant
