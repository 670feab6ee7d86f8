"""int8 that is integer everywhere and keeps its accuracy (issue 20): bias correction, the budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from petseg.export.cli import main
from petseg.runtime import TFLiteModel


def _conv_bn_model(seed: int = 0):
    """Conv -> BN -> ReLU6 -> depthwise -> BN, with an input mean far from zero (MobileNetV2's case)."""
    import keras
    from keras import layers

    rng = np.random.default_rng(seed)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = layers.BatchNormalization(name="conv_bn")(x)
    x = layers.ReLU(6.0)(x)
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = layers.BatchNormalization(name="dw_bn")(x)
    model = keras.Model(inputs, x)
    for bn, n in (("conv_bn", 8), ("dw_bn", 8)):
        layer = model.get_layer(bn)
        layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n), rng.normal(0, 1, n),
                           rng.uniform(0.5, 2, n)])
    images = rng.uniform(0, 255, (16, 16, 16, 3)).astype(np.uint8)
    return model, images


def _converter_int8_kernels(model, images) -> dict[str, np.ndarray]:
    """The converter's int8 kernels of ``_conv_bn_model``, dequantised, in Keras order (BN folded)."""
    import tensorflow as tf

    from petseg.export.converter import representative

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(images.astype(np.float32))
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    weights = {}
    for t in interpreter.get_tensor_details():
        q = t["quantization_parameters"]
        if t["dtype"] == np.int8 and len(t["shape"]) == 4 and len(q["scales"]) > 1:
            shape = [1] * 4
            shape[q["quantized_dimension"]] = -1
            kernel = interpreter.get_tensor(t["index"]).astype(np.float32) * q["scales"].reshape(shape)
            if t["shape"][0] == 1:  # depthwise (1, kh, kw, out) -> Keras (kh, kw, in, 1)
                weights["dw"] = kernel[0][..., None]
            else:  # (out, kh, kw, in) -> Keras (kh, kw, in, out)
                weights["conv"] = np.transpose(kernel, (1, 2, 3, 0))
    return weights


def test_rounded_kernels_are_the_converters_int8_weights():
    """The correction is only as good as its copy of the converter's rounding: compare them."""
    from petseg.export.bias_correction import _sites, rounded_kernel

    model, images = _conv_bn_model()
    theirs = _converter_int8_kernels(model, images)
    for site in _sites(model):
        kernel = np.asarray(site.conv.kernel)
        bn = site.bn_scale()
        ours = rounded_kernel(site.conv, kernel, bn, "subpixel")
        ours = ours * (bn[:, None] if site.conv.name == "dw" else bn)  # depthwise: out channel = in
        mine = theirs[site.conv.name]
        np.testing.assert_allclose(ours, mine, atol=1e-6 * np.abs(mine).max())


def test_fitted_rounding_is_what_the_converter_computes():
    """The corrected copy's kernels are already int8 on the converter's grid: it keeps them."""
    from petseg.export.bias_correction import _sites, corrected_for_int8

    model, images = _conv_bn_model()
    corrected, summary = corrected_for_int8(model, images)
    assert summary["fitted_layers"] == 2
    theirs = _converter_int8_kernels(corrected, images)
    for site in _sites(corrected):
        bn = site.bn_scale()
        ours = np.asarray(site.conv.kernel) * (bn[:, None] if site.conv.name == "dw" else bn)
        mine = theirs[site.conv.name]
        np.testing.assert_allclose(ours, mine, atol=1e-6 * np.abs(mine).max())
        # and it is not simply each weight rounded to its nearest step
        nearest = _converter_int8_kernels(model, images)[site.conv.name]
        assert not np.allclose(mine, nearest, atol=1e-6 * np.abs(mine).max())


def test_fitted_rounding_cancels_more_of_the_output_error():
    """On correlated inputs, GPTQ's rounding leaves less output error than rounding to nearest,
    on the same per-channel grid (largest weight on 127 exactly)."""
    from petseg.export.gptq import rounded, second_moments

    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(24, 24))
    x = rng.normal(size=(4000, 24)) @ mixing + 3.0  # correlated, with a large mean
    w = rng.normal(size=(16, 24)).astype(np.float32)
    q = rounded(w[None], second_moments(x[:, None, :], depthwise=False))[0]
    scale = np.abs(w).max(axis=1, keepdims=True) / 127
    steps = q / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.abs(steps).max() <= 127 + 1e-3
    np.testing.assert_allclose(np.abs(steps).max(axis=1), 127, atol=1e-3)
    nearest = np.round(w / scale) * scale
    def error(k):
        return np.mean(((k - w) @ x.T) ** 2)
    assert error(q) < 0.5 * error(nearest)


def test_correction_cancels_the_mean_error_of_int8_weights():
    from petseg.export.bias_correction import _rounded_kernels, _sites, corrected_for_int8

    model, images = _conv_bn_model()
    floats = np.asarray(model(images.astype(np.float32), training=False))
    corrected, summary = corrected_for_int8(model, images)
    assert summary["layers"] == 2 and summary["largest_shift"] > 0
    for which, expect_small in ((model, False), (corrected, True)):
        sites = _sites(which)
        with _rounded_kernels(sites, "subpixel"):
            rounded = np.asarray(which(images.astype(np.float32), training=False))
        error = np.abs((rounded - floats).mean(axis=(0, 1, 2))).max() / floats.std()
        assert (error < 1e-3) == expect_small, (which.name, error)
    # The original keeps its trained weights (fp32 and fp16 export it unmodified).
    np.testing.assert_array_equal(np.asarray(model(images.astype(np.float32), training=False)), floats)


def test_budget_interval_and_verdict():
    from petseg.export.budget import judge
    from petseg.export.settings import Budget

    rng = np.random.default_rng(0)
    masks = rng.integers(0, 3, (40, 16, 16))
    same = judge(masks, masks, masks, Budget(0.3, 0.99))
    assert same.verdict == "within" and same.drop == 0 and same.agreement == 1
    noisy = np.where(rng.random(masks.shape) < 0.2, (masks + 1) % 3, masks)
    worse = judge(masks, masks, noisy, Budget(0.3, 0.99))
    assert worse.verdict == "over" and worse.drop > 10
    assert worse.drop_interval.low < worse.drop < worse.drop_interval.high
    # A few images with a large loss and many without: the interval is wide, the verdict honest.
    mixed = masks.copy()
    mixed[:2] = noisy[:2]
    assert judge(masks, masks, mixed, Budget(2.0, 0.9)).verdict == "uncertain"


def test_paired_gain_sees_a_small_gain_the_two_verdicts_cannot():
    """A float island is kept only when it beats all-int8 on the same images (converter.py):
    the paired interval resolves a gain that the two separate intervals, overlapping, cannot."""
    from petseg.export.budget import judge, paired_gain
    from petseg.export.settings import Budget

    rng = np.random.default_rng(1)
    masks = rng.integers(0, 3, (60, 16, 16))
    # Images differ in difficulty (what pairing cancels); "after" fixes a few pixels of each.
    flip = rng.random(masks.shape) < rng.uniform(0.02, 0.3, (60, 1, 1))
    before = np.where(flip, (masks + 1) % 3, masks)
    after = np.where(flip & (rng.random(masks.shape) < 0.1), masks, before)
    miou, agreement = paired_gain(masks, masks, before, after)
    assert miou.low > 0 and agreement.low > 0
    one, two = (judge(masks, masks, p, Budget(0.3, 0.99)) for p in (before, after))
    assert two.drop_interval.low < one.drop_interval.high  # separately they overlap
    same = paired_gain(masks, masks, before, before)
    assert same[0].as_list() == [0, 0] and same[1].as_list() == [0, 0]


def test_int8_is_verified_on_training_images_calibration_never_saw(learned_model, tmp_path, capsys):
    # --max-drop off: no fallback search, so the file is the bias-corrected all-int8 one.
    assert main(["--model", str(learned_model), "--quantize", "int8", "--out", str(tmp_path),
                 "--calibration-samples", "100", "--verify-images", "2", "--holdout-images", "4",
                 "--max-drop", "off"]) == 0
    meta = json.loads((tmp_path / "petseg_int8.json").read_text())
    check = meta["verification"]
    assert check["splits"] == {"val": 2, "train held out of calibration": 4} and check["images"] == 6
    from petseg.dataset import load_dataset

    train = load_dataset("synthetic:24", 64, splits=("train",))["train"]
    assert meta["calibration"]["images"] == len(train) - 4
    low, high = check["interval"]["miou_delta_points"]
    assert low <= check["miou_delta_points"] <= high
    assert check["budget"]["verdict"] in ("within", "over", "uncertain")
    assert meta["bias_correction"]["layers"] > 50
    assert meta["integer_only"] is True and meta["keep_float"] == []
    assert "int8 on 6 held-out images" in capsys.readouterr().out


def test_integer_only_is_all_int8_inside_xnnpack(learned_model, tmp_path, capsys):
    # A budget nothing meets: --integer-only still keeps every layer int8 and says it missed.
    assert main(["--model", str(learned_model), "--quantize", "int8", "--integer-only", "--out",
                 str(tmp_path), "--calibration-samples", "8", "--verify-images", "2",
                 "--max-drop", "0", "--min-agreement", "100"]) == 0
    meta = json.loads((tmp_path / "petseg_int8.json").read_text())
    assert meta["keep_float"] == [] and meta["integer_only"] is True
    assert meta["verification"]["budget"]["verdict"] != "within"
    out = capsys.readouterr().out
    assert "layers in float" not in out and "budget" in out
    model = TFLiteModel(tmp_path / "petseg_int8.tflite")
    assert set(model.outside_delegate()) <= {"QUANTIZE"}


@pytest.mark.parametrize("flag", ["--holdout-images"])
def test_negative_holdout_is_refused(tiny_model, capsys, flag):
    from petseg.errors import run_cli

    assert run_cli(main, ["--model", str(tiny_model), flag, "-1"]) == 2
    err = capsys.readouterr().err
    assert flag in err and len(err.strip().splitlines()) == 1
