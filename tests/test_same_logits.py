"""Refactoring guard: every variant computes the logits recorded before the export was restructured.

tests/data/variant_logits.npz holds, per export configuration (variant, quantizer, decoder form,
I/O type), the logits of a fixed seeded model on two fixed images, recorded by ``python
tests/variant_logits.py`` (last on an Intel Xeon, family 6 model 207, 2 cores, after issue 22's
float logits head changed fp32, fp16 and dynamic on purpose: the skip join before it is no longer
concatenated and its sums run on planes, the same function in another summation order; recorded
there before and after, the 16 other configurations came out bit for bit the same, fp32 and
fp16 with every class the same, dynamic with 99.7 %). ``int8`` keeps min..max on these 16
calibration images (too few are left to judge chosen ranges on); ``int8-minmax`` is the earlier
int8. On
the CPU, core count and library versions they were recorded with, they must match bit for bit.

Elsewhere float kernels round differently (AVX2, AVX-512, AMX), and what each variant does with
that differs, so the check does too (figures measured on an Intel Xeon with AVX-512 and AMX
against the then recording's AMD Zen 5, see docs/performance.md):

- FLOAT_EXACT variants compute in float from weights fixed at export: they match the recording
  to float rounding (measured: every class the same, worst logit 0.02 % of the logits' range).
- The others calibrate in float or quantise activations at run time (dynamic): a range one float
  ulp apart moves a quantisation step, so their logits move by whole steps (measured: up to 2.6 %
  of classes and 5.7 % of the range for onnx-int8, 1.5 % / 2.0 % for dynamic), as much as a real
  change would. What holds across CPUs is how close each comes to the Keras model: the share of
  pixels with Keras' class and the mean logit error moved by at most 0.35 points and 3 %.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from variant_logits import CONFIGS, cpu, digest, export_all, keras_logits, seeded_model

GOLDEN = Path(__file__).parent / "data" / "variant_logits.npz"
FLOAT_EXACT = {"fp32", "fp32-subpixel", "fp32-transpose-conv", "fp16", "wi8", "wi4", "onnx"}
# Tolerances on another CPU, each several times the difference measured (above).
SAME_CLASSES = 0.999  # FLOAT_EXACT: share of pixels with the recorded class (measured 1.0)
LOGIT_ERROR = 0.005  # FLOAT_EXACT: worst logit difference / the logits' range (measured 0.0002)
AGREEMENT_POINTS = 1.0  # the others: agreement with Keras, in points of the recorded one (measured 0.35)
KERAS_ERROR = 0.15  # the others: mean logit error against Keras, relative to the recorded one (0.03)


@pytest.mark.slow
def test_every_variant_computes_the_recorded_logits(tmp_path):
    pytest.importorskip("litert_quantizer")
    pytest.importorskip("onnxruntime")
    golden = np.load(GOLDEN)
    model = seeded_model(tmp_path / "seeded.keras")
    figures = export_all(model, tmp_path)
    assert list(figures) == [label for label, _ in CONFIGS]
    if str(golden["cpu"]) == cpu():
        changed = [label for label, logits in figures.items()
                   if digest(logits) != str(golden[f"{label}/digest"])]
        assert not changed, f"these exports compute other logits than recorded on this CPU: {changed}"
        return
    failures = other_cpu_differences(figures, golden, keras_logits(model))
    assert not failures, failures


def other_cpu_differences(figures: dict[str, np.ndarray], golden, keras: np.ndarray) -> dict[str, tuple]:
    """label -> its figures, for each variant outside the tolerances of a CPU other than the recording's."""
    failures = {}
    keras_classes, keras_sampled = np.argmax(keras, axis=-1), keras[:, ::4, ::4]
    spread = float(np.ptp(keras_sampled))
    for label, logits in figures.items():
        classes, sampled = np.argmax(logits, axis=-1), logits[:, ::4, ::4]
        recorded_classes = golden[f"{label}/classes"]
        recorded = golden[f"{label}/sampled"].astype(np.float32)
        if label in FLOAT_EXACT:
            same = float(np.mean(classes == recorded_classes))
            worst = float(np.max(np.abs(sampled - recorded))) / float(np.ptp(sampled))
            if same < SAME_CLASSES or worst > LOGIT_ERROR:
                failures[label] = ("same classes", same, "worst / range", worst)
            continue
        agreement = 100 * float(np.mean(classes == keras_classes))
        was = 100 * float(np.mean(recorded_classes == keras_classes))
        error = float(np.mean(np.abs(sampled - keras_sampled))) / spread
        error_was = float(np.mean(np.abs(recorded - keras_sampled))) / spread
        # The floor covers the float16 the recording keeps its sampled logits in.
        if abs(agreement - was) > AGREEMENT_POINTS or abs(error - error_was) > KERAS_ERROR * error_was + 1e-3:
            failures[label] = ("agreement with Keras", agreement, "recorded", was, "error", error, "was",
                               error_was)
    return failures
