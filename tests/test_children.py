"""Child processes: the installed petseg runs in them wherever they start, and their errors reach the user.

Started as ``python -m petseg...``, a child puts its working directory first on sys.path, so in a
checkout (whose ``petseg/`` folder has no ``benchmark/`` inside) the folder shadows the installed
package. The tests stand for that with a ``petseg/`` folder that refuses to import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from petseg import child
from petseg.errors import PetsegError

REPO = Path(__file__).resolve().parents[1]
SHADOW = "raise ImportError('the petseg folder of the working directory was imported')\n"


@pytest.fixture
def shadowed_cwd(tmp_path, monkeypatch) -> Path:
    (tmp_path / "petseg").mkdir()
    (tmp_path / "petseg" / "__init__.py").write_text(SHADOW)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("safe_path", [True, False], ids=["python3.11+", "python3.10"])
def test_a_child_imports_the_installed_petseg_not_the_working_directory(shadowed_cwd, tiny_tflite,
                                                                        safe_path):
    if safe_path and sys.version_info < (3, 11):
        pytest.skip("-P needs Python 3.11")
    model = shadowed_cwd / "m.tflite"
    model.write_bytes(tiny_tflite())
    cmd = [*child.python_module("petseg.runtime_probe", safe_path=safe_path), str(model)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"shape": [1, 32, 32, 3]' in proc.stdout


def test_the_probe_runs_from_a_folder_holding_a_petseg_folder(shadowed_cwd, tiny_tflite):
    from petseg.runtime import probe

    model = shadowed_cwd / "m.tflite"
    model.write_bytes(tiny_tflite())
    assert probe(model)["inputs"][0]["shape"] == [1, 32, 32, 3]


def test_a_failed_child_says_why_in_its_own_words():
    with pytest.raises(PetsegError) as caught:
        child.run_module("petseg.no_such_module", [], "it cannot run", "fix it", timeout=120)
    message = str(caught.value)
    assert "No module named petseg.no_such_module" in message.replace("'", "")
    assert message.count("\n") == 0


def test_the_quiet_filter_runs_from_a_folder_holding_a_petseg_folder(shadowed_cwd):
    script = ("import sys\nfrom petseg.quiet import filtered_stderr\n"
              "with filtered_stderr():\n    print('kept line', file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-P", "-c", script] if sys.version_info >= (3, 11)
                          else [sys.executable, "-c", f"import sys; sys.path.pop(0)\n{script}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "kept line" in proc.stderr, proc.stderr[-2000:]
    assert "working directory was imported" not in proc.stderr


def _tracked_copy(dest: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored): what a clone of it holds, without its
    venv or build output."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def _device_install(tmp: Path) -> Path:
    """A fresh venv (no TensorFlow) with a plain, non-editable ``pip install .``; its bin folder."""
    repo = _tracked_copy(tmp / "checkout")
    env_dir = tmp / "device"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    bin_dir = env_dir / "bin"
    proc = subprocess.run([bin_dir / "python", "-m", "pip", "install", "-q", "."], cwd=repo,
                          capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        unreachable = ("NewConnectionError", "Could not find a version", "No matching distribution",
                       "Temporary failure in name resolution", "Network is unreachable", "ConnectTimeout")
        if any(marker in text for marker in unreachable):
            pytest.skip(f"pip cannot reach a package index: {text.strip().splitlines()[-1]}")
        raise AssertionError(text[-3000:])
    return bin_dir


@pytest.mark.slow
def test_the_device_install_benchmarks_from_the_checkout_and_from_elsewhere(tmp_path, tiny_model):
    from petseg.export.cli import main

    variants = tmp_path / "models"
    assert main(["--model", str(tiny_model), "--quantize", "fp32", "--out", str(variants),
                 "--calibration-samples", "4", "--verify-images", "2", "--max-drop", "off"]) == 0
    bin_dir = _device_install(tmp_path)
    no_tf = subprocess.run([bin_dir / "python", "-c", "import tensorflow"], capture_output=True)
    assert no_tf.returncode != 0, "the runtime-only install must not bring TensorFlow"
    model = variants / "petseg_fp32.tflite"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for cwd in (tmp_path / "checkout", elsewhere):
        proc = subprocess.run([bin_dir / "petseg-bench", model, "--runs", "3", "--warmup", "1",
                               "--min-seconds", "0", "--limit", "2"], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (cwd, proc.stdout[-1500:], proc.stderr[-1500:])
        assert "fp32" in proc.stdout
