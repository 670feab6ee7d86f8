"""One split of a dataset: images, their class-id masks and names (what every reader returns)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Split:
    images: np.ndarray  # (N, S, S, 3) uint8 RGB
    masks: np.ndarray  # (N, S, S) uint8 class ids
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def take(self, index: np.ndarray | list[int]) -> Split:
        index = np.asarray(index, dtype=np.int64)
        return Split(self.images[index], self.masks[index], [self.names[i] for i in index])
