"""Faults from the outside: malformed models, kill -9 mid-training and mid-export, a full disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
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
        except PetsegError:
            return "refused"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = Counter(pool.map(outcome, paths))
    assert sum(outcomes.values()) == 300 and outcomes["refused"] > 50, outcomes
    # And through the whole command, for a few of each kind: an answer, never a crash.
    from petseg.benchmark.cli import main

    for path in paths[:6]:
        status = run_cli(main, [str(path), "--no-accuracy", "--runs", "2", "--warmup", "0",
                                "--min-seconds", "0"])
        err = capsys.readouterr().err
        assert status in (0, 2) and "Traceback" not in err


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


@pytest.mark.slow
def test_kill_9_mid_export_leaves_nothing_that_looks_complete(tiny_model, tmp_path):
    out = tmp_path / "variants"
    args = [sys.executable, "-m", "petseg.export.cli", "--model", str(tiny_model), "--quantize", "fp32",
            "--out", str(out), "--verify-images", "2", "--max-drop", "off"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Kill once the variant is being written or verified (its temporary file exists).
        _wait_for(lambda: out.exists() and any(out.glob(".petseg_fp32*")), 300)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "petseg_fp32.tflite").exists()
    assert not (out / "petseg_fp32.json").exists()


def test_full_disk_is_a_clean_error(tiny_model, tmp_path, monkeypatch, capsys):
    import errno

    from petseg import atomic
    from petseg.export.cli import main

    def full(dest, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest))

    monkeypatch.setattr(atomic, "write_bytes", full)
    out = tmp_path / "variants"
    status = run_cli(main, ["--model", str(tiny_model), "--quantize", "fp32", "--out", str(out),
                            "--verify-images", "2", "--max-drop", "off"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "No space left on device" in err and len(err.splitlines()) == 1
    assert not (out / "petseg_fp32.json").exists()
