"""What a user sees: petseg's own lines only; --verbose shows the libraries' chatter as well."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

# What TensorFlow, LiteRT and the converter print on their own (see petseg/quiet.py).
CHATTER = ("cuInit", "cuda", "absl", "oneDNN", "XNNPACK delegate", "fully_quantize", "inference_type",
           "tf.lite.Interpreter", "deprecated", "UserWarning", "cpu_feature_guard")


def run(module: str, *args) -> subprocess.CompletedProcess:
    # TF_CPP_MIN_LOG_LEVEL as a user has it (unset), not as conftest sets it for the in-process tests.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


def assert_quiet(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    for text in (proc.stdout, proc.stderr):
        found = [c for c in CHATTER if c.lower() in text.lower()]
        assert not found, f"{found} in:\n{text[-3000:]}"


@pytest.mark.slow
def test_every_cli_prints_only_its_own_lines(tmp_path):
    models = tmp_path / "models"
    train = run("petseg.train.cli", "--data", "synthetic:12", "--image-size", "64", "--encoder-weights",
                "none", "--epochs", "1", "--batch-size", "8", "--out", models)
    assert_quiet(train)
    assert "test (" in train.stdout and not train.stderr
    # int8 with --max-drop runs the calibration, the per-layer error search and the quantiser.
    export = run("petseg.export.cli", "--model", models / "petseg.keras", "--quantize", "fp32,int8",
                 "--calibration-samples", "4", "--verify-images", "2")
    assert_quiet(export)
    assert "keep-float" in export.stdout or "layers in float" in export.stdout
    bench = run("petseg.benchmark.cli", models / "petseg_int8.tflite", "--runs", "2", "--warmup", "0",
                "--min-seconds", "0")
    assert_quiet(bench)
    photo = tmp_path / "cat.png"
    Image.fromarray(np.full((40, 50, 3), 128, np.uint8)).save(photo)
    for model in ("petseg_int8.tflite", "petseg.keras"):
        predict = run("petseg.predict", models / model, photo, "-o", tmp_path / "out")
        assert_quiet(predict)
        assert "pet " in predict.stdout and not predict.stderr
    verbose = run("petseg.predict", models / "petseg_int8.tflite", photo, "-o", tmp_path / "out", "--verbose")
    assert verbose.returncode == 0 and "XNNPACK delegate" in verbose.stderr


def test_errors_still_reach_the_user_as_one_line(tmp_path):
    proc = run("petseg.predict", tmp_path / "missing.tflite", tmp_path / "missing.jpg")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("petseg-predict: error: ")
