"""petseg-export on a tiny trained model: every variant, determinism, I/O types, verification."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from petseg.export.cli import main
from petseg.export.variants import parse_variants
from petseg.export.verify import run_tflite_bytes
from petseg.runtime import TFLiteModel


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    # int16x8 is left out here: on random encoder weights it cannot allocate (see the test below).
    # --holdout-images 0: verified on the validation images alone, which this test recomputes.
    assert main(["--model", str(tiny_model), "--quantize", "fp32,fp16,int8,dynamic", "--out", str(out),
                 "--calibration-samples", "8", "--verify-images", "2", "--max-drop", "off",
                 "--holdout-images", "0"]) == 0
    return out


def test_every_variant_is_written_with_metadata(exported, tiny_model, tflite_logits):
    from petseg.dataset import load_dataset
    from petseg.export.trained_model import file_sha256, load_keras_model
    from petseg.metrics import agreement, confusion, scores

    # The held-out images the export verifies on: the model's own validation split, first two.
    held_out = load_dataset("synthetic:24", 64, splits=("train", "val"))["val"].take([0, 1])
    keras_logits = load_keras_model(tiny_model).predict(held_out.images.astype(np.float32), verbose=0)
    for name in ("fp32", "fp16", "int8", "dynamic"):
        meta = json.loads((exported / f"petseg_{name}.json").read_text())
        assert meta["variant"] == name and meta["classes"] == ["pet", "background", "border"]
        assert meta["source_model"]["sha256"] == file_sha256(tiny_model)
        logits = tflite_logits(exported / f"petseg_{name}.tflite", held_out.images)
        # What the metadata says of the file is what the file does.
        pred = np.argmax(logits, axis=-1)
        assert meta["verification"]["images"] == len(held_out)
        assert meta["verification"]["splits"] == {"val": len(held_out)}
        assert meta["verification"]["agreement"] == pytest.approx(
            agreement(pred, np.argmax(keras_logits, axis=-1)))
        miou = scores(confusion(held_out.masks, pred))["mean_iou"]
        assert meta["verification"]["miou"] == pytest.approx(miou)
        # And it computes the Keras model's scores, not merely the same winning class (a model that
        # predicts background everywhere agrees with anything that does the same).
        centred, keras_centred = (x - x.mean(-1, keepdims=True) for x in (logits, keras_logits))
        assert np.corrcoef(centred.ravel(), keras_centred.ravel())[0, 1] > 0.99, name
    fp32 = tflite_logits(exported / "petseg_fp32.tflite", held_out.images)
    np.testing.assert_allclose(fp32, keras_logits, atol=1e-4 * np.ptp(keras_logits))
    assert not list(exported.glob(".*partial*"))


def test_int16x8_on_pretrained_weights(pretrained_tiny_model, tmp_path):
    assert main(["--model", str(pretrained_tiny_model), "--quantize", "int16x8", "--out", str(tmp_path),
                 "--calibration-samples", "8", "--verify-images", "2", "--max-drop", "off"]) == 0
    meta = json.loads((tmp_path / "petseg_int16x8.json").read_text())
    assert meta["input"]["dtype"] == "float32" and meta["verification"]["agreement"] > 0.8


def test_int8_takes_float_pixels_and_returns_float_logits_with_training_calibration(exported):
    # float32 ends: the arrangement every client runs, MediaPipe's and LiteRT.js's GPU paths included.
    meta = json.loads((exported / "petseg_int8.json").read_text())
    assert meta["input"]["dtype"] == "float32" and meta["output"]["dtype"] == "float32"
    assert meta["calibration"]["split"] == "train" and meta["calibration"]["images"] == 8
    model = TFLiteModel(exported / "petseg_int8.tflite")
    ops = [op["op_name"] for op in model.interpreter._get_ops_details()]
    assert ops[0] == "QUANTIZE" and "DEQUANTIZE" in ops and model.outside_delegate() == {}


def test_variants_are_smaller_than_fp32(exported):
    size = {n: (exported / f"petseg_{n}.tflite").stat().st_size for n in ("fp32", "fp16", "int8")}
    assert size["fp16"] < 0.6 * size["fp32"] and size["int8"] < 0.35 * size["fp32"]


def _ops(path) -> set[str]:
    return {op["op_name"] for op in TFLiteModel(path).interpreter._get_ops_details()}


def test_decoder_is_exported_as_plain_convs(exported):
    ops = _ops(exported / "petseg_fp32.tflite")
    assert "DEPTH_TO_SPACE" in ops and "TRANSPOSE_CONV" not in ops and "ADD_N" not in ops
    assert not ops & {"SHAPE", "PACK", "VAR_HANDLE", "READ_VARIABLE"}
    assert TFLiteModel(exported / "petseg_fp32.tflite").outside_delegate() == {}


@pytest.mark.parametrize("decoder", ["transpose-conv", "subpixel"])
def test_every_decoder_form_gives_the_same_answers(tiny_model, exported, tmp_path, decoder, tflite_logits):
    from petseg.dataset import load_dataset

    assert main(["--model", str(tiny_model), "--quantize", "fp32", "--decoder", decoder, "--out",
                 str(tmp_path), "--verify-images", "2", "--max-drop", "off"]) == 0
    ops = _ops(tmp_path / "petseg_fp32.tflite")
    assert json.loads((tmp_path / "petseg_fp32.json").read_text())["decoder"] == decoder
    assert json.loads((exported / "petseg_fp32.json").read_text())["decoder"] == "winograd"
    assert json.loads((exported / "petseg_int8.json").read_text())["decoder"] == "subpixel"
    if decoder == "transpose-conv":
        # A fixed batch of 1 leaves no runtime shape computation around TRANSPOSE_CONV.
        assert "TRANSPOSE_CONV" in ops and not ops & {"SHAPE", "STRIDED_SLICE", "PACK", "VAR_HANDLE"}
    images = load_dataset("synthetic:24", 64, splits=("test",))["test"].images[:3]
    np.testing.assert_allclose(tflite_logits(exported / "petseg_fp32.tflite", images),
                               tflite_logits(tmp_path / "petseg_fp32.tflite", images), atol=1e-3)


def test_same_model_seed_and_data_give_identical_bytes(tiny_model, exported, tmp_path):
    # The fixture's options again (bias correction on, as by default): same files, byte for byte.
    assert main(["--model", str(tiny_model), "--quantize", "int8,fp32", "--out", str(tmp_path),
                 "--calibration-samples", "8", "--verify-images", "2", "--max-drop", "off",
                 "--holdout-images", "0"]) == 0
    for name in ("int8", "fp32"):
        file = f"petseg_{name}.tflite"
        assert (tmp_path / file).read_bytes() == (exported / file).read_bytes()


def _documented_int8(model, images: np.ndarray) -> bytes:
    """The documented converter call for full-integer int8 (uint8 in and out)."""
    import tensorflow as tf

    from petseg.export.converter import graph_converter, representative

    converter = graph_converter(model, "subpixel")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    return converter.convert()


def test_int8_matches_the_documented_converter_call(tiny_model):
    from petseg.dataset import load_dataset
    from petseg.export.converter import calibrated_flatbuffer, quantize_int8
    from petseg.export.trained_model import load_keras_model

    model = load_keras_model(tiny_model)
    images = load_dataset("synthetic:24", 64, splits=("train",))["train"].images[:4]
    ours = quantize_int8(calibrated_flatbuffer(model, images), "uint8")
    plain = _documented_int8(model, images)
    # Same graph, same quantisation: identical predictions (the files differ only in metadata).
    assert np.array_equal(run_tflite_bytes(ours, images), run_tflite_bytes(plain, images))
    assert len(ours) == pytest.approx(len(plain), rel=0.01)


def test_io_type_uint8_takes_camera_bytes(exported, tiny_model, tmp_path, tflite_logits):
    assert main(["--model", str(tiny_model), "--quantize", "int8", "--io-type", "uint8",
                 "--out", str(tmp_path), "--calibration-samples", "8", "--verify-images", "2",
                 "--max-drop", "off", "--holdout-images", "0"]) == 0
    meta = json.loads((tmp_path / "petseg_int8.json").read_text())
    assert meta["input"]["dtype"] == "uint8" and meta["output"]["dtype"] == "uint8"
    scale, zero = meta["input"]["quantization"]
    assert scale == pytest.approx(1.0, rel=0.1) and zero in (0, 1)  # camera bytes go straight in
    # The same numbers as the float32 ends: 0..255 pixels are exact at scale 1, and the uint8 output
    # is the int8 one shifted by 128 at the same scale.
    from petseg.dataset import load_dataset

    images = load_dataset("synthetic:24", 64, splits=("test",))["test"].images[:4]
    np.testing.assert_array_equal(tflite_logits(tmp_path / "petseg_int8.tflite", images),
                                  tflite_logits(exported / "petseg_int8.tflite", images))


def test_keep_float_and_report(tiny_model, tmp_path, capsys):
    assert main(["--model", str(tiny_model), "--quantize", "int8", "--report", "--out", str(tmp_path),
                 "--calibration-samples", "4", "--verify-images", "2", "--max-drop", "off"]) == 0
    report = (tmp_path / "int8_layer_report.csv").read_text().splitlines()
    assert report[0].startswith("tensor,") and len(report) > 10
    worst = report[1].split(",")[0].split(";")[0]  # the short name --report prints
    assert worst in capsys.readouterr().out
    assert main(["--model", str(tiny_model), "--quantize", "int8", "--keep-float", worst,
                 "--out", str(tmp_path), "--calibration-samples", "4", "--verify-images", "2",
                 "--max-drop", "off"]) == 0
    kept = json.loads((tmp_path / "petseg_int8.json").read_text())["keep_float"]
    assert kept and all(worst in name for name in kept)


def test_a_refused_variant_leaves_no_report(tiny_model, tmp_path, monkeypatch, capsys):
    # The report is published with its model or not at all, like the model's description.
    from petseg.errors import run_cli
    from petseg.export.verify import Verification

    monkeypatch.setattr(Verification, "broken", property(lambda self: True))
    assert run_cli(main, ["--model", str(tiny_model), "--quantize", "int8", "--report", "--out",
                          str(tmp_path), "--calibration-samples", "4", "--verify-images", "2",
                          "--max-drop", "off"]) == 2
    assert "not written: int8" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_verification_catches_a_broken_conversion(tiny_model, tmp_path, monkeypatch, capsys):
    from petseg.errors import run_cli
    from petseg.export.converter import FloatVariant

    real = FloatVariant.convert

    def scrambled(self, model, decoder="winograd"):
        # A conversion that silently ruins the weights, as a bad converter version might.
        logits = model.get_layer("logits")
        rng = np.random.default_rng(0)
        logits.set_weights([rng.normal(0, 5, w.shape) for w in logits.get_weights()])
        return real(self, model, decoder)

    monkeypatch.setattr(FloatVariant, "convert", scrambled)
    model = tmp_path / "m" / "petseg.keras"
    model.parent.mkdir()
    shutil.copy(tiny_model, model)
    shutil.copy(tiny_model.with_suffix(".json"), model.with_suffix(".json"))
    assert run_cli(main, ["--model", str(model), "--quantize", "fp32", "--verify-images", "2",
                          "--max-drop", "off"]) == 2
    assert "not written: fp32: its predictions disagree with the Keras model" in capsys.readouterr().err
    assert not (model.parent / "petseg_fp32.tflite").exists()


def test_variant_names_are_checked():
    assert parse_variants(["fp32,int8", "int8"]) == ["fp32", "int8"]
    assert parse_variants(["all"])[0] == "fp32"
    from petseg.errors import PetsegError

    with pytest.raises(PetsegError, match="unknown variant 'int4'"):
        parse_variants(["int4"])


def test_max_drop_searches_and_records_the_float_layers(learned_model, tmp_path, capsys):
    # A budget that all-int8 misses (every pixel must agree), so the search has to grow the set.
    # learned_model, not tiny_model: where both predict background everywhere, int8 agrees anyway.
    assert main(["--model", str(learned_model), "--quantize", "int8", "--out", str(tmp_path),
                 "--calibration-samples", "4", "--verify-images", "2", "--max-drop", "0",
                 "--min-agreement", "100"]) == 0
    out = capsys.readouterr().out
    tries = [line for line in out.splitlines() if "layers in float: mIoU change" in line]
    assert tries[0].split()[0] == "0" and len(tries) >= 2, out
    meta = json.loads((tmp_path / "petseg_int8.json").read_text())
    assert meta["keep_float"], "the search kept no layer in float"
    # Met or not, as the search says: the description's verdict is the search's, and this budget
    # (every pixel agreeing) is within exactly when the agreement is 1.
    met, check = "not met" not in out, meta["verification"]
    assert (check["budget"]["verdict"] == "within") is met and (check["agreement"] == 1.0) is met, out


def test_channel_parts_are_a_traced_concatenations_inputs_only():
    import tensorflow as tf

    from petseg.export.subpixel import channel_parts

    a, b = np.ones((1, 2, 2, 1), np.float32), np.zeros((1, 2, 2, 3), np.float32)
    assert len(channel_parts(tf.concat([a, b], -1))) == 1  # eager: no producing op to read

    @tf.function
    def traced(a, b):
        assert [p.shape[-1] for p in channel_parts(tf.concat([a, b], -1))] == [1, 3]
        assert len(channel_parts(tf.concat([a, a], 1))) == 1  # not along channels
        return a

    traced(a, b)


def test_rewritten_transposed_convs_compute_what_keras_does():
    import keras

    from petseg.export import subpixel, winograd
    from petseg.export.decoder import folded_transpose_conv, folded_weights

    layer = keras.layers.Conv2DTranspose(5, 3, strides=2, padding="same")
    x = np.random.default_rng(0).normal(size=(1, 6, 8, 4)).astype(np.float32)
    layer.build(x.shape)
    layer.bias.assign(np.linspace(-1, 1, 5))
    expected = np.asarray(layer(x))
    kernel, bias = folded_weights(layer, None)
    np.testing.assert_allclose(subpixel.subpixel_transpose_conv(x, kernel, bias, relu=False), expected,
                               atol=1e-5)
    np.testing.assert_allclose(subpixel.col2im_transpose_conv(x, kernel, bias), expected, atol=1e-5)
    parts = [x[..., :1], x[..., 1:]]  # the head's form: the parts of a concatenation, never joined
    np.testing.assert_allclose(subpixel.col2im_transpose_conv(parts, kernel, bias), expected, atol=1e-5)
    np.testing.assert_allclose(winograd.winograd_transpose_conv(x, kernel, bias, relu=False), expected,
                               atol=1e-5)
    np.testing.assert_allclose(winograd.winograd_transpose_conv(x, kernel, bias, relu=True),
                               np.maximum(expected, 0), atol=1e-5)
    odd = x[:, :5, :7]  # Winograd takes rows in pairs: odd sizes fall back to sub-pixel
    np.testing.assert_allclose(folded_transpose_conv(odd, kernel, bias, "winograd"),
                               np.maximum(layer(odd), 0), atol=1e-5)


@pytest.mark.parametrize("side, form", [(8, "subpixel"), (16, "winograd")])
def test_winograd_is_kept_for_blocks_large_enough_to_gain(side, form, monkeypatch):
    # On a small map Winograd's 25 weight matrices are read for a few pixels each: the block
    # waits on memory, and sub-pixel's 9 taps are faster (export/decoder.py).
    import keras

    from petseg.export import decoder

    chosen = []
    for name in ("winograd_transpose_conv", "subpixel_transpose_conv"):
        real = getattr(decoder, name)
        monkeypatch.setattr(decoder, name,
                            lambda *a, real=real, name=name, **k: chosen.append(name) or real(*a, **k))
    layer = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")
    x = np.random.default_rng(0).normal(size=(1, side, side, 4)).astype(np.float32)
    layer.build(x.shape)
    kernel, bias = decoder.folded_weights(layer, None)
    np.testing.assert_allclose(decoder.folded_transpose_conv(x, kernel, bias, "winograd"),
                               np.maximum(layer(x), 0), atol=1e-5)
    assert chosen == [f"{form}_transpose_conv"]


def test_the_float_head_neither_copies_its_skip_join_nor_slices_single_classes(tiny_model, tmp_path):
    # The logits head of the float variants (col2im) used to copy the skip concatenation feeding
    # it and slice its 27 tap channels 3 at a time, pixel by pixel: both cost data movement.
    from ai_edge_litert.interpreter import Interpreter

    from petseg.export.converter import float_graph
    from petseg.export.trained_model import load_keras_model
    from petseg.labels import NUM_CLASSES

    path = tmp_path / "fp32.tflite"
    path.write_bytes(float_graph(load_keras_model(tiny_model), "winograd"))
    graph = Interpreter(model_path=str(path))
    shapes = {t["index"]: tuple(t["shape"]) for t in graph.get_tensor_details()}
    nodes = graph._get_ops_details()  # noqa: SLF001
    producer = {int(t): n["op_name"] for n in nodes for t in n["outputs"]}
    heads = [n for n in nodes if n["op_name"] == "CONV_2D" and shapes[n["outputs"][0]][-1] == 9 * NUM_CLASSES]
    assert heads, "no col2im head in the float graph"
    assert len(heads) > 1 and all(producer.get(int(n["inputs"][0])) != "CONCATENATION" for n in heads)
    slices = [n for n in nodes if n["op_name"] == "STRIDED_SLICE"]
    assert slices and all(shapes[n["outputs"][0]][-1] != NUM_CLASSES for n in slices)


def test_the_quantizer_flag_leaves_float_variants_to_the_converter(tiny_model, tmp_path):
    # Only int8 and int16x8 have two makers; --quantizer aeq used to send fp32 into AEQ's path.
    assert main(["--model", str(tiny_model), "--quantize", "fp32", "--quantizer", "aeq", "--out",
                 str(tmp_path), "--verify-images", "2"]) == 0
    meta = json.loads((tmp_path / "petseg_fp32.json").read_text())
    assert meta["decoder"] == "winograd" and "quantizer" not in meta


def test_a_new_variant_is_one_object_in_the_table(tiny_model, tmp_path, monkeypatch):
    # The command line lists it, and the export converts, verifies, describes and publishes it
    # like any other, with nothing added anywhere but its entry.
    from petseg.export.cli import build_parser
    from petseg.export.converter import FloatVariant
    from petseg.export.variants import VARIANTS, Maker

    class KerasGraph(FloatVariant):
        auto_decoder = "transpose-conv"  # the Keras graph as is, TRANSPOSE_CONV ops included

    class KerasGraphMaker(Maker):  # in export/, a row naming its module and class would do
        def make(self) -> KerasGraph:
            return KerasGraph(self.name, self.summary)

    monkeypatch.setitem(VARIANTS, "fp32-keras", KerasGraphMaker("fp32-keras", "fp32, Keras graph as is",
                                                                "converter", "KerasGraph"))
    assert "fp32-keras: fp32, Keras graph as is" in " ".join(build_parser().format_help().split())
    assert main(["--model", str(tiny_model), "--quantize", "fp32-keras", "--out", str(tmp_path),
                 "--verify-images", "2"]) == 0
    meta = json.loads((tmp_path / "petseg_fp32-keras.json").read_text())
    assert meta["variant"] == "fp32-keras" and meta["decoder"] == "transpose-conv"
    assert meta["verification"]["agreement"] > 0.99 and meta["calibration"] is None
    model = TFLiteModel(tmp_path / "petseg_fp32-keras.tflite")
    assert "TRANSPOSE_CONV" in {op["op_name"] for op in model.interpreter._get_ops_details()}
