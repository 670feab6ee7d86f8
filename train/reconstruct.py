"""Feature reconstruction: the pruned encoder learns back what its kept channels computed.

Pruning (prune.py) drops channels the kept ones were summing over, so even the kept channels'
activations drift from the pretrained network's. Before the U-Net trains, the thin encoder is
trained to reproduce, at the five taps the decoder reads, the alpha-1.0 encoder's activations in
the same channels, on augmented training images: labels are not needed, and the pretrained
network teaches on every pixel (the layer-wise reconstruction of channel-pruning methods, applied
to the taps at once).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _augmented(images: tf.Tensor, rng: tf.random.Generator) -> tf.Tensor:
    """Random flips and a random zoom-and-crop of up to 1.25x: the segmentation training's own."""
    side = images.shape[1]
    flip = rng.uniform((tf.shape(images)[0], 1, 1, 1)) < 0.5
    images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    scaled = tf.cast(side * rng.uniform((), 1.0, 1.25), tf.int32)
    images = tf.image.resize(images, (scaled, scaled))
    offset = rng.uniform((2,), 0, scaled - side + 1, dtype=tf.int32)
    return images[:, offset[0]:offset[0] + side, offset[1]:offset[1] + side]


def reconstruct_taps(full: keras.Model, thin: keras.Model, kept: list[np.ndarray], inputs: np.ndarray,
                     epochs: int, batch_size: int = 32, learning_rate: float = 1e-3,
                     seed: int = 0) -> list[float]:
    """Train ``thin``'s weights so that its taps match ``full``'s taps' ``kept`` channels, each
    tap's squared error in units of its target's variance; the mean error of each epoch.

    ``inputs`` are encoder inputs ([-1, 1]); both encoders return their taps as a list. Batch
    norms keep their statistics (re-estimate them afterwards, recalibrate.py).
    """
    kept = [tf.constant(k, tf.int32) for k in kept]
    # One variance per tap, from the unaugmented images: the taps' scales differ by orders of
    # magnitude, and each should count alike.
    probe = full(inputs[:batch_size], training=False)
    scales = [1.0 / (float(tf.math.reduce_variance(tf.gather(t, k, axis=-1))) + 1e-6)
              for t, k in zip(probe, kept)]
    steps = epochs * int(np.ceil(len(inputs) / batch_size))
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps))
    rng = tf.random.Generator.from_seed(seed)
    # The conv kernels learn, whatever the layers' trainable flags (the encoder may be frozen for
    # the segmentation training); batch norms keep theirs.
    convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    variables = [w for layer in thin.layers if isinstance(layer, convs) for w in layer.weights]

    @tf.function
    def step(batch: tf.Tensor) -> tf.Tensor:
        batch = _augmented(batch, rng)
        targets = [tf.gather(t, k, axis=-1) for t, k in zip(full(batch, training=False), kept)]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([v.value for v in variables])
            got = thin(batch, training=False)
            loss = tf.add_n([s * tf.reduce_mean(tf.square(g - t)) for s, g, t in zip(scales, got, targets)])
            loss = loss / len(kept)
        grads = tape.gradient(loss, [v.value for v in variables])
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    order = np.random.default_rng(seed)
    history = []
    for _ in range(epochs):
        losses = [float(step(tf.constant(inputs[idx])))
                  for idx in np.array_split(order.permutation(len(inputs)),
                                            max(1, len(inputs) // batch_size))]
        history.append(float(np.mean(losses)))
    return history
