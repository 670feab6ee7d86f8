"""What a variant is: one object that builds its file's bytes, and what its description records.

Adding a variant is adding one such object to the table in variants.py. The object owns what is
particular to it: the decoder form it is converted with, calibration, converter or quantizer
settings, the fallback search. The pipeline gives every variant the same inputs (BuildInputs:
the model, the images and the settings groups of settings.py) and verifies and publishes whatever
it builds the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

    from petseg.description import Description

    from .settings import Build, Fallback
    from .verify import Reference


@dataclass
class BuildInputs:
    """The same for every variant of one export: the model, calibration images, held-out reference."""

    model: keras.Model
    calib: np.ndarray  # training images, uint8 (N, S, S, 3)
    reference: Reference  # validation images and the Keras model's own predictions on them
    build: Build  # how graphs are made: decoder form, int8 ends, bias correction, reports
    fallback: Fallback  # the budget and what may fall back to meet it
    _cache: dict = field(default_factory=dict)

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once per export, e.g. the calibration every int8 quantisation starts from."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


@dataclass
class Built:
    model: bytes  # the file's content
    details: dict = field(default_factory=dict)  # what the variant's description adds (decoder, fallback...)
    # Reports beside the model (file name -> text), published with it or not at all (--report).
    reports: dict[str, str] = field(default_factory=dict)


class Variant:
    """One export variant. Subclasses set the attributes and implement ``build``."""

    name: str
    summary: str
    calibrated: bool = False  # whether it needs the representative (calibration) images
    auto_decoder: str = "winograd"  # decoder form for --decoder auto (decoder.py)

    def __init__(self, name: str, summary: str) -> None:
        self.name, self.summary = name, summary

    # What every TFLite variant gets after building, for apps (signature.py, tflite_metadata.py);
    # neither changes an op, which the pipeline checks on the final bytes.
    def with_signature(self, model: bytes) -> bytes:
        """``model`` with the serving signature LiteRT's signature runner and AEQ address it by."""
        from .signature import add_serving_signature

        return add_serving_signature(model)

    @property
    def signature(self) -> dict | None:
        """The signature ``with_signature`` adds, as the description records it."""
        from .signature import INPUT_NAME, OUTPUT_NAME, SIGNATURE_KEY

        return {"key": SIGNATURE_KEY, "inputs": [INPUT_NAME], "outputs": [OUTPUT_NAME]}

    def with_metadata(self, model: bytes, description: Description) -> bytes:
        """``model`` carrying TFLite metadata for MediaPipe Tasks, and ``description`` inside."""
        from . import tflite_metadata

        return tflite_metadata.embed(model, description)

    def decoder_form(self, inputs: BuildInputs) -> str:
        """The decoder form to convert with; every form computes the same numbers (decoder.py)."""
        from .decoder import has_petseg_decoder

        if not has_petseg_decoder(inputs.model):
            return "transpose-conv"
        return self.auto_decoder if inputs.build.decoder == "auto" else inputs.build.decoder

    def build(self, inputs: BuildInputs) -> Built:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def one_at_a_time(images: np.ndarray) -> Iterator[np.ndarray]:
    """Calibration feeds: each image as a float32 batch of one, as the exported models take it."""
    for image in images:
        yield image[None].astype(np.float32)
