"""The training recipe: everything that decides the trained weights besides the data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Recipe:
    """Everything that decides the trained weights besides the data."""

    epochs: int = 22
    batch_size: int = 64
    learning_rate: float = 1e-3
    fine_tune: bool = True
    max_zoom: float = 1.25
    seed: int = 0
    encoder_weights: str = "imagenet"
