"""The variants the TFLite converter makes: fp32, fp16, dynamic, int8 (full integer) and int16x8.

Every one starts from the same graph: the Keras model, its decoder in the variant's form
(decoder.py), traced at batch 1 with the weights frozen. TensorFlow is imported when a variant
is built, not when this module is, so that petseg-export answers --help and refuses bad input
at once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .variant import BuildInputs, Built, Variant, one_at_a_time

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

def graph_converter(model: keras.Model, decoder: str = "winograd") -> tf.lite.TFLiteConverter:
    """A converter for ``model`` at batch 1, its weights frozen, its decoder in form ``decoder``."""
    import tensorflow as tf

    from .decoder import fast_forward, has_petseg_decoder

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


def representative(images: np.ndarray):
    """The converter's representative_dataset over ``images``."""
    return lambda: ([batch] for batch in one_at_a_time(images))


class FloatVariant(Variant):
    """fp32; fp16 (float16 weights); dynamic (int8 weights, float activations)."""

    def __init__(self, name: str, summary: str, weights: str = "float32") -> None:
        super().__init__(name, summary)
        self.weights = weights  # float32, float16 or int8

    def build(self, inputs: BuildInputs) -> Built:
        form = self.decoder_form(inputs)
        return Built(self.convert(inputs.model, form), {"decoder": form})

    def convert(self, model: keras.Model, form: str) -> bytes:
        import tensorflow as tf

        converter = graph_converter(model, form)
        if self.weights != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if self.weights == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def float_graph(model: keras.Model, form: str) -> bytes:
    """The fp32 flatbuffer (what the LiteRT Quantizer starts from)."""
    return FloatVariant("fp32", "").convert(model, form)


class Int8Variant(Variant):
    """Full-integer int8 from one calibration of the bias-corrected model (bias_correction.py).

    Every layer is int8 unless the budget is missed: then the fallback policy (fallback.py) may keep
    the fewest worst layers in float, as a last resort, and says so (--integer-only forbids it).

    int8 stays sub-pixel on --decoder auto because XNNPACK declines int8 ADD/SUB whose input
    and output scales differ too much: on a briefly trained model 25 of Winograd's sums left
    the delegate.
    """

    calibrated = True
    auto_decoder = "subpixel"

    def build(self, inputs: BuildInputs) -> Built:
        form, corrects = self.decoder_form(inputs), inputs.build.bias_correction
        reports = {}
        if inputs.build.report:
            from .sensitivity import layer_report

            reports["int8_layer_report.csv"] = layer_report(cached_calibration(inputs, form, corrects),
                                                            inputs.calib)
        keep = [] if inputs.fallback.integer_only else self.keep_float(inputs, form)
        corrected = corrects and not keep  # float islands come from the trained model
        return Built(int8_model(inputs, form, corrected, keep),
                     {"keep_float": keep, "decoder": form, "integer_only": not keep,
                      "bias_correction": corrected_model(inputs, form)[1] if corrected else None,
                      "activation_ranges": ranged_calibration(inputs, form, corrected)[1]},
                     reports)

    @staticmethod
    def keep_float(inputs: BuildInputs, form: str) -> list[str]:
        """The layers to keep in float (fallback.py's policy): none if every-layer int8 meets the budget.

        A layer kept in float must not carry a correction for int8 rounding it no longer has: on
        the small model that made every float island worse than none. So islands are searched on
        the uncorrected model, against every layer in int8 as it ships (corrected).
        """
        from .fallback import RANK_IMAGES, choose_layers
        from .sensitivity import layer_errors

        @functools.cache
        def ranked() -> list[str]:  # the worst layers first, by the converter's per-layer debugger
            plain = cached_calibration(inputs, form, False)
            return [r["tensor"] for r in layer_errors(plain, inputs.calib[:RANK_IMAGES])]

        corrects = inputs.build.bias_correction
        how = " (every layer's rounding fitted and bias-corrected)" if corrects else ""
        return choose_layers(ranked, lambda layers: int8_model(inputs, form, False, layers), inputs.fallback,
                             inputs.reference, "in float", note=how,
                             every_layer=lambda: int8_model(inputs, form, corrects))


def int8_model(inputs: BuildInputs, form: str, corrected: bool, keep_float: Sequence[str] = ()) -> bytes:
    """The int8 file's bytes, made once per export (judged, then published)."""
    key = ("int8", form, corrected, inputs.build.io_type, tuple(keep_float))
    return inputs.cached(key, lambda: quantize_int8(cached_calibration(inputs, form, corrected),
                                                    inputs.build.io_type, keep_float))


def cached_calibration(inputs: BuildInputs, form: str, corrected: bool) -> bytes:
    """The float flatbuffer with activation ranges, from the bias-corrected model or the trained one,
    calibrated once per export."""
    return ranged_calibration(inputs, form, corrected)[0]


def ranged_calibration(inputs: BuildInputs, form: str, corrected: bool) -> tuple[bytes, dict | None]:
    """The calibrated flatbuffer with the activation ranges --activation-ranges asks for
    (activation_ranges.py), and their summary (None: the calibration's min..max)."""
    model = corrected_model(inputs, form)[0] if corrected else inputs.model

    def calibrate() -> tuple[bytes, dict | None]:
        calibrated = calibrated_flatbuffer(model, inputs.calib, form)
        if inputs.build.activation_ranges == "minmax":
            return calibrated, None
        from .activation_ranges import RANGE_IMAGES, chosen_ranges

        return chosen_ranges(calibrated, inputs.calib[:RANGE_IMAGES])

    return inputs.cached(("calibrated", form, corrected), calibrate)


def corrected_model(inputs: BuildInputs, form: str) -> tuple[keras.Model, dict | None]:
    """The model int8 is calibrated from: bias-corrected for ``form`` unless --no-bias-correction."""
    if not inputs.build.bias_correction:
        return inputs.model, None

    def correct() -> tuple[keras.Model, dict]:
        from .bias_correction import CORRECTION_IMAGES, corrected_for_int8

        return corrected_for_int8(inputs.model, inputs.calib[:CORRECTION_IMAGES], form)

    return inputs.cached(("bias-corrected", form), correct)


def calibrated_flatbuffer(model: keras.Model, images: np.ndarray, decoder: str = "subpixel") -> bytes:
    """The float flatbuffer of ``model``, carrying activation ranges measured on ``images``.

    Calibrating once lets several quantisations (different layers kept in float)
    be derived without running the calibration set again.
    """
    import tensorflow as tf

    converter = graph_converter(model, decoder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(images)
    converter._experimental_calibrate_only = True  # noqa: SLF001 - what QuantizationDebugger does
    return converter.convert()


def quantize_int8(calibrated: bytes, io_type: str = "uint8", keep_float: Sequence[str] = ()) -> bytes:
    """Full-integer int8 from a calibrated model; ``keep_float`` names layers left in float."""
    import tensorflow as tf
    from tensorflow.lite.python import convert

    dtype = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}[io_type]
    # The same call TFLiteConverter makes for full-integer int8, plus the layers kept in float.
    return convert.mlir_quantize(calibrated, input_data_type=dtype, output_data_type=dtype,
                                 denylisted_nodes=list(keep_float) or None)


class Int16x8Variant(Variant):
    """The converter's int16 activations with int8 weights (--quantizer converter)."""

    calibrated = True

    def decoder_form(self, inputs: BuildInputs) -> str:
        return "transpose-conv"  # the 16x8 quantiser has no DEPTH_TO_SPACE

    def build(self, inputs: BuildInputs) -> Built:
        import tensorflow as tf

        form = self.decoder_form(inputs)
        converter = graph_converter(inputs.model, form)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative(inputs.calib)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        return Built(converter.convert(), {"decoder": form})
