"""The model and petseg-train on synthetic data: shapes, artifacts, resume (distribution: test_distribute)."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from petseg.train.model import SKIP_LAYERS, build_unet


def test_unet_maps_raw_pixels_to_per_pixel_logits():
    model = build_unet(64, "none")
    assert model.input_shape == (None, 64, 64, 3)
    assert model.output_shape == (None, 64, 64, 3)
    encoder = model.get_layer("encoder")
    assert len(encoder.outputs) == len(SKIP_LAYERS)
    assert not encoder.trainable  # frozen by default
    assert build_unet(64, "none", fine_tune=True).get_layer("encoder").trainable


def test_rescaling_inside_the_model_takes_camera_bytes():
    model = build_unet(64, "none")
    scale = model.get_layer("to_minus1_1")
    out = np.asarray(scale(np.array([0.0, 127.5, 255.0], np.float32)))
    assert out.tolist() == pytest.approx([-1.0, 0.0, 1.0])


def test_shared_encoder_weights_load(shared_weights):
    import h5py

    encoder = build_unet(128, str(shared_weights)).get_layer("encoder")
    with h5py.File(shared_weights, "r") as f:
        stored = []
        f.visititems(lambda name, obj: stored.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    # The first and the last convolution hold exactly the file's values (random ones would not).
    for layer in ("Conv1", "block_16_project"):
        kernel = np.asarray(encoder.get_layer(layer).kernel)
        same_shape = [w for w in stored if w.shape == kernel.shape]
        assert len(same_shape) == 1 and np.array_equal(kernel, same_shape[0]), layer


def test_training_writes_every_artifact(learned_model):
    from petseg.dataset import load_dataset
    from petseg.export.trained_model import load_keras_model
    from petseg.train.evaluate import evaluate

    out = learned_model.parent
    meta = json.loads((out / "petseg.json").read_text())
    assert meta["classes"] == ["pet", "background", "border"]
    assert meta["image_size"] == 64 and meta["epochs_run"] == 4
    assert meta["data"]["counts"] == {"train": 22, "val": 2, "test": 8}
    assert meta["versions"]["tensorflow"]
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3, 4] and "val_loss" in history[0]
    # The model written is the epoch with the best validation loss, and the recorded test scores
    # are that file's.
    assert meta["best_epoch"] == min(history, key=lambda row: row["val_loss"])["epoch"]
    test = load_dataset("synthetic:24", 64, splits=("test",))["test"]
    scored = evaluate(load_keras_model(learned_model), test)
    for key in ("pixel_accuracy", "mean_iou"):
        assert meta["metrics"]["test"][key] == pytest.approx(scored[key], abs=1e-6), key
    assert (out / "training_curves.png").stat().st_size > 1000
    assert not (out / ".checkpoints").exists()
    assert not list(out.glob(".*partial*"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((out / "petseg.keras").stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_resume_continues_after_the_last_complete_epoch(tmp_path):
    from petseg.train import checkpoint
    from petseg.train.cli import main

    args = ["--data", "synthetic:16", "--image-size", "64", "--encoder-weights", "none",
            "--batch-size", "8", "--out", str(tmp_path)]
    # An interrupted run: stop after epoch 1 by making epoch 2's checkpoint write fail.
    calls = {"n": 0}
    original = checkpoint.EpochCheckpoint.on_epoch_end

    def crash_on_second(self, epoch, logs=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        original(self, epoch, logs)

    checkpoint.EpochCheckpoint.on_epoch_end = crash_on_second
    try:
        with pytest.raises(KeyboardInterrupt):
            main([*args, "--epochs", "3"])
    finally:
        checkpoint.EpochCheckpoint.on_epoch_end = original
    assert json.loads((tmp_path / ".checkpoints" / "state.json").read_text())["epoch"] == 1
    assert main([*args, "--epochs", "3", "--resume"]) == 0
    history = json.loads((tmp_path / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert json.loads((tmp_path / "petseg.json").read_text())["epochs_run"] == 3


def _tiny_keras_model():
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="adam", loss="mse")
    return model


def test_checkpoint_names_the_best_epoch_without_saving_twice(tmp_path):
    from petseg.train.checkpoint import EpochCheckpoint, load_state

    ckpt = EpochCheckpoint(tmp_path)
    ckpt.set_model(_tiny_keras_model())
    (tmp_path / "best_2.keras").write_text("left by a run killed before state.json")
    for epoch, val_loss in enumerate([1.0, 0.5, 0.7]):
        ckpt.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
        state = load_state(tmp_path)
        last, best = tmp_path / state["last"], tmp_path / state["best"]
        if epoch < 2:  # an improving epoch: best is the epoch's own checkpoint under a second name
            assert best.name == f"best_{epoch + 1}.keras" and os.path.samefile(best, last)
    assert state["best"] == "best_2.keras" and state["last"] == "epoch_3.keras" and state["best_epoch"] == 2
    assert not os.path.samefile(best, last)
    assert sorted(p.name for p in tmp_path.glob("*.keras")) == ["best_2.keras", "epoch_3.keras"]


def test_a_checkpoint_from_before_best_epoch_was_recorded_resumes(tmp_path):
    # The best epoch comes from the history's validation losses, never from a file name.
    from petseg.train.checkpoint import STATE, load_state

    (tmp_path / "epoch_3.keras").write_text("model")
    history = [{"epoch": 1, "loss": 1.0, "val_loss": 0.9}, {"epoch": 2, "loss": 0.8, "val_loss": 0.6},
               {"epoch": 3, "loss": 0.7, "val_loss": 0.6}]
    (tmp_path / STATE).write_text(json.dumps({"epoch": 3, "history": history, "best_val_loss": 0.6,
                                              "best": "best_2.keras", "last": "epoch_3.keras"}))
    assert load_state(tmp_path)["best_epoch"] == 2


def test_input_pipelines_run_without_the_autotuner():
    # tf.data's autotuner made Keras wait up to 15 s at every epoch's end (see pipeline.py).
    from petseg.dataset import load_dataset
    from petseg.train.pipeline import eval_dataset, training_dataset

    data = load_dataset("synthetic:16", 32, val_fraction=0.25, seed=0)
    for ds in (training_dataset(data["train"], 4, seed=0), eval_dataset(data["val"], 4)):
        assert ds.options().autotune.enabled is False
        images, masks = next(iter(ds))
        assert images.shape[1:] == (32, 32, 3) and masks.shape[1:] == (32, 32)


def test_training_from_scratch_learns_to_find_the_pets(learned_model):
    # No pretrained encoder: its batch norms must learn the data's statistics in a short run
    # (16 steps of 4 images here).
    from petseg.dataset import load_dataset
    from petseg.export.trained_model import load_keras_model
    from petseg.metrics import confusion, scores
    from petseg.train.evaluate import predict_classes

    test = load_dataset("synthetic:24", 64, splits=("test",))["test"]
    pred = predict_classes(load_keras_model(learned_model), test.images)
    truth_pet, pred_pet = np.mean(test.masks == 0), np.mean(pred == 0)
    assert pred_pet > truth_pet / 2  # it finds pets, not background everywhere
    only_background = scores(confusion(test.masks, np.ones_like(test.masks)))["mean_iou"]
    assert scores(confusion(test.masks, pred))["mean_iou"] > only_background + 0.15
    recipe = json.loads(learned_model.with_suffix(".json").read_text())["recipe"]
    assert recipe["train_encoder_bn"] is True and recipe["bn_momentum"] < 0.99
