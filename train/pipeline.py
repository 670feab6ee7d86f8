"""The tf.data input pipeline: cache, shuffle, augment, batch, prefetch."""

from __future__ import annotations

import os

import tensorflow as tf

from petseg.split import Split

# Class ids leave the pipeline as int32, not uint8: under MultiWorkerMirroredStrategy Keras reduces a
# batch across workers to build the model, and the cross-worker collectives carry no uint8.
CLASS_DTYPE = tf.int32


def augment(image: tf.Tensor, mask: tf.Tensor, size: int, max_zoom: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Flip, zoom-and-crop and colour jitter, applied identically to image and mask."""
    image = tf.cast(image, tf.float32)
    mask = tf.cast(mask[..., None], tf.float32)
    flip = tf.random.uniform(()) < 0.5
    image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
    mask = tf.cond(flip, lambda: tf.image.flip_left_right(mask), lambda: mask)
    if max_zoom > 1.0:
        scaled = tf.cast(tf.cast(size, tf.float32) * tf.random.uniform((), 1.0, max_zoom), tf.int32)
        image = tf.image.resize(image, (scaled, scaled), method="bilinear")
        mask = tf.image.resize(mask, (scaled, scaled), method="nearest")
        offset = tf.random.uniform((2,), 0, scaled - size + 1, dtype=tf.int32)
        image = tf.slice(image, [offset[0], offset[1], 0], [size, size, 3])
        mask = tf.slice(mask, [offset[0], offset[1], 0], [size, size, 1])
    image = tf.image.random_brightness(image, 25.0)
    image = tf.image.random_contrast(image, 0.8, 1.2)
    image = tf.image.random_saturation(image, 0.8, 1.2)
    return tf.clip_by_value(image, 0.0, 255.0), tf.cast(mask[..., 0], CLASS_DTYPE)


PARALLEL_CALLS = min(4, os.cpu_count() or 1)  # augmentation threads; the autotuner is off (below)


def _fixed_threads(ds: tf.data.Dataset) -> tf.data.Dataset:
    # Keras makes a new iterator every epoch, and destroying one joins tf.data's autotuning thread,
    # which may be mid-sleep: measured here, that left both cores idle for up to 15 s in about half
    # the epochs (24 s -> 40 s). Fixed parallelism needs no autotuner, and every epoch takes 24 s.
    options = tf.data.Options()
    options.autotune.enabled = False
    # In-memory data has no files to split between workers: each one keeps its share of every batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def partial_batch_padding(count: int, batch_size: int, replicas: int) -> int:
    """How many blank images fill the last batch of ``count`` up to ``batch_size`` (0 on one replica).

    Under MultiWorkerMirroredStrategy every replica must see batches of one shape (a partial last
    batch split 2/1 between two workers fails a collective with "Shape mismatch"), so the last
    batch is filled with blank images of weight 0: each image is still seen once per epoch and
    the blanks change no gradient and no weighted metric. One device needs none.
    """
    return (-count) % batch_size if replicas > 1 else 0


def _padded(ds: tf.data.Dataset, pad: int, size: int) -> tf.data.Dataset:
    """(image, mask) -> (image, mask, weight 1), then ``pad`` blanks of weight 0 at the end.

    The weights are per pixel, the shape of the mask: Keras' loss multiplies them pixel by pixel.
    """
    if not pad:
        return ds
    blank = (tf.zeros((size, size, 3), tf.float32), tf.zeros((size, size), CLASS_DTYPE),
             tf.zeros((size, size), tf.float32))
    return ds.map(lambda x, y: (x, y, tf.ones((size, size), tf.float32))).concatenate(
        tf.data.Dataset.from_tensors(blank).repeat(pad))


def training_dataset(split: Split, batch_size: int, seed: int, max_zoom: float = 1.25,
                     pad: int = 0) -> tf.data.Dataset:
    """Shuffled, augmented batches; ``pad`` blanks (partial_batch_padding) end the last one."""
    size = split.images.shape[1]
    ds = tf.data.Dataset.from_tensor_slices((split.images, split.masks)).cache()
    ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda x, y: augment(x, y, size, max_zoom), num_parallel_calls=PARALLEL_CALLS)
    return _fixed_threads(_padded(ds, pad, size).batch(batch_size).prefetch(2))


def eval_dataset(split: Split, batch_size: int, pad: int = 0) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((split.images, split.masks)).cache()
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, CLASS_DTYPE)))
    return _fixed_threads(_padded(ds, pad, split.images.shape[1]).batch(batch_size).prefetch(2))
