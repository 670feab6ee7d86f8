"""Keras model -> TFLite flatbuffer, one variant at a time, batch fixed to 1."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import convert as _convert

from .decoder import fast_forward, has_petseg_decoder

IO_TYPES = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}


def _converter(model: keras.Model, decoder: str = "winograd") -> tf.lite.TFLiteConverter:
    # A fixed batch of 1 gives every transposed conv a static output shape; with a free batch
    # Keras 3 emits SHAPE/STRIDED_SLICE/PACK ops that keep the model off XNNPACK.
    shape = [1, *model.input_shape[1:]]
    fast = (fast_forward(model, decoder) if decoder != "transpose-conv" and has_petseg_decoder(model)
            else None)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
    def serve(image: tf.Tensor) -> tf.Tensor:
        return fast(image) if fast else model(image, training=False)

    # No trackable object: the converter then freezes the weights into constants instead of
    # emitting VAR_HANDLE/READ_VARIABLE ops that read and transpose them on every inference.
    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])


def _representative(images: np.ndarray) -> callable:
    def gen() -> Iterator[list[np.ndarray]]:
        for image in images:
            yield [image[None].astype(np.float32)]
    return gen


def convert_float(model: keras.Model, variant: str, decoder: str = "winograd") -> bytes:
    """fp32, fp16 (float16 weights) or dynamic (int8 weights, float activations)."""
    converter = _converter(model, decoder)
    if variant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def calibrate(model: keras.Model, images: np.ndarray, decoder: str = "subpixel") -> bytes:
    """A float model carrying activation ranges measured on ``images``.

    Calibrating once lets several quantisations (different layers kept in float)
    be derived without running the calibration set again.
    """
    converter = _converter(model, decoder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(images)
    converter._experimental_calibrate_only = True  # noqa: SLF001 - what QuantizationDebugger does
    return converter.convert()


def quantize_int8(calibrated: bytes, io_type: str = "uint8", keep_float: Sequence[str] = ()) -> bytes:
    """Full-integer int8 from a calibrated model; ``keep_float`` names layers left in float."""
    # The same call TFLiteConverter makes for full-integer int8, plus the layers kept in float.
    return _convert.mlir_quantize(
        calibrated,
        input_data_type=IO_TYPES[io_type],
        output_data_type=IO_TYPES[io_type],
        denylisted_nodes=list(keep_float) or None,
    )


def convert_int16x8(model: keras.Model, images: np.ndarray, decoder: str = "winograd") -> bytes:
    converter = _converter(model, decoder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(images)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return converter.convert()


def convert_int8_plain(model: keras.Model, images: np.ndarray, io_type: str = "uint8",
                       decoder: str = "subpixel") -> bytes:
    """The documented converter call for full-integer int8 (the baseline petseg compares with)."""
    converter = _converter(model, decoder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = IO_TYPES[io_type]
    converter.inference_output_type = IO_TYPES[io_type]
    return converter.convert()
