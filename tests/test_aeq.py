"""The LiteRT Quantizer (AEQ) path: int8, integer-only, int16x8, weight-only wi8/wi4, and its repairs.

Each repair (aeq_repairs.py) has a test that the quantizer's own output still needs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_quantizer", reason="the train extra (litert-quantizer) is not installed")

from petseg.export.cli import main  # noqa: E402
from petseg.runtime import TFLiteModel  # noqa: E402

COMMON = ["--calibration-samples", "8", "--verify-images", "2"]


@pytest.fixture(scope="module")
def aeq_exports(tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("aeq")
    assert main(["--model", str(tiny_model), "--quantize", "int8,wi8,wi4", "--quantizer", "aeq",
                 "--out", str(out), *COMMON, "--max-drop", "off"]) == 0
    assert main(["--model", str(tiny_model), "--quantize", "fp32", "--decoder", "subpixel",
                 "--out", str(out / "subpixel"), *COMMON]) == 0
    return out


@pytest.fixture(scope="module")
def float_graph(tiny_model):
    from petseg.export.aeq_variants import signed_graph
    from petseg.export.trained_model import load_keras_model

    return signed_graph(load_keras_model(tiny_model), reshaped=True)


@pytest.fixture(scope="module")
def calib():
    from petseg.dataset import load_dataset

    return load_dataset("synthetic:24", 64, splits=("train",))["train"].images[:8]


def _tensor_types(model: TFLiteModel) -> set[str]:
    return {np.dtype(t["dtype"]).name for t in model.interpreter.get_tensor_details()}


def _unrepaired(graph: bytes, kind: str, io_type: str, ranges: dict | None) -> bytes:
    """The quantizer's own output for ``kind``, before aeq_repairs."""
    from litert_quantizer import quantizer

    from petseg.export import aeq

    tool = quantizer.Quantizer(graph, aeq.recipe_for(kind, io_type))
    with aeq._quiet():
        return bytes(tool.quantize(ranges, enable_progress_report=False).quantized_model)


def test_aeq_int8_has_float_ends_and_runs_in_xnnpack(aeq_exports):
    import sys

    meta = json.loads((aeq_exports / "petseg_int8.json").read_text())
    assert meta["quantizer"].startswith("litert-quantizer ") and meta["verification"]["agreement"] > 0.9
    assert "ai_edge_quantizer" not in sys.modules  # the unmaintained predecessor is not used
    assert meta["input"]["dtype"] == "float32" and meta["output"]["dtype"] == "float32"
    model = TFLiteModel(aeq_exports / "petseg_int8.tflite")
    assert set(model.outside_delegate()) <= {"QUANTIZE", "ADD"}
    # The reshaped depth-to-space leaves no float island behind: the only floats are the two ends.
    floats = {t["name"] for t in model.interpreter.get_tensor_details() if t["dtype"] == np.float32}
    assert floats == {model.input["name"], model.output["name"]}


def test_the_aeq_modules_load_no_tensorflow():
    """petseg-export answers --help and refuses bad input before TensorFlow loads (converter.py)."""
    import subprocess
    import sys

    code = ("import sys, petseg.export.aeq, petseg.export.aeq_variants, petseg.export.cli; "
            "print('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_integer_only_fallback_gives_int16_not_float(float_graph, calib):
    from petseg.export import aeq

    ranges = aeq.activation_ranges(float_graph, calib)
    layer = aeq.weighted_layers(float_graph)[1][0]
    for how, expected in (("int16", "int16"), ("float", "float32")):
        from petseg.export.verify import _as_file

        with _as_file(aeq.quantize(float_graph, "int8", ranges, "uint8", {layer: how}), ".tflite") as path:
            types = _tensor_types(TFLiteModel(path))
        assert expected in types
        assert ("float32" in types) == (how == "float")


def test_integer_only_export_writes_no_float_tensor(tiny_model, tmp_path):
    assert main(["--model", str(tiny_model), "--quantize", "int8", "--quantizer", "aeq", "--integer-only",
                 "--out", str(tmp_path), *COMMON, "--max-drop", "100", "--min-agreement", "0"]) == 0
    meta = json.loads((tmp_path / "petseg_int8.json").read_text())
    assert meta["integer_only"] is True and meta["fallback"]["kind"] == "int16"
    assert "float32" not in _tensor_types(TFLiteModel(tmp_path / "petseg_int8.tflite"))


def test_weight_only_variants_are_small_and_verified(aeq_exports):
    fp32 = (aeq_exports / "subpixel" / "petseg_fp32.tflite").stat().st_size
    sizes = {v: (aeq_exports / f"petseg_{v}.tflite").stat().st_size for v in ("wi8", "wi4")}
    assert sizes["wi8"] < 0.3 * fp32 and sizes["wi4"] < 0.2 * fp32
    for variant in ("wi8", "wi4"):
        meta = json.loads((aeq_exports / f"petseg_{variant}.json").read_text())
        assert meta["input"]["dtype"] == "float32" and meta["verification"]["agreement"] > 0.8


def test_weights_need_and_get_the_inline_repair(float_graph):
    """Above 256 KB the quantizer writes weights after the flatbuffer: MediaPipe's metadata writer
    (tflite_metadata.py) and the object API the other repairs edit with then drop them."""
    from ai_edge_litert.tools import flatbuffer_utils

    from petseg.export import aeq
    from petseg.export.parser_version import install
    from petseg.export.verify import _as_file

    install()
    from mediapipe.tasks.python.metadata.metadata_writers import image_segmenter, metadata_writer

    def with_metadata(model: bytes) -> bytes:
        writer = image_segmenter.MetadataWriter.create(
            bytearray(model), input_norm_mean=[0.0] * 3, input_norm_std=[1.0] * 3,
            labels=metadata_writer.Labels().add(["pet", "background", "border"]))
        result = bytes(writer.populate()[0])
        del writer  # as tflite_metadata.embed does
        return result

    raw = _unrepaired(float_graph, "wi8", "float32", None)
    plain = bytes(flatbuffer_utils.convert_object_to_bytearray(
        flatbuffer_utils.convert_bytearray_to_object(bytearray(raw))))
    for broken in (with_metadata(raw), plain):
        assert len(broken) < len(raw) / 4
        with _as_file(broken, ".tflite") as path, pytest.raises(Exception, match="out of range offset"):
            TFLiteModel(path)
    repaired = aeq.quantize(float_graph, "wi8", None, "float32")
    with _as_file(with_metadata(repaired), ".tflite") as path:
        model = TFLiteModel(path)
        model.set_input(np.zeros((64, 64, 3), np.uint8))
        model.invoke()
        assert np.isfinite(model.logits()).all()


def test_int16x8_needs_and_gets_the_add_repair(float_graph, calib):
    from petseg.export import aeq
    from petseg.export.verify import _as_file

    ranges = aeq.activation_ranges(float_graph, calib)
    raw = _unrepaired(float_graph, "int16x8", "float32", ranges)
    with _as_file(raw, ".tflite") as path, pytest.raises(Exception, match="ADD|failed to prepare|shift"):
        TFLiteModel(path, verified=True)
    with _as_file(aeq.quantize(float_graph, "int16x8", ranges, "float32"), ".tflite") as path:
        model = TFLiteModel(path)
        assert "int16" in _tensor_types(model)


@pytest.mark.shared
def test_dead_channel_biases_stay_in_range(pretrained_tiny_model, calib):
    """MobileNetV2's ImageNet Conv1 has dead channels whose int32 bias AEQ overflows."""
    from ai_edge_litert.tools import flatbuffer_utils

    from petseg.export import aeq
    from petseg.export.aeq_variants import signed_graph
    from petseg.export.trained_model import load_keras_model

    graph = signed_graph(load_keras_model(pretrained_tiny_model), reshaped=True)
    ranges = aeq.activation_ranges(graph, calib)

    def wrapped_biases(model: bytes) -> int:
        m = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
        data = [m.buffers[t.buffer].data for t in m.subgraphs[0].tensors if t.type == 2]  # INT32
        return sum(int(np.sum(np.frombuffer(bytes(d), np.int32) == -2**31)) for d in data if d is not None)

    raw = _unrepaired(graph, "int8", "uint8", ranges)
    assert wrapped_biases(bytes(flatbuffer_utils.convert_object_to_bytearray(
        flatbuffer_utils.read_model_from_bytearray(bytearray(raw))))) > 0
    assert wrapped_biases(aeq.quantize(graph, "int8", ranges, "uint8")) == 0


def test_depth_to_space_reshaped_is_the_same_op():
    import tensorflow as tf

    from petseg.export.shuffle import depth_to_space, reshaped_shuffles

    for block in (2, 4):
        x = tf.constant(np.random.default_rng(block).normal(size=(1, 3, 5, block * block * 7)), tf.float32)
        with reshaped_shuffles():
            y = depth_to_space(x, block)
        np.testing.assert_array_equal(y.numpy(), tf.nn.depth_to_space(x, block).numpy())
