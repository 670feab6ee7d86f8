"""Thinner encoders (issue 24): pruned from the pretrained alpha-1.0 MobileNetV2; every stage, any width."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from petseg.errors import run_cli

SIDE = 64


def _mobilenet(alpha: float = 1.0) -> keras.Model:
    return keras.applications.MobileNetV2(input_shape=(SIDE, SIDE, 3), include_top=False, weights=None,
                                          alpha=alpha)


def _dead_outside(full: keras.Model, keep: dict, spaces: dict) -> None:
    """Random statistics everywhere, and every batch norm writes exact zeros in the channels
    ``keep`` drops: then those channels carry nothing, and dropping them changes no kept value."""
    rng = np.random.default_rng(0)
    for name, axes in spaces.items():
        layer = full.get_layer(name)
        if not isinstance(layer, keras.layers.BatchNormalization) or axes[0][0] is None:
            continue
        gamma, beta, mean, var = (np.asarray(w) for w in layer.get_weights())
        alive = np.zeros(len(gamma), bool)
        alive[keep[axes[0][0]]] = True
        gamma = np.where(alive, rng.uniform(0.5, 1.5, len(gamma)), 0.0)
        beta = np.where(alive, rng.normal(0, 0.2, len(gamma)), 0.0)
        mean = np.where(alive, rng.normal(0, 0.2, len(gamma)), 0.0)
        layer.set_weights([gamma, beta, mean, rng.uniform(0.5, 2.0, len(gamma))])


@pytest.mark.parametrize("width", [0.75, 0.5, 0.35])
def test_pruning_keeps_what_the_kept_channels_compute(width):
    from petseg.train.model import SKIP_LAYERS
    from petseg.train.prune import _axis_spaces, kept_channels, tap_channels, thinned_mobilenet_v2

    keras.utils.set_random_seed(0)
    full = _mobilenet()
    keep = kept_channels(full, _mobilenet(width))
    _dead_outside(full, keep, _axis_spaces(full))
    assert kept_channels(full, _mobilenet(width)).keys() == keep.keys()
    thin = thinned_mobilenet_v2(full, width)
    # Keras' own architecture at that width, and the channels chosen are the ones still alive.
    assert [w.shape for w in thin.weights] == [w.shape for w in _mobilenet(width).weights]
    for space, index in kept_channels(full, thin).items():
        np.testing.assert_array_equal(index, keep[space], err_msg=space)
    image = np.random.default_rng(1).uniform(-1, 1, (2, SIDE, SIDE, 3)).astype(np.float32)
    for tap, channels in zip(SKIP_LAYERS, tap_channels(full, thin, SKIP_LAYERS)):
        want = keras.Model(full.input, full.get_layer(tap).output)(image).numpy()[..., channels]
        got = keras.Model(thin.input, thin.get_layer(tap).output)(image).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, err_msg=tap)


def test_residual_chains_share_one_channel_set():
    from petseg.train.prune import _axis_spaces

    spaces = _axis_spaces(_mobilenet())
    out = {name: axes[0][3] for name, axes in spaces.items() if name.endswith("_project")}
    # MobileNetV2's additions: blocks 2, 4-5, 7-9, 11-12, 14-15 add their input.
    assert out["block_2_project"] == out["block_1_project"]
    assert out["block_9_project"] == out["block_6_project"] != out["block_10_project"]
    assert len(set(out.values())) == 7  # 16, 24, 32, 64, 96, 160, 320 channels at width 1


def test_recalibration_sets_the_statistics_the_pruned_layers_see():
    from petseg.train.recalibrate import batch_norms, recalibrate_batch_norms

    keras.utils.set_random_seed(0)
    model = _mobilenet(0.5)
    for layer in batch_norms(model):
        layer.trainable = False
    x = np.random.default_rng(0).uniform(-1, 1, (12, SIDE, SIDE, 3)).astype(np.float32)
    recalibrate_batch_norms(model, x, batch_size=4)
    first = model.get_layer("bn_Conv1")
    conv = model.get_layer("Conv1")(x).numpy()
    np.testing.assert_allclose(first.moving_mean.numpy(), conv.mean((0, 1, 2)), atol=1e-5)
    batches = conv.reshape(3, 4, *conv.shape[1:]).var((1, 2, 3)).mean(0)  # the batches' mean variance
    np.testing.assert_allclose(first.moving_variance.numpy(), batches, rtol=1e-4)
    assert {layer.trainable for layer in batch_norms(model)} == {False}  # restored
    # From one batch, the statistics are exactly that batch's, layer after layer, each measured on
    # what the corrected layers before it put out: in inference the deepest batch norm then
    # writes its beta and gamma as each channel's mean and spread.
    recalibrate_batch_norms(model, x, batch_size=len(x))
    last = model.get_layer("block_16_project_BN")
    out = keras.Model(model.input, last.output)(x).numpy()
    np.testing.assert_allclose(out.mean((0, 1, 2)), last.beta.numpy(), atol=1e-3)
    np.testing.assert_allclose(out.std((0, 1, 2)), np.abs(last.gamma.numpy()), rtol=1e-2)


def test_reconstruction_brings_the_pruned_taps_back_towards_the_full_encoders():
    from petseg.train.model import SKIP_LAYERS
    from petseg.train.prune import tap_channels, thinned_mobilenet_v2
    from petseg.train.recalibrate import recalibrate_batch_norms
    from petseg.train.reconstruct import reconstruct_taps

    keras.utils.set_random_seed(0)
    full = _mobilenet()
    thin = thinned_mobilenet_v2(full, 0.5)
    taps = [keras.Model(m.input, [m.get_layer(n).output for n in SKIP_LAYERS]) for m in (full, thin)]
    x = np.random.default_rng(0).uniform(-1, 1, (16, SIDE, SIDE, 3)).astype(np.float32)
    for model in (full, thin):  # statistics that keep a random network's ReLUs alive
        recalibrate_batch_norms(model, x)
    # The cut encoder names the same channels as the whole network: those pruning kept.
    kept = tap_channels(full, taps[1], SKIP_LAYERS)
    assert all(np.array_equal(a, b) for a, b in zip(kept, tap_channels(full, thin, SKIP_LAYERS)))

    def error() -> float:  # on the unaugmented images, each tap in its target's variance
        pairs = [(np.asarray(t)[..., k], np.asarray(g)) for t, g, k in zip(taps[0](x), taps[1](x), kept)]
        return float(np.mean([np.mean((g - t) ** 2) / np.var(t) for t, g in pairs]))

    before = thin.get_layer("block_16_project").get_weights()[0].copy()
    start = error()
    history = reconstruct_taps(*taps, kept, x, epochs=10, batch_size=8, learning_rate=3e-3)
    assert len(history) == 10 and history[-1] < history[0]
    assert error() < 0.9 * start
    assert not np.array_equal(before, thin.get_layer("block_16_project").get_weights()[0])


@pytest.fixture(scope="module")
def pretrained_file(tmp_path_factory) -> str:
    """A stand-in for the ImageNet weights file: a random alpha-1.0 MobileNetV2's."""
    keras.utils.set_random_seed(3)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2.weights.h5"
    full = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, weights=None)
    full.save_weights(path)
    return str(path)


@pytest.fixture(scope="module")
def thin_tiny(tmp_path_factory, pretrained_file, learned_model):
    """tiny at width 0.35, pruned from the weights file, taught by a seed model, exported."""
    from petseg.export.cli import main as export
    from petseg.train.cli import main as train

    out = tmp_path_factory.mktemp("thin")
    assert train(["--size", "tiny", "--encoder-width", "0.35", "--data", "synthetic:24", "--image-size", "64",
                  "--encoder-weights", pretrained_file, "--reconstruction-epochs", "2",
                  "--teacher", str(learned_model), "--epochs", "2", "--batch-size", "8",
                  "--out", str(out)]) == 0
    assert export(["--model", str(out / "petseg.keras"), "--quantize", "fp32,int8", "--calibration-samples",
                   "8", "--verify-images", "2", "--max-drop", "off"]) == 0
    return out


@pytest.mark.slow  # one training and export (module fixture, ~40 s)
def test_width_is_recorded_in_the_model_and_every_export(thin_tiny):
    from petseg.description import ARCHITECTURE
    from petseg.modelfile import read_embedded
    from petseg.train.model import build_unet

    trained = json.loads((thin_tiny / "petseg.json").read_text())
    assert trained["encoder_width"] == 0.35 and trained["recipe"]["encoder_width"] == 0.35
    # The thinner encoder's MACs: well under the alpha-1.0 tiny's.
    from petseg.train.macs import keras_macs

    assert trained["gmac_per_image"] < 0.6 * keras_macs(build_unet(SIDE, "none", size="tiny")) / 1e9
    for variant in ("fp32", "int8"):
        sidecar = json.loads((thin_tiny / f"petseg_{variant}.json").read_text())
        assert sidecar["encoder_width"] == 0.35, variant
        assert {k: sidecar[k] for k in ARCHITECTURE} == {k: trained[k] for k in ARCHITECTURE}, variant
        # The same description travels inside the .tflite, for apps that get the file alone.
        assert read_embedded(thin_tiny / f"petseg_{variant}.tflite")["encoder_width"] == 0.35, variant


@pytest.mark.slow  # one training and export (module fixture, ~40 s)
def test_a_thinner_encoder_exports_on_xnnpack_and_benches_and_predicts(thin_tiny, tmp_path, capsys):
    from PIL import Image

    from petseg.benchmark.cli import main as bench
    from petseg.predict import main as predict
    from petseg.runtime import TFLiteModel

    for variant in ("fp32", "int8"):
        assert TFLiteModel(thin_tiny / f"petseg_{variant}.tflite").outside_delegate() == {}, variant
    files = [str(thin_tiny / f"petseg_{v}.tflite") for v in ("fp32", "int8")]
    assert bench([*files, "--threads", "1", "--runs", "2", "--warmup", "1", "--min-seconds", "0", "--limit",
                  "2", "--json", str(tmp_path / "bench.json")]) == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert {r["model"] for r in rows} == set(files)
    Image.new("RGB", (80, 60), (200, 120, 40)).save(tmp_path / "photo.png")
    capsys.readouterr()
    assert predict([files[1], str(tmp_path / "photo.png"), "-o", str(tmp_path / "masks"), "--json"]) == 0
    assert Image.open(json.loads(capsys.readouterr().out)[0]["mask"]).size == (80, 60)


def test_every_architecture_field_is_one_the_exports_carry():
    from petseg.description import ARCHITECTURE
    from petseg.train.sizes import SIZES

    for size in SIZES.values():
        assert tuple(size.architecture_details()) == ARCHITECTURE, size.name


def test_an_unknown_width_is_refused_in_one_line(capsys, tmp_path):
    from petseg.train.cli import main as train

    code = run_cli(train, ["--encoder-width", "0.6", "--data", "synthetic:4", "--encoder-weights", "none",
                           "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "\n" not in err and "--encoder-width 0.6" in err and "0.35" in err
    assert not (tmp_path / "o").exists()


def test_a_pruned_encoder_trains_under_a_distribution_strategy(pretrained_file, tmp_path):
    # The adaptation runs its own training steps, which cannot update mirrored variables: it must
    # happen outside the strategy's scope (it failed inside with "DistributedVariable.handle").
    from petseg.train.cli import main as train

    out = tmp_path / "mirrored"
    assert train(["--size", "tiny", "--encoder-width", "0.5", "--data", "synthetic:16", "--image-size", "64",
                  "--encoder-weights", pretrained_file, "--reconstruction-epochs", "1", "--epochs", "1",
                  "--batch-size", "8", "--distribute", "mirrored", "--out", str(out)]) == 0
    meta = json.loads((out / "petseg.json").read_text())
    assert meta["encoder_width"] == 0.5 and meta["distribution"]["strategy"] == "MirroredStrategy"
