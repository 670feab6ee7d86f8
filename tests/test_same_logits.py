"""Refactoring guard: every variant computes the logits recorded before the export was restructured.

tests/data/variant_logits.npz holds, per export configuration (variant, quantizer, decoder form,
I/O type), the logits of a fixed seeded model on two fixed images, recorded with the previous
code by ``python tests/variant_logits.py``. On the CPU, core count and library versions they were
recorded with, they must match bit for bit. Float kernels differ between CPUs (AVX2 against
AVX-512) and library versions, and calibration runs in float, so elsewhere the check is that
every pixel's class and logits match within what those rounding differences can move.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from variant_logits import CONFIGS, cpu, digest, export_all, seeded_model

GOLDEN = Path(__file__).parent / "data" / "variant_logits.npz"


@pytest.mark.slow
def test_every_variant_computes_the_recorded_logits(tmp_path):
    pytest.importorskip("ai_edge_quantizer")
    pytest.importorskip("onnxruntime")
    golden = np.load(GOLDEN)
    figures = export_all(seeded_model(tmp_path / "seeded.keras"), tmp_path)
    assert list(figures) == [label for label, _ in CONFIGS]
    if str(golden["cpu"]) == cpu():
        changed = [label for label, logits in figures.items()
                   if digest(logits) != str(golden[f"{label}/digest"])]
        assert not changed, f"these exports compute other logits than {golden['recorded_with']}: {changed}"
        return
    for label, logits in figures.items():
        classes = np.argmax(logits, axis=-1)
        same = np.mean(classes == golden[f"{label}/classes"])
        sampled = logits[:, ::4, ::4]
        spread = float(np.ptp(sampled))
        worst = float(np.max(np.abs(sampled - golden[f"{label}/sampled"].astype(np.float32))))
        assert same >= 0.99 and worst <= 0.02 * spread, (label, same, worst / spread)
