"""petseg-bench: the table, the report files, no TensorFlow, and models that are not what they claim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from petseg.child import python_module
from petseg.errors import run_cli


@pytest.fixture(scope="module")
def variants(tiny_model, tmp_path_factory):
    from petseg.export.cli import main

    out = tmp_path_factory.mktemp("variants")
    assert main(["--model", str(tiny_model), "--quantize", "fp32,int8", "--out", str(out),
                 "--calibration-samples", "8", "--verify-images", "2", "--max-drop", "off"]) == 0
    return out


# Blocks `import tensorflow` in the bench process and in every child it starts.
NO_TF = textwrap.dedent("""
    import sys
    class _NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
                raise ImportError(f"{name} is blocked: petseg-bench must not import it")
    sys.meta_path.insert(0, _NoTensorFlow())
""")


def bench(args, tmp_path, env_extra=None):
    site = tmp_path / "no_tf"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(NO_TF)
    env = dict(os.environ, PYTHONPATH=str(site), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "petseg.benchmark.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


def test_bench_runs_without_tensorflow_and_writes_every_report(variants, tmp_path):
    reports = tmp_path / "reports"
    proc = bench([variants / "petseg_int8.tflite", "--threads", "1,2", "--runs", "5", "--warmup", "1",
                  "--min-seconds", "0", "--json", reports / "b.json", "--csv", reports / "b.csv",
                  "--markdown", reports / "b.md", "--plot", reports / "p.png",
                  "--overlays", reports / "o.png"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "variant" in out and "int8" in out and "fp32" in out  # fp32 sibling joins as reference
    data = json.loads((reports / "b.json").read_text())
    assert data["environment"]["runtime"].startswith("ai-edge-litert")
    rows = {(r["variant"], r["threads"]): r for r in data["results"]}
    assert set(rows) == {("int8", 1), ("int8", 2), ("fp32", 1), ("fp32", 2)}
    int8 = rows["int8", 1]
    assert int8["runs"] >= 5 and int8["median_ms"] > 0 and int8["p99_ms"] >= int8["median_ms"]
    assert 0 < int8["miou"] <= 1 and 0.8 < int8["agreement"] <= 1
    assert rows["fp32", 1]["agreement"] == 1 and rows["fp32", 1]["speedup"] == 1
    # Only uint8 <-> int8 conversions at the model's edges (--io-type uint8) may run outside XNNPACK.
    assert int8["gmacs"] > 0.01 and set(int8["outside_delegate"]) <= {"QUANTIZE"}
    assert rows["fp32", 1]["outside_delegate"] == {}
    assert (reports / "b.md").read_text().count("\n| int8 |") == 2
    for png in ("p.png", "o.png"):
        assert (reports / png).read_bytes()[:4] == b"\x89PNG"


def test_model_without_metadata_runs_with_assumptions(tiny_tflite, tmp_path):
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(tiny_tflite())  # a segmentation-shaped model from elsewhere: no petseg metadata
    proc = bench([bare, "--data", "synthetic:6", "--runs", "2", "--warmup", "0", "--min-seconds", "0"],
                 tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no petseg metadata (no JSON beside it, none inside it): assuming raw RGB 0..255" in proc.stdout


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"", "not a TFLite model"),
    (b"\xff\xd8\xff\xe0" + b"JFIF" * 100, "not a TFLite model"),
])
def test_files_that_are_not_models_are_refused(tmp_path, capsys, content, message):
    from petseg.benchmark.cli import main

    path = tmp_path / "model.tflite"
    if content is not None:
        path.write_bytes(content)
    assert run_cli(main, [str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_truncated_model_is_refused_without_crashing(variants, tmp_path, capsys):
    from petseg.benchmark.cli import main

    data = (variants / "petseg_int8.tflite").read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[: len(data) // 3])
    assert run_cli(main, [str(path), "--no-accuracy"]) == 2
    err = capsys.readouterr().err
    assert "cannot be benchmarked" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def runtimes(tiny_model, tmp_path_factory):
    """Every variant the TFLite-against-ONNX-Runtime comparison (benchmark/compare.py) times."""
    pytest.importorskip("onnxruntime")
    from petseg.benchmark.compare import VARIANTS
    from petseg.export.cli import main

    out = tmp_path_factory.mktemp("runtimes")
    assert main(["--model", str(tiny_model), "--quantize", ",".join(VARIANTS), "--out", str(out),
                 "--calibration-samples", "8", "--verify-images", "2", "--max-drop", "off"]) == 0
    return out


def test_onnx_variants_sit_in_the_same_table(runtimes, tmp_path):
    out = runtimes
    meta = json.loads((out / "petseg_onnx-int8.json").read_text())
    assert meta["verification"]["agreement"] > 0.8 and meta["calibration"]["split"] == "train"
    proc = bench([out / "petseg_fp32.tflite", out / "petseg_onnx.onnx", out / "petseg_onnx-int8.onnx",
                  "--reference", out / "petseg_onnx.onnx", "--runs", "3", "--warmup", "1",
                  "--min-seconds", "0", "--json", tmp_path / "r.json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["variant"]: r for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert rows["onnx"]["runtime"].startswith("onnxruntime") and rows["onnx"]["speedup"] == 1
    assert rows["fp32"]["runtime"].startswith("ai-edge-litert") and rows["fp32"]["speedup"] > 0
    assert rows["onnx-int8"]["agreement"] > 0.8


def test_onnx_int8_computes_its_own_arithmetic_on_every_cpu(learned_model, tmp_path):
    # With int8 weights ONNX Runtime's integer kernels saturate on CPUs without VNNI (AVX2 only):
    # the file then computed other masks there than its QDQ arithmetic says (export/onnx_export.py).
    import onnxruntime as ort

    from petseg.dataset import load_dataset
    from petseg.export.cli import main

    assert main(["--model", str(learned_model), "--quantize", "onnx-int8", "--out", str(tmp_path),
                 "--calibration-samples", "16", "--verify-images", "2", "--max-drop", "off"]) == 0
    images = load_dataset("synthetic:24", 64, splits=("train",))["train"].images

    def masks(level):
        options = ort.SessionOptions()
        options.graph_optimization_level = level  # all: fused integer kernels; none: the QDQ in float
        session = ort.InferenceSession(str(tmp_path / "petseg_onnx-int8.onnx"), options,
                                       providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0]
        dtype = np.uint8 if "uint8" in feed.type else np.float32
        return np.stack([session.run(None, {feed.name: im[None].astype(dtype)})[0][0].argmax(-1)
                         for im in images])

    fused = masks(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    assert np.mean(fused == masks(ort.GraphOptimizationLevel.ORT_DISABLE_ALL)) > 0.98


def test_warnings_come_from_what_is_measured(tiny_model, tmp_path, capsys):
    from petseg.export.cli import main

    out = tmp_path / "v"
    assert run_cli(main, ["--model", str(tiny_model), "--quantize", "fp32,dynamic,fp16", "--out", str(out),
                          "--verify-images", "2", "--max-drop", "off"]) == 0
    summary = capsys.readouterr().out  # the export measures agreement, not speed: no verdicts on it
    assert not any(s in summary for s in ("reference kernels", "use int8 instead", "dequantised on CPU"))
    proc = bench([out / "petseg_dynamic.tflite", out / "petseg_fp16.tflite", "--runs", "5", "--warmup", "1",
                  "--min-seconds", "0", "--limit", "2", "--json", tmp_path / "b.json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    notes = [line for line in proc.stdout.splitlines() if line.startswith("note: ")]
    records = json.loads((tmp_path / "b.json").read_text())["results"]
    reference = next(r for r in records if r["variant"] == "fp32")
    from petseg.benchmark.report import row_name

    # An fp16 file has two rows here where the CPU computes fp16 (cpu and cpu-fp16): notes name the row.
    for r in records:
        heavy = {op for op in r["outside_delegate"] if "CONV" in op or op == "FULLY_CONNECTED"}
        flagged_ops = [n for n in notes if n.startswith(f"note: {row_name(r)}: ") and "outside XNNPACK" in n]
        assert bool(flagged_ops) == bool(heavy), (r["variant"], notes)
        assert all(op in flagged_ops[0] for op in heavy)
        slower = r is not reference and r["min_ms"] > reference["median_ms"]
        flagged_slow = [n for n in notes if n.startswith(f"note: {row_name(r)} at ") and "speed" in n]
        assert bool(flagged_slow) == slower, (r["variant"], notes, r["min_ms"], reference["median_ms"])
    assert any("DEPTHWISE_CONV_2D" in n for n in notes)  # the dynamic variant's measured weak spot


def test_rows_name_same_variant_files_apart(tmp_path):
    from petseg.benchmark.measure import Measurement
    from petseg.benchmark.report import rows
    from petseg.description import Description

    latency = {"macs": 0, "outside_delegate": {}, "runtime": "x", "init_ms": 1, "first_ms": 1, "runs": 1,
               "median_ms": 1, "mean_ms": 1, "p90_ms": 1, "p99_ms": 1, "std_ms": 0, "min_ms": 1,
               "peak_mb": 1, "input_dtype": "uint8"}
    paths = [tmp_path / d / "petseg_int8.tflite" for d in ("converter", "aeq")]
    paths.append(tmp_path / "petseg_fp32.tflite")
    for path in paths:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    results = [Measurement(p, 1, latency, description=Description(p.stem.removeprefix("petseg_"), 64))
               for p in paths]
    assert [r["variant"] for r in rows(results)] == ["converter/petseg_int8", "aeq/petseg_int8", "fp32"]


def test_compare_times_every_runtime_in_one_table(runtimes, tmp_path):
    from petseg.benchmark.compare import VARIANTS

    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "petseg.benchmark.compare", "--skip-export", "--out",
                           str(runtimes), "--reports", str(reports), "--threads", "1", "--runs", "2",
                           "--min-seconds", "0", "--limit", "4"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "speed-up below = ONNX Runtime fp32 latency" in proc.stdout
    results = json.loads((reports / "runtimes.json").read_text())["results"]
    rows = {r["variant"]: r for r in results}
    assert sorted(rows) == sorted(VARIANTS) and {r["threads"] for r in results} == {1}
    # ONNX Runtime fp32 is the reference: the other rows are measured against it.
    assert rows["onnx"]["speedup"] == 1 and rows["onnx"]["agreement"] == 1
    assert all(r["speedup"] > 0 and r["agreement"] is not None for r in results)
    # + header and rule, + the fp16 file computed in fp16 where this CPU can (issue 22: every arithmetic)
    from petseg.capability import fp16_arithmetic

    in_fp16 = int("fp16" in VARIANTS and fp16_arithmetic() is not None)
    assert (reports / "runtimes.md").read_text().count("\n| ") == len(VARIANTS) + 2 + in_fp16
    assert len([r for r in results if r["variant"] == "fp16"]) == 1 + in_fp16
    assert (reports / "runtimes.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_exports_what_it_times(tmp_path, monkeypatch, capsys):
    # Without --skip-export it runs petseg-export on the model for every variant it then times.
    import petseg.benchmark.compare as compare

    calls = []
    monkeypatch.setattr(compare.subprocess, "run",
                        lambda cmd: calls.append(cmd) or subprocess.CompletedProcess(cmd, 1))
    model = tmp_path / "petseg.keras"
    assert run_cli(compare.main, ["--model", str(model), "--out", str(tmp_path / "c"), "--verbose"]) == 2
    assert "the export step failed" in capsys.readouterr().err
    (cmd,) = calls
    # -P: the working directory (a checkout's petseg/ folder) must not shadow the installed petseg.
    start = python_module("petseg.export.cli")
    assert cmd[:len(start)] == start and cmd[cmd.index("--model") + 1] == str(model)
    assert cmd[cmd.index("--quantize") + 1] == ",".join(compare.VARIANTS)
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / "c") and "--verbose" in cmd


def test_pareto_checks_the_thinner_encoders_goals():
    # Issue 24: tiny's moonshot, and every size's training together within 15 minutes.
    from petseg.benchmark.pareto import HEADERS, cells, goals

    def row(size, variant, miou, x, seconds, width=1.0):
        return {"size": size, "variant": variant, "encoder_width": width, "decoder_filters": [8],
                "train_seconds": seconds, "val_miou": miou, "test_miou": miou, "miou_delta_points": 0.0,
                "agreement": None, "gmac_keras": 0.1, "gmac_graph": 0.1, "ms": {1: 1.0},
                "x_seed": {1: x}, "outside_delegate": {}, "budget": None}

    rows = [row("seed", "fp32", 0.72, 1.0, 300), row("small", "fp32", 0.71, 0.3, 300),
            row("tiny", "fp32", 0.685, 0.2, 301, 0.5), row("tiny", "int8", 0.685, 0.19, 301, 0.5)]
    moonshot, together = ("tiny moonshot: int8 <= 0.20x seed int8 at test mIoU >= 0.68",
                          "every size together trains within 900 s")
    by_goal = {g["goal"]: g for g in goals(rows)}
    assert not by_goal[together]["met"] and by_goal[together]["measured"] == "901 s"
    assert by_goal[moonshot]["met"]
    rows[-1]["x_seed"] = {1: 0.21}
    assert not {g["goal"]: g for g in goals(rows)}[moonshot]["met"]
    assert cells(rows)[-1][HEADERS.index("encoder width")] == "0.5"


def test_bench_and_pareto_tables_write_cells_alike():
    # One owner (petseg.table) for the cell formats both tables print: ops, empty cells, Markdown.
    from petseg.benchmark import pareto, report

    ops = {"QUANTIZE": 2, "ADD": 1}
    bench_row = {"variant": "int8", "threads": 1, "size_mb": 1.0, "miou": 0.7, "pixel_accuracy": 0.9,
                 "miou_delta_points": None, "agreement": 0.99, "median_ms": 2.0, "p90_ms": 2.1,
                 "speedup": None, "gmac_per_s": 10.0, "outside_delegate": ops}
    pareto_row = {"size": "tiny", "variant": "int8", "encoder_width": 0.5, "decoder_filters": [128, 64],
                  "train_seconds": 80,
                  "val_miou": 0.7, "test_miou": 0.7, "miou_delta_points": None, "agreement": 0.99,
                  "gmac_keras": 0.1, "gmac_graph": 0.1, "ms": {1: 1.0}, "x_seed": {1: 0.5},
                  "outside_delegate": ops}
    (bench,), (sizes,) = report.cells([bench_row]), pareto.cells([pareto_row])
    for name, expected in (("outside delegate", "ADD x1, QUANTIZE x2"), ("ΔmIoU", "")):
        assert bench[report.HEADERS.index(name)] == sizes[pareto.HEADERS.index(name)] == expected, name
    assert report.cells([{**bench_row, "outside_delegate": {}}])[0][-2] == "none"


def _bench_json(tmp_path, budgets: dict) -> Path:
    """A petseg-bench report on tiny's fp32 and int8 (int8: 99.2 % agreement, -0.4 points), each
    model with a description that records ``budgets[variant]`` (no description where it is absent)."""
    from petseg.atomic import write_json

    results = []
    for variant, agreement, delta in (("fp32", 1.0, 0.0), ("int8", 0.992, -0.4)):
        path = tmp_path / f"petseg_{variant}.tflite"
        if variant in budgets:
            verification = {"budget": budgets[variant]} if budgets[variant] else {}
            write_json(path.with_suffix(".json"), {"schema": 1, "variant": variant, "image_size": 64,
                                                   "size": "tiny", "verification": verification})
        results.append({"model": str(path), "threads": 1, "median_ms": 1.0, "miou": 0.7, "gmacs": 0.1,
                        "agreement": agreement, "miou_delta_points": delta, "outside_delegate": {}})
    write_json(tmp_path / "bench.json", {"environment": {"cpu": "x", "runtime": "y"}, "results": results})
    return tmp_path / "bench.json"


@pytest.mark.parametrize("budget, goal, met", [
    # The export's default budget: 0.4 points lost is over it.
    ({"max_drop_points": 0.3, "min_agreement": 0.985}, "int8 agreement >= 98.5 %, mIoU loss <= 0.3", False),
    # Exported with another budget: pareto holds the file to that one.
    ({"max_drop_points": 0.5, "min_agreement": 0.99}, "int8 agreement >= 99 %, mIoU loss <= 0.5", True),
    ({"max_drop_points": None, "min_agreement": 0.995}, "int8 agreement >= 99.5 %, any mIoU loss", False),
    (None, "int8 within the budget it was exported with", False),  # a description without one
])
def test_pareto_holds_int8_to_the_budget_its_description_records(tmp_path, budget, goal, met):
    from petseg.benchmark.pareto import goals, load, table_rows

    (check,) = [c for c in goals(table_rows(load(_bench_json(tmp_path, {"fp32": None, "int8": budget}))[0]))
                if "int8" in c["goal"]]
    assert check["goal"].startswith(f"tiny: {goal}") and check["met"] is met, check
    assert ("records no budget" in check["measured"]) is (budget is None)


def test_the_cpu_line_names_the_extensions_that_choose_kernels():
    """Two AVX-512 VNNI Xeons ran int8 at 0.24x and 0.39x ONNX Runtime: the line must tell them apart."""
    from petseg.environment import cpu_model

    xeon = ("model name\t: Intel(R) Xeon(R) Processor\ncpu family\t: 6\nmodel\t\t: 143\n"
            "flags\t\t: sse4_2 avx avx2 avx512f avx512_vnni avx512_fp16 amx_tile amx_int8\n")
    line = cpu_model(xeon)
    assert line.startswith("Intel(R) Xeon(R) Processor, family 6 model 143, ")
    assert line.endswith("cores, avx512_vnni, avx512_fp16, amx_int8")
    assert cpu_model(xeon.replace(" avx512_fp16 amx_tile amx_int8", "")).endswith("cores, avx512_vnni")
    assert cpu_model("Features\t: fp asimd asimdhp asimddp\n").endswith("cores, asimdhp, asimddp")
