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
        keep, ranges = ([], None) if inputs.fallback.integer_only else self.keep_float(inputs, form)
        corrected = corrects and not keep  # float islands come from the trained model
        return Built(int8_model(inputs, form, corrected, keep, ranges),
                     {"keep_float": keep, "decoder": form, "integer_only": not keep,
                      "bias_correction": corrected_model(inputs, form)[1] if corrected else None,
                      "activation_ranges": ranges_description(inputs, form, corrected, ranges)},
                     reports)

    @staticmethod
    def keep_float(inputs: BuildInputs, form: str) -> tuple[list[str], str | None]:
        """The layers to keep in float (fallback.py's policy): none if every-layer int8 meets the budget,
        and the activation ranges it ships with (None: as --activation-ranges asks).

        A layer kept in float must not carry a correction for int8 rounding it no longer has: on
        the small model that made every float island worse than none. So islands are searched on
        the uncorrected model, against every layer in int8 as it ships (corrected).

        Where every-layer int8 on the chosen ranges misses the budget, every-layer int8 on min..max
        is judged before any layer goes to float: the two are near each other on the held-out
        images, and an all-int8 file within the budget beats float islands (smaller, one delegate,
        integer-only accelerators).
        """
        from .fallback import RANK_IMAGES, choose_layers, judge_model
        from .sensitivity import layer_errors

        @functools.cache
        def ranked() -> list[str]:  # the worst layers first, by the converter's per-layer debugger
            plain = cached_calibration(inputs, form, False)
            return [r["tensor"] for r in layer_errors(plain, inputs.calib[:RANK_IMAGES])]

        corrects, budget = inputs.build.bias_correction, inputs.fallback.budget
        how = " (every layer's rounding fitted and bias-corrected)" if corrects else ""
        chosen: list[str] = []

        def minmax_instead() -> bool:
            if (ranged_calibration(inputs, form, corrects)[1] or {}).get("kept") != "mse":
                return False  # the file judged already was min..max's
            minmax = int8_model(inputs, form, corrects, ranges="minmax")
            verdict = judge_model(minmax, inputs.reference, budget)
            print(f"   0 layers in float, min..max activation ranges: {verdict.line(budget)}{how}")
            if verdict.verdict == "within":
                chosen.append("minmax")
            return bool(chosen)

        keep = choose_layers(ranked, lambda layers: int8_model(inputs, form, False, layers), inputs.fallback,
                             inputs.reference, "in float", note=how,
                             every_layer=lambda: int8_model(inputs, form, corrects), instead=minmax_instead)
        return keep, (chosen[0] if chosen else None)


def int8_model(inputs: BuildInputs, form: str, corrected: bool, keep_float: Sequence[str] = (),
               ranges: str | None = None) -> bytes:
    """The int8 file's bytes, made once per export (judged, then published); ``ranges`` overrides
    --activation-ranges."""
    key = ("int8", form, corrected, inputs.build.io_type, tuple(keep_float), ranges)
    return inputs.cached(key, lambda: quantize_int8(cached_calibration(inputs, form, corrected, ranges),
                                                    inputs.build.io_type, keep_float))


def cached_calibration(inputs: BuildInputs, form: str, corrected: bool, ranges: str | None = None) -> bytes:
    """The float flatbuffer with activation ranges, from the bias-corrected model or the trained one,
    calibrated once per export."""
    return ranged_calibration(inputs, form, corrected, ranges)[0]


def ranged_calibration(inputs: BuildInputs, form: str, corrected: bool,
                       ranges: str | None = None) -> tuple[bytes, dict | None]:
    """The calibrated flatbuffer with the activation ranges ``ranges`` (default: what
    --activation-ranges asks for; activation_ranges.py), and their summary (None: the calibration's
    min..max)."""
    model = corrected_model(inputs, form)[0] if corrected else inputs.model
    minmax = inputs.cached(("calibrated", form, corrected, "minmax"),
                           lambda: (calibrated_flatbuffer(model, inputs.calib, form), None))
    if (ranges or inputs.build.activation_ranges) == "minmax":
        return minmax

    def choose() -> tuple[bytes, dict]:
        from .activation_ranges import RANGE_IMAGES, chosen_ranges, judged

        calibrated = minmax[0]
        ranged, summary = chosen_ranges(calibrated, inputs.calib[:RANGE_IMAGES])
        summary |= judged(calibrated, ranged, inputs.calib,
                          lambda flatbuffer: quantize_int8(flatbuffer, "float32"))
        print(ranges_line(summary, "" if corrected or not inputs.build.bias_correction
                          else " (the fallback search's model)"))
        return (ranged if summary["kept"] == "mse" else calibrated), summary

    return inputs.cached(("calibrated", form, corrected, "mse"), choose)


def ranges_description(inputs: BuildInputs, form: str, corrected: bool, ranges: str | None) -> dict | None:
    """What the description says of the shipped file's activation ranges."""
    summary = ranged_calibration(inputs, form, corrected)[1]
    if summary is None or ranges is None:
        return summary
    return summary | {"kept": ranges, "why": "every layer int8 met the budget on these ranges only"}


def ranges_line(summary: dict, which: str = "") -> str:
    """One line on the chosen activation ranges and the whole-model judgement."""
    from .activation_ranges import MIN_APART

    rmse, judge = summary["logit_rmse"], summary["judged_on"]
    images = f"{judge['images']} calibration images" + ("" if judge["images_apart"] else " (the same)")
    verdict = ("kept" if summary["kept"] == "mse" else
               "not kept: farther from float than the calibration's min..max" if judge["images_apart"] else
               f"not kept: fewer than {MIN_APART} calibration images left to judge them on")
    return (f"int8 activation ranges{which}: {summary['tensors_changed']} of {summary['tensors']} narrowed "
            f"to their least int8 error on {summary['images']} calibration images; {verdict} "
            f"(int8 logit RMSE {rmse['mse']:.4f} against {rmse['minmax']:.4f} for min..max on {images})")


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
