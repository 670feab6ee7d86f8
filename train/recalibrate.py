"""Batch-norm statistics re-estimated on the training images, after pruning changed every input.

A pruned layer sums over fewer channels than its pretrained batch norm's statistics were measured
on, so its moving mean and variance no longer describe what it sees. Running the network once in
training mode over the training images (each batch norm normalising with its batch's statistics,
the ones before it already corrected) and keeping those statistics as the moving ones puts them
right; the weights are untouched.
"""

from __future__ import annotations

import keras
import numpy as np


def batch_norms(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every batch norm in ``model``, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(batch_norms(layer))
    return found


def recalibrate_batch_norms(model: keras.Model, inputs: np.ndarray, batch_size: int = 64) -> None:
    """Set every moving mean and variance of ``model`` to the mean over ``inputs``' batches of its
    batch statistics (model inputs, in the units ``model`` takes)."""
    norms = batch_norms(model)
    saved = [(layer.trainable, layer.momentum) for layer in norms]
    try:
        for step, start in enumerate(range(0, len(inputs), batch_size)):
            for layer in norms:
                # moving = moving * m + batch * (1 - m): m = k / (k + 1) keeps the running mean
                # of the k + 1 batches so far (m = 0 first: the old statistics go).
                layer.trainable, layer.momentum = True, step / (step + 1)
            model(inputs[start:start + batch_size], training=True)
    finally:
        for layer, (trainable, momentum) in zip(norms, saved):
            layer.trainable, layer.momentum = trainable, momentum

