"""Where the time goes (benchmark/profile.py): families from XNNPACK's kernel names and ONNX Runtime's
nodes, CPU time that adds up to the wall clock, and one-line refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from petseg.benchmark import kernels
from petseg.benchmark.perf_sampling import check_sampling, parse_report
from petseg.benchmark.profile_worker import onnx_families
from petseg.errors import PetsegError
from petseg.onnx_runtime import MacNode

# Names as perf reads them from LiteRT 2.3's library (nm libpywrap_litert_common.so).
SYMBOLS = {
    "xnn_f32_gemm_minmax_ukernel_4x16s4__fma3_broadcast": (kernels.CONV, "fma3_broadcast"),
    "xnn_f32_igemm_minmax_ukernel_5x16__fma3_broadcast_prfm": (kernels.CONV, "fma3_broadcast_prfm"),
    "xnn_qs8_qc8w_igemm_minmax_fp32_ukernel_7x16c8__avx512vnni_prfm": (kernels.CONV, "avx512vnni_prfm"),
    "xnn_f32_dwconv_minmax_ukernel_25p16c__fma3": (kernels.DEPTHWISE, "fma3"),
    "xnn_x32_packw_gemm_goi_ukernel_x16s4__avx_u4": (kernels.PACKING, "avx_u4"),
    "xnn_f32_vadd_ukernel__avx512f_u32": (kernels.ELEMENTWISE, "avx512f_u32"),
    "xnn_f32_vclamp_ukernel__avx_u16": (kernels.ELEMENTWISE, "avx_u16"),
    "xnn_x8_lut_ukernel__avx2_u128": (kernels.ELEMENTWISE, "avx2_u128"),
    "xnn_x32_transposec_ukernel__8x8_reuse_multi_avx": (kernels.MOVEMENT, "8x8_reuse_multi_avx"),
}


@pytest.mark.parametrize("symbol, expected", SYMBOLS.items())
def test_xnnpack_kernels_are_named_by_their_work(symbol, expected):
    found = kernels.symbol_family(symbol, "libpywrap_litert_common.so"), kernels.kernel_variant(symbol)
    assert found == expected


@pytest.mark.parametrize("symbol, dso, family", [
    ("__memcpy_avx_unaligned_erms", "libc.so.6", kernels.MOVEMENT),
    ("pthreadpool_parallelize_2d_tile_2d", "libpywrap_litert_common.so", kernels.SCHEDULING),
    ("xnn_run_operator_with_index", "libpywrap_litert_common.so", kernels.SCHEDULING),
    ("_PyEval_EvalFrameDefault", "python3.11", kernels.OUTSIDE),
    ("tflite::optimized_ops::AddElementwise(int, float const*)", "libpywrap_litert_common.so",
     kernels.TFLITE_KERNELS),
    ("native_write", "[kernel.kallsyms]", kernels.OUTSIDE),
])
def test_what_is_not_a_kernel_is_named_too(symbol, dso, family):
    assert kernels.symbol_family(symbol, dso) == family


def test_perf_periods_become_cpu_milliseconds():
    # The period (ns of CPU time), not the sample count: perf may sample below the rate asked for.
    text = (" 400 \t 800000000 \tlibpywrap_litert_common.so\t"
            "[.] xnn_f32_gemm_minmax_ukernel_4x16s4__fma3_broadcast\n"
            " 4          \t 8000000    \t[kernel.kallsyms]         \t[k] finish_task_switch.isra.0\n"
            "# a comment\n\n")
    found = parse_report(text)
    gemm = ("libpywrap_litert_common.so", "xnn_f32_gemm_minmax_ukernel_4x16s4__fma3_broadcast")
    assert found[gemm] == pytest.approx(800.0)
    assert found[("[kernel.kallsyms]", "finish_task_switch.isra.0")] == pytest.approx(8.0)


def _node(ts, op, dur, inputs, outputs, name=None):
    return {"cat": "Node", "name": f"{name or f'n{ts}'}_kernel_time", "ts": ts, "dur": dur,
            "args": {"op_name": op, "input_type_shape": [{"float": s} for s in inputs],
                     "output_type_shape": [{"float": s} for s in outputs]}}


def test_onnx_runtime_nodes_become_families_with_their_macs():
    events = []
    for ts in (0, 1000, 2000):  # one warm-up run, then two measured
        events.append({"cat": "Session", "name": "model_run", "ts": ts, "dur": 500})
        events.append(_node(ts + 1, "Conv", 200, [[1, 3, 8, 8], [16, 3, 3, 3], [16]], [[1, 16, 8, 8]]))
        events.append(_node(ts + 2, "FusedConv", 100, [[1, 16, 8, 8], [16, 1, 3, 3]], [[1, 16, 8, 8]]))
        # int8: ONNX Runtime lists no prepacked weights (index 3 is the weights' scale); the
        # file's node, by name, says that it is depthwise.
        events.append(_node(ts + 3, "QLinearConv", 40, [[1, 16, 8, 8], [], [], [16], [16], [], []],
                            [[1, 16, 8, 8]], name="block_1_depthwise/depthwise_token_7"))
        events.append(_node(ts + 4, "Concat", 50, [[1, 16, 8, 8]] * 2, [[1, 32, 8, 8]]))
    macs = [MacNode("a", "Conv", [16, 3, 3, 3], 27_648), MacNode("b", "Conv", [16, 1, 3, 3], 9_216),
            MacNode("block_1_depthwise/depthwise", "QLinearConv", [16, 1, 3, 3], 9_216),
            MacNode("c", "ConvTranspose", [16, 8, 3, 3], 5)]
    result = onnx_families(events, skip_runs=1, macs=macs)
    fams = result["families"]
    assert fams[kernels.CONV] == {"ms": pytest.approx(0.2), "macs": 27_648 + 5}
    assert fams[kernels.DEPTHWISE] == {"ms": pytest.approx(0.14), "macs": 2 * 9_216}
    assert fams[kernels.MOVEMENT]["ms"] == pytest.approx(0.05)
    assert fams[kernels.SCHEDULING]["ms"] == pytest.approx(0.11)  # the run beyond its nodes
    assert result["top"][0]["name"] == "Conv"


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    from petseg.export.cli import main

    pytest.importorskip("onnxruntime")  # the dev extra has it: the ONNX files are profiled beside them
    out = tmp_path_factory.mktemp("profiled")
    assert main(["--model", str(tiny_model), "--quantize", "fp32,fp16,int8,onnx,onnx-int8", "--out", str(out),
                 "--calibration-samples", "8", "--verify-images", "2", "--max-drop", "off"]) == 0
    return out


@pytest.fixture(scope="module")
def perf_samples():
    """Skip where perf is absent or the kernel refuses it (a container without perf events)."""
    try:
        check_sampling()
    except PetsegError as exc:
        pytest.skip(str(exc))


def profile(*args, env=None):
    return subprocess.run([sys.executable, "-m", "petseg.benchmark.profile", *map(str, args)],
                          capture_output=True, text=True, timeout=900, env=env)


def test_cpu_time_adds_up_and_the_convolutions_carry_the_macs(perf_samples, exported, tmp_path):
    from petseg.runtime import TFLiteModel

    files = [exported / "petseg_fp32.tflite", exported / "petseg_int8.tflite"]
    proc = profile(*files, "--seconds", "2", "--json", tmp_path / "p.json", "--markdown", tmp_path / "p.md")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CPU:" in proc.stdout and "x petseg_fp32.tflite" in proc.stdout
    data = json.loads((tmp_path / "p.json").read_text())
    for path, found in zip(files, data["profiles"]):
        fams = found["families"]
        sampled = sum(f["ms"] for f in fams.values())
        # perf's samples add up to the CPU time the OS counted for the process over the same loop
        # (a busy machine makes the wall clock longer, not these).
        assert 0.85 < sampled / found["os_cpu_ms"] < 1.15, (sampled, found["os_cpu_ms"])
        assert fams[kernels.CONV]["ms"] > 0 and fams[kernels.DEPTHWISE]["ms"] > 0
        conv_macs = fams[kernels.CONV]["macs"] + fams[kernels.DEPTHWISE]["macs"]
        assert conv_macs == TFLiteModel(path).macs() == sum(f.get("macs", 0) for f in fams.values())
        assert any(t["name"].startswith("xnn_") and t["variant"] for t in found["top"])
    assert "| family |" in (tmp_path / "p.md").read_text()


def test_fp16_arithmetic_is_profiled_where_the_cpu_computes_in_fp16(perf_samples, exported, tmp_path):
    from petseg.capability import fp16_arithmetic
    from petseg.runtime import TFLiteModel

    path = exported / "petseg_fp16.tflite"
    proc = profile(path, "--arithmetic", "fp16", "--seconds", "1", "--json", tmp_path / "p.json")
    if fp16_arithmetic() is None:  # refused before anything runs, in one line
        assert proc.returncode != 0 and "no fp16 arithmetic" in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "petseg_fp16.tflite in fp16" in proc.stdout
    (found,) = json.loads((tmp_path / "p.json").read_text())["profiles"]
    assert found["arithmetic"] == "fp16" and "CompiledModel" in found["runtime"]
    # XNNPACK's half-precision kernels did the work (the Interpreter would run xnn_f32_* ones).
    convs = [t for t in found["top"] if t["family"] == kernels.CONV]
    assert convs and all(t["name"].startswith("xnn_f16_") for t in convs), found["top"]
    fams = found["families"]
    assert sum(f.get("macs", 0) for f in fams.values()) == TFLiteModel(path).macs() > 0


def test_the_profiler_is_a_command_of_its_own():
    # python -m petseg.benchmark.profile from a checkout runs the checkout's petseg/, not the installed one.
    script = os.path.join(os.path.dirname(sys.executable), "petseg-profile")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage: petseg-profile" in proc.stdout and "--arithmetic" in proc.stdout


def test_onnx_runtime_profiles_its_own_nodes(exported, tmp_path):
    from petseg.onnx_runtime import OnnxModel
    from petseg.runtime import TFLiteModel

    files = [exported / "petseg_onnx.onnx", exported / "petseg_onnx-int8.onnx"]
    proc = profile(*files, "--seconds", "1", "--json", tmp_path / "p.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    fp32, int8 = json.loads((tmp_path / "p.json").read_text())["profiles"]
    # The Keras graph's MACs, counted on the ONNX file; int8's sub-pixel decoder does exactly as many.
    macs = OnnxModel(files[0]).macs()
    assert macs == TFLiteModel(exported / "petseg_int8.tflite").macs() > 0
    for found in (fp32, int8):
        fams = found["families"]
        assert sum(f["macs"] for f in fams.values()) == macs
        # int8's depthwise convs run as QLinearConv, whose weights the profile does not list.
        assert fams[kernels.DEPTHWISE]["ms"] > 0 and fams[kernels.DEPTHWISE]["macs"] > 0
        node_ms = sum(f["ms"] for f in fams.values())
        assert 0.5 < node_ms / found["wall_ms"] <= 1.05
    assert fp32["families"][kernels.DEPTHWISE]["macs"] == int8["families"][kernels.DEPTHWISE]["macs"]


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.tflite", "does not exist"),
    (lambda d: d / "petseg.keras", "is not a .tflite or .onnx model"),
])
def test_what_cannot_be_profiled_gets_one_line(tmp_path, make, message):
    path = make(tmp_path)
    if path.suffix == ".keras":
        path.write_bytes(b"PK")
    proc = profile(path)
    assert proc.returncode != 0 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def _tflite_header(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(8))  # passes the header check; never opened
    return path


def test_a_missing_perf_is_said_before_anything_runs(tmp_path, monkeypatch, capsys):
    from petseg.benchmark import perf_sampling
    from petseg.benchmark.profile import main
    from petseg.errors import run_cli

    monkeypatch.setattr(perf_sampling.shutil, "which", lambda name: None)
    assert run_cli(main, [str(_tflite_header(tmp_path))], prog="profile") != 0
    err = capsys.readouterr().err
    assert "Linux perf, which is not installed" in err and len(err.strip().splitlines()) == 1


def test_perf_refused_by_the_kernel_gets_one_line_with_its_reason(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "perf"  # what perf prints where perf_event_paranoid forbids it
    fake.write_text("#!/bin/sh\necho 'Error:' >&2\n"
                    "echo 'No permission to enable cpu-clock event.' >&2\nexit 255\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    proc = profile(_tflite_header(tmp_path), env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "perf could not sample this process (No permission to enable cpu-clock event.)" in proc.stderr
    assert "perf_event_paranoid" in proc.stderr


def test_runtimes_that_do_not_compare_are_refused_together(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    proc = profile(_tflite_header(tmp_path), onnx, "--threads", "2")
    assert proc.returncode != 0 and "do not compare" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = profile(_tflite_header(tmp_path), "--seconds", "nan")
    assert proc.returncode != 0 and "--seconds" in proc.stderr
