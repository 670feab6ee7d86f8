"""A model's description is input: every copy must agree with the model file and stay in bounds.

The commands run in a child process under a memory ceiling: a description that made petseg
allocate without limit fails the test instead of taking the machine down with it.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from petseg.errors import run_cli
from petseg.modelfile import EMBEDDED_JSON, sidecar

CEILING = 6 << 30  # bytes of address space: far above what benchmarking a 64x64 model takes


def _ceiling() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CEILING, CEILING))


def _cli(module: str, *args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=600, preexec_fn=_ceiling, cwd=cwd)


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory) -> Path:
    from petseg.export.cli import main

    out = tmp_path_factory.mktemp("described")
    assert main(["--model", str(tiny_model), "--quantize", "int8", "--out", str(out), "--max-drop", "off",
                 "--calibration-samples", "4", "--verify-images", "2"]) == 0
    return out / "petseg_int8.tflite"


@pytest.fixture
def model(exported, tmp_path) -> Path:
    """A fresh copy of the export and its sidecar, for one test to tamper with."""
    copy = tmp_path / exported.name
    copy.write_bytes(exported.read_bytes())
    sidecar(copy).write_text(sidecar(exported).read_text())
    return copy


def _tamper(data: dict, field: str, value) -> dict:
    if field.startswith("input."):
        data["input"][field.removeprefix("input.")] = value
    else:
        data[field] = value
    return data


TAMPERED = [("image_size", 10_000_000, "image_size 10000000, out of range"),
            ("image_size", 96, "image_size 96, but the model takes 64x64"),
            ("input.shape", [1, 96, 96, 3], "input shape [1, 96, 96, 3], but the model's input"),
            ("input.dtype", "uint8", "input dtype 'uint8', but the model's input is 'float32'"),
            ("input.std", [1e-30, 1, 1], "std non-zero"),
            ("input.mean", [1e30, 0, 0], "finite pixel units")]


def _assert_refused(proc: subprocess.CompletedProcess, complaint: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and complaint in lines[0], proc.stderr[-2000:]


@pytest.mark.parametrize(("field", "value", "complaint"), TAMPERED, ids=[f"{f}={v}" for f, v, _ in TAMPERED])
def test_bench_refuses_a_sidecar_that_contradicts_its_model(model, field, value, complaint, tmp_path):
    sidecar(model).write_text(json.dumps(_tamper(json.loads(sidecar(model).read_text()), field, value)))
    proc = _cli("petseg.benchmark.cli", model, "--runs", "1", "--warmup", "0", "--min-seconds", "0",
                "--limit", "2", "--json", tmp_path / "b.json")
    _assert_refused(proc, complaint)
    assert not (tmp_path / "b.json").exists()


def test_bench_refuses_a_tampered_copy_inside_the_model(model):
    with zipfile.ZipFile(model) as archive:
        data = json.loads(archive.read(EMBEDDED_JSON))
    # The last entry of a name is the one a reader gets: a copy edited in place looks like this.
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(model, "a") as archive:
        archive.writestr(EMBEDDED_JSON, json.dumps(_tamper(data, "image_size", 96)))
    for with_sidecar in (True, False):
        if not with_sidecar:
            sidecar(model).unlink()
        proc = _cli("petseg.benchmark.cli", model, "--runs", "1", "--warmup", "0", "--min-seconds", "0",
                    "--limit", "2")
        _assert_refused(proc, "its embedded petseg.json gives image_size 96")


def test_predict_refuses_a_sidecar_that_contradicts_its_model(model, tmp_path):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (80, 60), (120, 90, 60)).save(photo)
    sidecar(model).write_text(json.dumps(_tamper(json.loads(sidecar(model).read_text()), "image_size", 96)))
    proc = _cli("petseg.predict", model, photo, "-o", tmp_path / "out")
    _assert_refused(proc, "image_size 96, but the model takes 64x64")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flags", "complaint"), [
    (["--quantize", "fp16", "--integer-only"], "--integer-only"),
    (["--quantize", "fp16", "--io-type", "int8"], "--io-type int8"),
])
def test_export_refuses_flags_that_no_chosen_variant_uses(capsys, tiny_model, tmp_path, flags, complaint):
    from petseg.export.cli import main

    out = tmp_path / "out"
    assert run_cli(main, ["--model", str(tiny_model), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert complaint in err and "\n" not in err
    assert not out.exists()


def test_the_gpu_runner_refuses_a_sidecar_that_contradicts_its_model(model, tmp_path):
    """The CompiledModel runner (--accelerator gpu, and cpu-fp16) checks descriptions too."""
    from petseg import vulkan

    vulkan.prepare()
    if not vulkan.device_configured():
        pytest.skip("no Vulkan device for LiteRT's GPU accelerator (make gpu-deps installs SwiftShader)")
    sidecar(model).write_text(json.dumps(_tamper(json.loads(sidecar(model).read_text()), "image_size", 96)))
    proc = _cli("petseg.benchmark.cli", model, "--accelerator", "gpu", "--runs", "1", "--warmup", "0",
                "--min-seconds", "0", "--limit", "2", "--json", tmp_path / "b.json")
    _assert_refused(proc, "image_size 96, but the model takes 64x64")
    assert not (tmp_path / "b.json").exists()
