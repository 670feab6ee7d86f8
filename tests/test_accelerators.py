"""fp16 arithmetic on the CPU and LiteRT's GPU accelerator, through the CompiledModel runner.

Tests that need fp16 arithmetic or a Vulkan device check both branches: where the machine has
it, the rows exist and say so; where it lacks it, the rows are absent and the table says why.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_bench import bench

from petseg.capability import fp16_arithmetic
from petseg.errors import run_cli

ZEN1 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse sse2 avx avx2 fma f16c\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_fp16 amx_tile\n"
PIXEL = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 atomics fphp asimdhp cpuid\n"
CORTEX_A53 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\n"


@pytest.mark.parametrize("cpuinfo, found", [(ZEN1, None), (SAPPHIRE, "avx512_fp16"), (PIXEL, "asimdhp"),
                                            (CORTEX_A53, None), ("", None)])
def test_fp16_arithmetic_is_read_from_the_cpu_flags(cpuinfo, found):
    # f16c (x86 fp16 <-> fp32 conversion only) is not fp16 arithmetic.
    assert fp16_arithmetic(cpuinfo) == found


def test_forcing_fp16_keeps_xnnpacks_integer_kernels():
    from petseg.compiled import BACKENDS, XNNPACK_DEFAULT_FLAGS, XNNPACK_FORCE_FP16, _options

    flags = _options(BACKENDS["cpu-fp16"], 1).cpu_options.xnnpack_flags
    assert flags & XNNPACK_FORCE_FP16 and flags & XNNPACK_DEFAULT_FLAGS == XNNPACK_DEFAULT_FLAGS
    assert _options(BACKENDS["gpu"], 1).cpu_options.xnnpack_flags is None  # LiteRT's own defaults


@pytest.fixture(scope="module")
def exports(learned_model, tmp_path_factory):
    from petseg.export.cli import main

    out = tmp_path_factory.mktemp("accel")
    assert main(["--model", str(learned_model), "--quantize", "fp32,fp16,int8", "--out", str(out),
                 "--calibration-samples", "8", "--verify-images", "4", "--max-drop", "off"]) == 0
    return out


def _rows(path):
    records = json.loads(path.read_text())["results"]
    return {(r["variant"], r["accelerator"], r["threads"]): r for r in records}


def test_fp16_variant_gets_an_fp16_arithmetic_row_where_the_cpu_has_it(exports, tmp_path):
    proc = bench([exports / "petseg_fp16.tflite", "--data", "synthetic:24", "--runs", "3", "--warmup", "1",
                  "--min-seconds", "0", "--json", tmp_path / "b.json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(tmp_path / "b.json")
    assert rows["fp16", "cpu", 1]["fp16_arithmetic"] is None  # today's row, fp32 arithmetic, stays
    feature = fp16_arithmetic()
    if feature is None:
        assert ("fp16", "cpu-fp16", 1) not in rows and "this CPU has none" in proc.stdout
        return
    row = rows["fp16", "cpu-fp16", 1]
    assert row["fp16_arithmetic"] == feature and row["fully_accelerated"] is True
    assert f"XNNPACK computed in fp16 ({feature})" in proc.stdout
    # fp16 rounding of every activation moves a few pixels at most; the CPU run is the comparison.
    assert 0.98 < row["cpu_agreement"] <= 1 and abs(row["cpu_miou_delta_points"]) < 2
    assert row["agreement"] is not None and row["speedup"] > 0


def test_a_cpu_without_fp16_arithmetic_gets_no_row_and_a_note(exports, tmp_path, capsys, monkeypatch):
    from petseg.benchmark import accelerators
    from petseg.benchmark.cli import main

    monkeypatch.setattr(accelerators, "fp16_arithmetic", lambda: None)  # e.g. an AMD Zen 1
    args = [str(exports / "petseg_fp16.tflite"), "--data", "synthetic:8", "--runs", "2", "--warmup", "0",
            "--min-seconds", "0", "--fp16-arithmetic", "all", "--json", str(tmp_path / "b.json")]
    assert run_cli(main, args) == 0
    rows = _rows(tmp_path / "b.json")
    assert {a for _, a, _ in rows} == {"cpu"}
    notes = json.loads((tmp_path / "b.json").read_text())["notes"]
    assert any("this CPU has none" in n and "fp16, fp32" in n for n in notes), notes
    assert "this CPU has none" in capsys.readouterr().out


def test_predict_computes_an_fp16_model_in_fp16_where_it_can(exports, tmp_path, capsys):
    from PIL import Image

    from petseg.predict import main

    photo = tmp_path / "cat.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 70, 3), np.uint8)).save(photo)
    model = str(exports / "petseg_fp16.tflite")
    assert run_cli(main, [model, str(photo), "-o", str(tmp_path / "a"), "--json"]) == 0
    feature = fp16_arithmetic()
    auto = json.loads(capsys.readouterr().out)[0]["runs_on"]
    assert auto == (f"cpu, fp16 arithmetic ({feature})" if feature else "cpu, fp32 arithmetic")
    code = run_cli(main, [model, str(photo), "-o", str(tmp_path / "b"), "--arithmetic", "fp16"])
    captured = capsys.readouterr()
    if feature:
        assert code == 0 and f"fp16 arithmetic ({feature})" in captured.out
    else:  # asked for, not available: refused in one line, never computed in fp32 instead
        assert code == 2 and "fp16 arithmetic is not available" in captured.err
        assert len(captured.err.strip().splitlines()) == 1
    assert run_cli(main, [model, str(photo), "-o", str(tmp_path / "c"), "--arithmetic", "fp32"]) == 0
    assert "cpu, fp32 arithmetic" in capsys.readouterr().out


def test_export_records_the_fp16_variant_computed_in_fp16(exports):
    check = json.loads((exports / "petseg_fp16.json").read_text())["verification"]
    in_fp16 = check["fp16_arithmetic"]
    if fp16_arithmetic() is None:
        assert in_fp16["ran"] is False and "no fp16 arithmetic" in in_fp16["why"]
        return
    assert in_fp16["ran"] is True and in_fp16["cpu_feature"] == fp16_arithmetic()
    assert in_fp16["images"] == check["images"] and 0.9 < in_fp16["agreement"] <= 1
    assert json.loads((exports / "petseg_fp32.json").read_text())["verification"]["fp16_arithmetic"] is None


def test_a_missing_vulkan_device_is_one_line_saying_how_to_get_one(exports, tmp_path):
    proc = bench([exports / "petseg_fp32.tflite", "--accelerator", "gpu", "--no-accuracy", "--runs", "1",
                  "--warmup", "0", "--min-seconds", "0"], tmp_path,
                 env_extra={"VK_ICD_FILENAMES": str(tmp_path / "no_such_icd.json")})
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith("petseg-bench: error: LiteRT's GPU accelerator needs a Vulkan device")
    assert "make gpu-deps" in err[-1] and "Traceback" not in proc.stderr


def test_unknown_accelerator_is_refused(exports, capsys):
    from petseg.benchmark.cli import main

    assert run_cli(main, [str(exports / "petseg_fp32.tflite"), "--accelerator", "npu"]) == 2
    assert "choose from cpu, gpu" in capsys.readouterr().err


@pytest.fixture(scope="module")
def vulkan_device():
    from petseg import vulkan

    vulkan.prepare()
    if not vulkan.device_configured():
        pytest.skip("no Vulkan device for LiteRT's GPU accelerator (make gpu-deps installs SwiftShader)")


def _compiled_says(path) -> bool:
    """is_fully_accelerated() straight from LiteRT, with nothing of petseg's runner in between."""
    from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator

    accel = HardwareAccelerator.GPU | HardwareAccelerator.CPU
    return CompiledModel.from_file(str(path), hardware_accel=accel).is_fully_accelerated()


def test_every_variant_runs_on_the_gpu_and_agrees_with_its_cpu_run(exports, vulkan_device, tmp_path):
    files = [exports / f"petseg_{v}.tflite" for v in ("fp32", "fp16", "int8")]
    reports = tmp_path / "r"
    proc = bench([*files, "--accelerator", "cpu,gpu", "--data", "synthetic:24", "--runs", "2",
                  "--warmup", "0", "--min-seconds", "0", "--json", reports / "b.json",
                  "--markdown", reports / "b.md", "--csv", reports / "b.csv", "--plot", reports / "p.png"],
                 tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(reports / "b.json")
    for variant, path in zip(("fp32", "fp16", "int8"), files):
        for backend in ("gpu", "gpu-fp32"):
            row = rows[variant, backend, 1]
            assert row["adapter"] and row["fully_accelerated"] is _compiled_says(path)
            assert row["cpu_agreement"] > 0.98 and row["agreement"] is not None
            if row["software_device"]:  # a software device's latency is no GPU's: not compared
                assert row["speedup"] is None
    assert rows["fp32", "cpu", 1]["accelerator"] == "cpu"
    software = any(r["software_device"] for r in rows.values())
    assert ("(sw)" in proc.stdout) == software and ("a software Vulkan device" in proc.stdout) == software
    assert "| gpu-fp32 |" in (reports / "b.md").read_text() and "gpu" in (reports / "b.csv").read_text()
