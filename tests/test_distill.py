"""Knowledge distillation (train/distill.py): a trained model's logits teach a smaller one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from petseg.errors import run_cli


def _packed(labels: np.ndarray, teacher: np.ndarray) -> tf.Tensor:
    return tf.constant(np.concatenate([labels[..., None].astype(np.float32), teacher], -1))


def test_the_loss_is_cross_entropy_plus_the_teachers_soft_term():
    import keras

    from petseg.train.distill import DistillationLoss, accuracy

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (2, 4, 4))
    student = rng.normal(0, 2, (2, 4, 4, 3)).astype(np.float32)
    teacher = rng.normal(0, 2, (2, 4, 4, 3)).astype(np.float32)
    hard = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, student)
    # Weight 0: the labels alone, as without a teacher.
    np.testing.assert_allclose(DistillationLoss(0.0)(_packed(labels, teacher), student), hard, rtol=1e-5)
    # A student that already is its teacher pays only the labels' share.
    itself = _packed(labels, student)
    np.testing.assert_allclose(DistillationLoss(0.5)(itself, student), 0.5 * hard, rtol=1e-5)
    # Otherwise the soft term is T^2 KL(teacher || student) at temperature T.
    t = 2.0
    p, q = tf.nn.softmax(teacher / t), tf.nn.softmax(student / t)
    kl = np.mean(np.sum(p * (np.log(p) - np.log(q)), -1))
    soft = DistillationLoss(1.0, t)(_packed(labels, teacher), student)
    np.testing.assert_allclose(soft, t * t * kl, rtol=1e-4)
    got = accuracy(_packed(labels, teacher), student).numpy()
    np.testing.assert_array_equal(got, (student.argmax(-1) == labels).astype(np.float32))


@pytest.mark.slow  # one short training (~30 s)
def test_a_student_trains_with_its_teacher_and_records_it(learned_model, tmp_path):
    from petseg.train.cli import main as train

    out = tmp_path / "student"
    assert train(["--size", "tiny", "--teacher", str(learned_model), "--data", "synthetic:24",
                  "--image-size", "64", "--encoder-weights", "none", "--epochs", "2", "--batch-size", "8",
                  "--out", str(out)]) == 0
    meta = json.loads((out / "petseg.json").read_text())
    assert meta["recipe"]["teacher"] == str(learned_model) and meta["recipe"]["distill_weight"] == 0.5
    history = json.loads((out / "history.json").read_text())
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    assert all(0 <= row["accuracy"] <= 1 for row in history)


def test_a_teacher_at_another_image_size_is_refused_before_training(learned_model, tmp_path, capsys):
    from petseg.train.cli import main as train

    code = run_cli(train, ["--teacher", str(learned_model), "--image-size", "96", "--data", "synthetic:4",
                           "--encoder-weights", "none", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "trained at 64x64" in err and "--image-size 96" in err
    assert not (tmp_path / "o").exists()
