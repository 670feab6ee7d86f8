"""The model's own resident memory, after loading and after the first inference: never 0, and more
for a larger model. Measured in the bench's child process, the way petseg-bench measures it."""

from __future__ import annotations

import pytest

from petseg.benchmark.measure import run_worker


@pytest.fixture(scope="module")
def unet(tiny_model, tmp_path_factory):
    """The seed U-Net in fp32: 40 MB of weights."""
    from petseg.export.cli import main

    out = tmp_path_factory.mktemp("memory")
    assert main(["--model", str(tiny_model), "--quantize", "fp32", "--out", str(out),
                 "--calibration-samples", "4", "--verify-images", "2", "--max-drop", "off"]) == 0
    return out / "petseg_fp32.tflite"


def test_a_larger_model_reads_more_resident_memory(unet, tiny_tflite, tmp_path):
    conv = tmp_path / "conv.tflite"  # one 3x3 convolution: a kilobyte of weights
    conv.write_bytes(tiny_tflite())
    small, large = (run_worker(p, 1, 0, 1, 0.0, None).latency for p in (conv, unet))
    for figures in (small, large):
        assert figures["memory_load_mb"] > 0 and figures["memory_first_mb"] > 0, figures
        assert figures["memory_first_mb"] >= figures["memory_load_mb"] * 0.9
    # The U-Net's weights alone are 40 MB: loading it must add at least most of that.
    weights_mb = unet.stat().st_size / 2**20
    assert large["memory_load_mb"] - small["memory_load_mb"] > 0.5 * weights_mb, (small, large)
    assert large["memory_first_mb"] > small["memory_first_mb"]
