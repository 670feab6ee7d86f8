"""Knowledge distillation: a trained petseg model teaches a smaller one on the training images.

The teacher's logits on each augmented batch travel with the labels, packed into one target
tensor (class id in channel 0, teacher logits after it), so the student stays a plain Keras
model: the loss unpacks them. The loss is ``(1 - w) * cross-entropy(labels) + w * T^2 *
KL(teacher || student)`` at temperature T, per pixel (Hinton et al.'s form; T^2 keeps the soft
term's gradients at the hard term's scale).
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from petseg.errors import PetsegError


@keras.saving.register_keras_serializable(package="petseg")
class DistillationLoss(keras.losses.Loss):
    def __init__(self, weight: float = 0.5, temperature: float = 2.0, name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight, self.temperature = weight, temperature

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        labels, teacher = tf.cast(y_true[..., 0], tf.int32), y_true[..., 1:]
        hard = keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=True)
        t = self.temperature
        p_teacher = tf.nn.softmax(teacher / t)
        kl = tf.reduce_sum(p_teacher * (tf.nn.log_softmax(teacher / t) - tf.nn.log_softmax(y_pred / t)), -1)
        return (1 - self.weight) * hard + self.weight * t * t * kl

    def get_config(self) -> dict:
        return {**super().get_config(), "weight": self.weight, "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="petseg", name="accuracy")
def accuracy(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Pixel accuracy against the packed target's labels (named as Keras' own, for the history)."""
    labels = tf.cast(y_true[..., 0], tf.int64)
    return tf.cast(tf.equal(tf.argmax(y_pred, -1), labels), tf.float32)


def load_teacher(path: Path, image_size: int) -> keras.Model:
    """The trained model at ``path``, frozen; a one-line error if it cannot teach at ``image_size``."""
    from petseg.export.trained_model import load_keras_model

    path = Path(path)
    if not path.is_file():
        raise PetsegError(f"--teacher {path}: no such file; pass a petseg.keras that petseg-train wrote")
    teacher = load_keras_model(path)
    expected = (None, image_size, image_size)
    if tuple(teacher.input_shape[:3]) != expected or teacher.output_shape[:3] != expected:
        raise PetsegError(f"--teacher {path} takes {teacher.input_shape[1]}x{teacher.input_shape[2]} images "
                          f"and this training {image_size}x{image_size}; train the teacher at "
                          f"--image-size {image_size}")
    teacher.trainable = False
    return teacher


def with_teacher(ds: tf.data.Dataset, teacher: keras.Model) -> tf.data.Dataset:
    """Batches of (image, label[, weight]) -> (image, label and the teacher's logits[, weight])."""

    def pack(x: tf.Tensor, y: tf.Tensor, *weight: tf.Tensor) -> tuple:
        logits = tf.cast(teacher(x, training=False), tf.float32)
        return (x, tf.concat([tf.cast(y, tf.float32)[..., None], logits], -1), *weight)

    return ds.map(pack)
