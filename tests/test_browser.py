"""The default exports in the browser's runtimes (issue 21): MediaPipe Tasks web on its CPU and GPU
delegates and LiteRT.js on wasm and WebGPU, in headless Chromium, against LiteRT in Python.

Skips with one line where Node.js, web/node_modules (`make browser-deps`) or Chromium (`make
gpu-deps`) is absent. Without a GPU, WebGL and WebGPU run on SwiftShader, which runs the real
delegate code slowly: one model, a few images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bench import NO_TF

from petseg.benchmark import web_clients
from petseg.benchmark.web_clients import CLIENTS, missing, one_line

VARIANTS = ("fp32", "fp16", "int8")
IMAGES = 4


@pytest.fixture(scope="module")
def browser():
    why = missing()
    if why:
        pytest.skip(f"no browser check here: {why}")


@pytest.fixture(scope="module")
def exports(browser, tmp_path_factory) -> Path:
    """learned_model's recipe at 128x128, petseg's default size, exported with the defaults.

    At 64x64 MediaPipe web's GPU delegate refuses the seed's float exports ("Used ::B, but this
    tensor don't have Batch dimension"); at 128 it runs them: the check runs what apps get.
    """
    return _trained_exports(tmp_path_factory.mktemp("browser_model"), "seed")


def _trained_exports(out: Path, size: str, epochs: int = 4) -> Path:
    from petseg.export.cli import main as export
    from petseg.train.cli import main as train

    assert train(["--size", size, "--data", "synthetic:24", "--image-size", "128", "--encoder-weights",
                  "none", "--epochs", str(epochs), "--batch-size", "4", "--learning-rate", "3e-3",
                  "--out", str(out)]) == 0
    assert export(["--model", str(out / "petseg.keras"), "--quantize", ",".join(VARIANTS),
                   "--calibration-samples", "8", "--verify-images", "4", "--max-drop", "off"]) == 0
    return out


@pytest.fixture(scope="module")
def checked(exports, tmp_path_factory):
    """One run of the check's command line on the three default exports, with TensorFlow blocked."""
    out = tmp_path_factory.mktemp("browser")
    (out / "sitecustomize.py").write_text(NO_TF)
    env = {**os.environ, "PYTHONPATH": str(out)}
    proc = subprocess.run([sys.executable, "-m", "petseg.benchmark.browser", str(exports),
                           "--images", str(IMAGES), "--json", str(out / "b.json")],
                          capture_output=True, text=True, env=env, timeout=1800)
    rows = json.loads((out / "b.json").read_text())["results"] if (out / "b.json").is_file() else []
    return proc, rows


# What each run must reach on this briefly trained model, against the same file on LiteRT's CPU.
# The CPU clients run the same XNNPACK kernels. A GPU rounds differently (fp16 allowed), and on
# four images of a model this weak that moved 0.2-0.5 % of fp32's pixels from one training to
# the next (the 99.5 % goal is for a trained model: make browser-check). The broken
# arrangements failed outright or agreed on 56-76 % (uint8 input on MediaPipe's GPU).
#
# A GPU computes int8 in float from its dequantized weights, without int8's activation rounding,
# so the pixels int8's rounding decides can go either way there: its disagreement with the int8
# file's CPU run follows int8's own disagreement with fp32 on the same images. Measured on two
# 12-epoch small models (Intel model 167, 8 images): GPU int8 against CPU int8 0.93 % and 0.80 %
# of the pixels, CPU int8 against fp32 0.96 % and 0.60 %; on one image 2.9 % against 1.8 %. A fixed
# 98.5 % floor on two images failed wherever a CI machine trained an int8 that rounds more (98.5 %
# and 98.4 % on both GPU paths). The GPU may disagree with the CPU's int8 at most twice as much as
# int8 does with fp32, never on more than 3 % of the pixels (a broken arrangement: 24-44 %), and
# need not agree above 98.5 %.
def _floor(variant: str, delegate: str, int8_rounding: float = 1.0) -> float:
    if delegate in ("cpu", "wasm"):
        return 0.999
    return max(0.97, min(0.985, 1 - 2 * (1 - int8_rounding))) if variant == "int8" else 0.99


def _int8_rounding(folder: Path, count: int) -> float:
    """Agreement of the int8 export with the fp32 export, both on LiteRT's CPU, on the check's images."""
    from petseg.benchmark.browser import test_images
    from petseg.runtime import TFLiteModel

    fp32, int8 = folder / "petseg_fp32.tflite", folder / "petseg_int8.tflite"
    images = test_images([int8], None, count)
    return float(np.mean(TFLiteModel(int8).predict(images) == TFLiteModel(fp32).predict(images)))


def test_every_default_export_runs_on_every_browser_client(checked, exports):
    proc, rows = checked
    assert rows, proc.stderr[-3000:]
    rounding = _int8_rounding(exports, IMAGES)
    web = {(r["variant"], r["runtime"], r["delegate"]): r for r in rows if r["runtime"] != "litert-python"}
    assert set(web) == {(v, c.runtime, c.delegate) for v in VARIANTS for c in CLIENTS}
    failed = [f"{key}: {row['error'] or round(100 * row['agreement'], 2)}" for key, row in web.items()
              if not row["ok"] or row["agreement"] < _floor(key[0], key[2], rounding)]
    assert not failed, failed
    for (_, _, delegate), row in web.items():
        if delegate in ("gpu", "webgpu"):  # the GPU paths ran on a GPU device, if a software one
            assert row["device"] and row["device"] != "cpu"


def test_the_check_prints_one_row_per_run(checked, exports):
    proc, rows = checked
    rounding = _int8_rounding(exports, IMAGES)
    met = sum(r["meets_goal"] for r in rows)
    assert proc.returncode == (0 if met == len(rows) else 1), proc.stderr[-2000:]
    assert f"{met} of {len(rows)} runs succeed" in proc.stdout
    table = proc.stdout[proc.stdout.index("runtime "):]
    assert sum(line.startswith(("MediaPipe web", "LiteRT.js", "LiteRT Python"))
               for line in table.splitlines()) == len(rows)
    gpu = [r for r in rows if r["runtime"] == "litert-python"]
    assert len(gpu) in (0, len(VARIANTS))  # LiteRT's GPU accelerator where a Vulkan device is
    assert all(r["ok"] and r["agreement"] >= _floor(r["variant"], "gpu", rounding) for r in gpu)
    assert all(r["fully_accelerated"] is True for r in gpu)  # nothing left to the CPU


@pytest.fixture(scope="module")
def small_exports(browser, tmp_path_factory) -> Path:
    """The small size's decoder (depthwise and 1x1 blocks, bilinear upsampling) and its width-0.75
    encoder. From scratch that encoder needs three times the seed's 4 epochs to leave the near-ties
    that the GPUs' float arithmetic flips (4 epochs: 97.5-98.9 % on the GPU paths; 8: int8 98.3 %).
    Trained on real pets, small's exports meet every client goal (docs/performance.md)."""
    return _trained_exports(tmp_path_factory.mktemp("browser_small"), "small", epochs=12)


def test_the_small_size_runs_on_every_client(small_exports):
    """Every size must run where the seed runs (issue 21); small's blocks are ops the seed lacks."""
    from petseg.benchmark.browser import main as check

    out = small_exports / "b.json"
    check([str(small_exports), "--images", str(IMAGES), "--json", str(out)])
    rows = json.loads(out.read_text())["results"]
    rounding = _int8_rounding(small_exports, IMAGES)
    assert {(r["variant"], r["runtime"], r["delegate"]) for r in rows if r["runtime"] != "litert-python"} \
        == {(v, c.runtime, c.delegate) for v in VARIANTS for c in CLIENTS}
    failed = [f"{r['variant']} {r['runtime']} {r['delegate']}: {r['error'] or round(100 * r['agreement'], 2)}"
              for r in rows if not r["ok"] or r["agreement"] < _floor(r["variant"], r["delegate"], rounding)]
    assert not failed, (failed, f"int8 against fp32 on the CPU: {100 * rounding:.2f}")
    assert all(r["fully_accelerated"] is True for r in rows if r["runtime"] == "litert-python")


def test_masks_come_back_per_image_and_pixel(exports):
    from petseg.dataset import load_dataset
    from petseg.runtime import TFLiteModel

    images = load_dataset("synthetic:24", 128, splits=("test",))["test"].images[:2]
    path = exports / "petseg_int8.tflite"
    answer = web_clients.run_clients([path], images, clients=CLIENTS[2:3])  # LiteRT.js on wasm
    result = answer["results"][0]
    assert result["ok"] and result["masks"].shape == (2, 128, 128) and result["inputDtype"] == "float32"
    np.testing.assert_array_equal(result["masks"], TFLiteModel(path).predict(images))


def test_missing_packages_are_named_with_the_fix(tmp_path):
    why = missing(tmp_path)
    if why and why.startswith("no node"):
        pytest.skip(why)
    assert why.startswith(f"{tmp_path}/node_modules lacks @mediapipe/tasks-vision")
    assert why.endswith("(run `make browser-deps`)")


def test_a_folder_without_exports_is_one_line(tmp_path, capsys):
    from petseg.benchmark.browser import main
    from petseg.errors import run_cli

    assert run_cli(main, [str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds no petseg_" in err and "petseg-export" in err and len(err.splitlines()) == 1


def test_mediapipe_failures_read_as_one_line():
    node = "mediapipe_tasks_vision_image_segmenter_imagesegmentergraph__TensorsDequantizationCalculator"
    why = "Unsupported input tensor type: Float32"
    error = (f'INVALID_ARGUMENT: CalculatorGraph::Run() failed: \nCalculator::Process() for node "{node}" '
             f"failed: {why}; WaitUntilIdle failed\n=== Source Location Trace: ===\n"
             "third_party/mediapipe/calculators/tensor/tensors_dequantization_calculator.cc:111\n")
    assert one_line(error) == ('INVALID_ARGUMENT: CalculatorGraph::Run() failed: Calculator::Process() '
                               f'for node "TensorsDequantizationCalculator" failed: {why}')
