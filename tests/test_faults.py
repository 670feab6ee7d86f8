"""Faults from the outside: malformed models, kill -9 mid-training and mid-export, a full disk."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from petseg.errors import PetsegError, run_cli
from petseg.runtime import probe


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """Bit flips, truncation or a scribbled span: the damage files suffer on real disks."""
    out = bytearray(data)
    kind = rng.integers(3)
    if kind == 0:
        for pos in rng.integers(0, len(out), rng.integers(1, 9)):
            out[pos] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        out = out[: int(rng.integers(8, len(out)))]
    else:
        start = int(rng.integers(0, len(out) - 16))
        out[start:start + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
    return bytes(out)


@pytest.mark.slow
def test_mutated_models_never_crash_the_caller(tmp_path, capsys, tiny_tflite):
    original = tiny_tflite()
    rng = np.random.default_rng(2026)
    paths = []
    for i in range(300):
        path = tmp_path / f"m{i}.tflite"
        path.write_bytes(mutate(original, rng))
        paths.append(path)

    def outcome(path: Path) -> str:
        try:
            probe(path, timeout=60)
            return "accepted"
        except PetsegError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = dict(zip(paths, pool.map(outcome, paths)))
    refused = {path: why for path, why in outcomes.items() if why != "accepted"}
    assert len(refused) > 50
    # Whichever layer caught the damage (header check, verifier, kernels), the user reads one line
    # naming the file and the fix.
    for path, why in refused.items():
        assert why.startswith(f"{path} ") and "\n" not in why and "export" in why.rsplit(";", 1)[-1], why
    # And through the whole command: a model the probe accepted is measured, a refused one is an error.
    from petseg.benchmark.cli import main

    accepted = next(path for path, why in outcomes.items() if why == "accepted")
    for path, status in ((accepted, 0), (next(iter(refused)), 2)):
        assert run_cli(main, [str(path), "--no-accuracy", "--runs", "2", "--warmup", "0",
                              "--min-seconds", "0"]) == status
        err = capsys.readouterr().err.strip()
        assert (len(err.splitlines()) == 1 and str(path) in err) if status else not err, err


def test_a_native_crash_while_probing_is_an_error_not_a_death(tmp_path, tiny_tflite, monkeypatch):
    # LiteRT's verifier turned every mutation above into an exception; a model that still reaches
    # a native crash must cost only the child process. Make the child's kernels crash for certain.
    site = tmp_path / "crash"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import ctypes\n"
        "from ai_edge_litert import interpreter\n"
        "interpreter.Interpreter.invoke = lambda self: ctypes.string_at(0)  # SIGSEGV\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    path = tmp_path / "model.tflite"
    path.write_bytes(tiny_tflite())
    with pytest.raises(PetsegError, match=r"the runtime crashed \(signal \d+\); re-export it"):
        probe(path)


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


@pytest.mark.slow
def test_kill_9_mid_training_then_resume_loses_at_most_one_epoch(tmp_path):
    out = tmp_path / "models"
    args = [sys.executable, "-m", "petseg.train.cli", "--data", "synthetic:16", "--image-size", "64",
            "--encoder-weights", "none", "--epochs", "4", "--batch-size", "8", "--out", str(out)]
    state = out / ".checkpoints" / "state.json"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: state.is_file() and json.loads(state.read_text())["epoch"] >= 1, 300)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "petseg.keras").exists()
    done = json.loads(state.read_text())["epoch"]
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming after epoch {done} of 4" in resumed.stdout
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    meta = json.loads((out / "petseg.json").read_text())
    assert meta["epochs_run"] == 4 and 1 <= meta["best_epoch"] <= 4
    assert not list(out.glob(".*partial*"))


def _catch_mid_write(args: list[str], out: Path, attempts: int = 3) -> None:
    """Start the export and kill -9 it while a temporary file sits in ``out`` (the write)."""
    for _ in range(attempts):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while proc.poll() is None:
                if out.is_dir() and any(p.name.startswith(".petseg_fp32") for p in os.scandir(out)):
                    os.kill(proc.pid, signal.SIGKILL)
                    return
                time.sleep(0.002)
        finally:
            proc.wait()
        shutil.rmtree(out, ignore_errors=True)  # finished before we looked: try again
    pytest.fail(f"never caught the export writing in {attempts} attempts")


@pytest.mark.slow
def test_kill_9_mid_export_leaves_nothing_that_looks_complete(tiny_model, tmp_path):
    out = tmp_path / "variants"
    _catch_mid_write([sys.executable, "-m", "petseg.export.cli", "--model", str(tiny_model),
                      "--quantize", "fp32", "--out", str(out), "--verify-images", "2",
                      "--max-drop", "off"], out)
    assert not (out / "petseg_fp32.tflite").exists()
    assert not (out / "petseg_fp32.json").exists()


@pytest.mark.slow
def test_full_disk_leaves_neither_file(tiny_model, tmp_path):
    """A real full disk: a tmpfs with room for the model file but not its JSON."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs unshare -rm (user and mount namespaces) to mount a small tmpfs")
    args = ["-m", "petseg.export.cli", "--model", str(tiny_model), "--quantize", "int8",
            "--calibration-samples", "4", "--verify-images", "2", "--max-drop", "off"]
    roomy = tmp_path / "roomy"
    assert subprocess.run([sys.executable, *args, "--out", str(roomy)], capture_output=True).returncode == 0
    page = os.sysconf("SC_PAGE_SIZE")
    room = -(-(roomy / "petseg_int8.tflite").stat().st_size // page) * page  # whole pages, no more
    disk = tmp_path / "disk"
    disk.mkdir()
    command = " ".join(shlex.quote(a) for a in [sys.executable, *args, "--out", str(disk)])
    script = (f"mount -t tmpfs -o size={room} tmpfs {shlex.quote(str(disk))} || exit 99; "
              f"{command}; echo status=$?; ls -A {shlex.quote(str(disk))}")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert "status=2" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("petseg-export")]
    assert len(errors) == 1 and "No space left on device" in errors[0]
    listed = proc.stdout.split("status=2", 1)[1].split()
    assert listed == [], f"left behind on the full disk: {listed}"
