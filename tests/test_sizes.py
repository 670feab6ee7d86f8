"""Model sizes (train/sizes.py): the seed unchanged, smaller decoders, and every stage for each size."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from petseg.errors import PetsegError, run_cli
from petseg.train.model import build_encoder, build_unet

# Imports of what sizes added stay inside the tests, so that each test fails on its own before them.
SMALLER = ("small", "tiny")


def _seed_before_sizes(image_size: int) -> keras.Model:
    """The U-Net as it was before sizes existed, layer for layer (the tutorial's decoder)."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_minus1_1")(inputs)
    encoder = build_encoder(image_size, "none")
    *skips, x = encoder(x)
    for filters, skip in zip((512, 256, 128, 64), reversed(skips)):
        x = keras.Sequential([
            keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=keras.initializers.RandomNormal(0.0, 0.02)),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.ReLU(),
        ], name=f"up_{filters}")(x)
        x = keras.layers.Concatenate(name=f"skip_{filters}")([x, skip])
    logits = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", name="logits")(x)
    return keras.Model(inputs, logits, name="petseg_unet")


def test_seed_size_is_the_model_exports_and_tests_know():
    keras.utils.set_random_seed(0)
    before = _seed_before_sizes(64)
    keras.utils.set_random_seed(0)
    seed = build_unet(64, "none", size="seed")
    assert seed.name == before.name
    assert [layer.name for layer in seed.layers] == [layer.name for layer in before.layers]
    assert all(np.array_equal(a, b) for a, b in zip(seed.get_weights(), before.get_weights()))
    image = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(seed(image, training=False), before(image, training=False))


def test_smaller_sizes_shrink_the_decoder_and_the_encoder_to_their_width():
    from petseg.train.macs import keras_macs
    from petseg.train.sizes import get_size

    seed = build_unet(128, "none", size="seed")
    macs = {"seed": keras_macs(seed)}
    for name in SMALLER:
        model = build_unet(128, "none", size=name)
        assert model.output_shape == seed.output_shape
        taps = [t.shape[-1] for t in model.get_layer("encoder").outputs]
        width = get_size(name).encoder_width
        assert taps == [t.shape[-1] for t in build_encoder(128, "none", width).outputs]
        assert (width < 1) == (taps != [t.shape[-1] for t in seed.get_layer("encoder").outputs])
        macs[name] = keras_macs(model)
    assert macs["seed"] == pytest.approx(0.5855e9, rel=1e-3)  # the figure the README quotes
    assert macs["small"] < macs["seed"] / 2 and macs["tiny"] < macs["small"]


def test_sizes_are_checked_in_one_line(capsys):
    from petseg.train.cli import main
    from petseg.train.sizes import Size

    assert run_cli(main, ["--size", "huge", "--data", "synthetic:4", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown model size 'huge'; choose from seed, small, tiny" in err
    with pytest.raises(PetsegError, match="multiple of 32"):
        Size("half", (64, 32, 16, 8), encoder_scale=0.5).encoder_size(96)


def test_each_size_has_its_own_recipe_and_flags_still_win():
    from petseg.train.cli import build_parser
    from petseg.train.recipe import SIZE_RECIPES, recipe_for
    from petseg.train.sizes import SIZES

    for name in SIZES:
        recipe = recipe_for(name)
        assert recipe.size == name
        assert all(getattr(recipe, k) == v for k, v in SIZE_RECIPES[name].items())
    assert recipe_for("tiny", epochs=3, learning_rate=None).epochs == 3
    assert recipe_for("tiny", learning_rate=None).learning_rate == recipe_for("tiny").learning_rate
    assert len({(recipe_for(n).epochs, recipe_for(n).learning_rate) for n in SIZES}) == len(SIZES)
    assert "seed 22" in build_parser().format_help()


def test_every_block_kind_sizes_names_is_built_by_the_model():
    # The kinds are written once, in sizes.py (Keras-free); model.py has a builder for each.
    from petseg.train.model import BLOCK_BUILDERS
    from petseg.train.sizes import BLOCKS

    assert list(BLOCK_BUILDERS) == list(BLOCKS)
    features = np.zeros((1, 4, 4, 16), np.float32)
    for kind, build in BLOCK_BUILDERS.items():
        block = build(8, name=f"up_{kind}")
        assert block.name == f"up_{kind}" and block(features).shape == (1, 8, 8, 8), kind


def test_every_head_sizes_names_is_built_by_the_model(monkeypatch):
    # The heads are written once too, in sizes.HEADS; the model builds each, logits at the image size.
    from petseg.train.sizes import HEADS, SIZES, Size

    for head in HEADS:
        size = Size(f"head-{head}", (64, 32, 16, 8), "bilinear", head)
        monkeypatch.setitem(SIZES, size.name, size)
        model = build_unet(64, "none", size=size.name)
        assert model.output_shape == (None, 64, 64, 3), head
        assert model.get_layer("logits") is model.layers[-1], head


@pytest.mark.parametrize("weights", ["none", "pretrained"])
def test_recipe_and_model_default_the_encoders_batch_norms_alike(weights, request):
    from petseg.train.recipe import Recipe, default_train_encoder_bn

    if weights == "pretrained":
        weights = str(request.getfixturevalue("shared_weights"))
    trains = default_train_encoder_bn(weights)
    assert trains is (weights == "none")  # they train exactly when there are no pretrained weights
    assert Recipe(encoder_weights=weights).train_encoder_bn is trains
    encoder = build_unet(64, weights).get_layer("encoder")
    assert {layer.trainable for layer in encoder.layers
            if isinstance(layer, keras.layers.BatchNormalization)} == {trains}


@pytest.fixture(scope="module")
def sized(tmp_path_factory) -> dict:
    """small and tiny trained briefly on synthetic pets, each exported to fp32 and int8."""
    from petseg.export.cli import main as export
    from petseg.train.cli import main as train

    models = {}
    for name in SMALLER:
        out = tmp_path_factory.mktemp(name)
        assert train(["--size", name, "--data", "synthetic:24", "--image-size", "64", "--encoder-weights",
                      "none", "--epochs", "2", "--batch-size", "8", "--out", str(out)]) == 0
        assert export(["--model", str(out / "petseg.keras"), "--quantize", "fp32,int8",
                       "--calibration-samples", "8", "--verify-images", "2", "--max-drop", "off"]) == 0
        models[name] = out
    return models


@pytest.mark.slow  # two sizes trained and exported (module fixture, ~50 s)
def test_training_records_the_size_and_its_decoder(sized):
    from petseg.train.sizes import get_size

    for name, out in sized.items():
        meta = json.loads((out / "petseg.json").read_text())
        assert meta["size"] == name and meta["recipe"]["size"] == name
        assert meta["decoder_filters"] == list(get_size(name).decoder_filters)
        assert 0 < meta["gmac_per_image"] < 0.2  # 64x64 images


@pytest.mark.slow  # two sizes trained and exported (module fixture, ~50 s)
def test_every_size_exports_verified_and_on_xnnpack(sized, tflite_logits):
    from petseg.dataset import load_dataset
    from petseg.export.trained_model import load_keras_model
    from petseg.runtime import TFLiteModel

    images = load_dataset("synthetic:24", 64, splits=("test",))["test"].images[:2]
    for name, out in sized.items():
        keras_logits = load_keras_model(out / "petseg.keras").predict(images.astype(np.float32), verbose=0)
        for variant in ("fp32", "int8"):
            meta = json.loads((out / f"petseg_{variant}.json").read_text())
            assert meta["recipe"]["size"] == name and meta["verification"]["agreement"] > 0.8
            model = TFLiteModel(out / f"petseg_{variant}.tflite")
            # Every op inside XNNPACK, int8's float <-> int8 conversions at its ends included.
            assert model.outside_delegate() == {}
        np.testing.assert_allclose(tflite_logits(out / "petseg_fp32.tflite", images), keras_logits, atol=1e-3)


def _with_batch_norm_statistics(model: keras.Model) -> keras.Model:
    """Random moving statistics, so that folding batch norm into the kernels is exercised."""
    rng = np.random.default_rng(1)
    for block in model.layers:
        for layer in getattr(block, "layers", []):
            if isinstance(layer, keras.layers.BatchNormalization) and block.name.startswith("up_"):
                layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
                layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
    return model


@pytest.mark.parametrize("name, filters, block, head", [
    ("odd_widths", (48, 40, 24, 8), "transpose", "transpose"),  # any width of transposed conv is rewritten
    # blocks petseg does not rewrite run as Keras converts them
    ("mixed", (96, 64, 32, 16), ("transpose", "separable", "bilinear", "transpose"), "bilinear"),
])
def test_decoder_rewrites_handle_any_widths_and_pass_other_blocks_through(name, filters, block, head,
                                                                          monkeypatch, tmp_path):
    import tensorflow as tf

    from petseg.export.converter import float_graph
    from petseg.export.decoder import fast_forward
    from petseg.runtime import TFLiteModel
    from petseg.train.sizes import SIZES, Size

    size = Size(name, filters, block, head)
    monkeypatch.setitem(SIZES, size.name, size)
    keras.utils.set_random_seed(0)
    model = _with_batch_norm_statistics(build_unet(64, "none", size=size.name))
    image = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    expected = model(image, training=False).numpy()
    for form in ("winograd", "subpixel"):
        got = tf.function(fast_forward(model, form))(tf.constant(image)).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-4 * max(1.0, np.abs(expected).max()))
    path = tmp_path / "fp32.tflite"
    path.write_bytes(float_graph(model, "winograd"))
    fp32 = TFLiteModel(path, verified=True)
    assert "TRANSPOSE_CONV" not in {op["op_name"] for op in fp32.interpreter._get_ops_details()}
    assert fp32.outside_delegate() == {}


@pytest.mark.slow  # two sizes trained and exported (module fixture, ~50 s)
def test_one_bench_run_scores_each_size_against_its_own_fp32(sized, tmp_path):
    from petseg.benchmark.cli import main as bench
    from petseg.benchmark.pareto import write

    models = [sized[n] / f"petseg_{v}.tflite" for n in SMALLER for v in ("fp32", "int8")]
    assert bench([*map(str, models), "--threads", "1", "--runs", "3", "--warmup", "1", "--min-seconds", "0",
                  "--limit", "4", "--json", str(tmp_path / "bench.json")]) == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    by_model = {r["model"]: r for r in data["results"]}
    for name in SMALLER:
        fp32, int8 = (by_model[str(sized[name] / f"petseg_{v}.tflite")] for v in ("fp32", "int8"))
        assert fp32["agreement"] == 1.0 and fp32["speedup"] == 1.0  # its own fp32 is the reference
        assert int8["miou_delta_points"] == pytest.approx(100 * (int8["miou"] - fp32["miou"]))
    checks = write(tmp_path / "bench.json", tmp_path / "reports")
    rows = json.loads((tmp_path / "reports" / "pareto.json").read_text())["rows"]
    assert {(r["size"], r["variant"]) for r in rows} == {(n, v) for n in SMALLER for v in ("fp32", "int8")}
    assert all(r["gmac_keras"] and r["gmac_graph"] and r["train_seconds"] for r in rows)
    assert any(c["goal"].startswith("tiny: int8 agreement") for c in checks)
    assert (tmp_path / "reports" / "pareto.png").stat().st_size > 10_000
    assert "CPU: " in (tmp_path / "reports" / "pareto.md").read_text()


def test_plot_axes_read_well():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from petseg.benchmark.plots import _latency_axis, miou_limits, pareto_front

    low, high = miou_limits([0.7155, 0.7157])
    assert high - low >= 0.06  # a 0.02-point gap does not fill the height
    assert miou_limits([0.55, 0.72]) == pytest.approx((0.55 - 0.01275, 0.72 + 0.01275))
    fig, ax = plt.subplots()
    ax.scatter([2.4, 6.3], [0.7, 0.71])
    _latency_axis(ax, [2.4, 6.3], "ms")
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    plt.close(fig)
    assert len(labels) >= 2 and all(label.replace(".", "").isdigit() for label in labels), labels
    assert pareto_front([(1.0, 0.6), (2.0, 0.7), (3.0, 0.65), (0.5, 0.5)]) == [(0.5, 0.5), (1.0, 0.6),
                                                                                (2.0, 0.7)]
