"""A pruned encoder made ready for the U-Net's training: statistics re-estimated, taps reconstructed.

The order matters: the reconstruction trains through the batch norms' inference form, so it needs
statistics that describe the pruned network first; it then changes the kernels, so they are
re-estimated once more.
"""

from __future__ import annotations

import keras
import numpy as np

from .model import (
    ENCODER_INPUT_NAME,
    ENCODER_NAME,
    SCALING_NAME,
    SKIP_LAYERS,
    encoder_of,
    pretrained_mobilenet_v2,
)
from .prune import tap_channels
from .recalibrate import recalibrate_batch_norms
from .reconstruct import reconstruct_taps


def encoder_inputs(unet: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``images`` (0..255) as the U-Net's encoder sees them: scaled, and resized where the size says."""
    names = {layer.name for layer in unet.layers}
    prepare = [unet.get_layer(n) for n in (SCALING_NAME, ENCODER_INPUT_NAME) if n in names]
    seen = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].astype(np.float32)
        for layer in prepare:
            x = layer(x)
        seen.append(np.asarray(x))
    return np.concatenate(seen)


def adapt_pruned_encoder(unet: keras.Model, weights: str, images: np.ndarray, epochs: int,
                         seed: int = 0) -> list[float]:
    """Make ``unet``'s pruned encoder ready on the training ``images``; the reconstruction's error
    per epoch. ``weights`` are the alpha-1.0 encoder's it was pruned from (the teacher)."""
    thin = unet.get_layer(ENCODER_NAME)
    inputs = encoder_inputs(unet, images)
    recalibrate_batch_norms(thin, inputs)
    if not epochs:
        return []
    base = pretrained_mobilenet_v2(thin.input_shape[1], weights)
    kept = tap_channels(base, thin, SKIP_LAYERS)  # the channels prune.py kept, scored alike
    history = reconstruct_taps(encoder_of(base), thin, kept, inputs, epochs, seed=seed)
    recalibrate_batch_norms(thin, inputs)
    return history
