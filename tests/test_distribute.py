"""petseg-train under tf.distribute for real: two local workers, and two logical CPU devices."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TRAIN = ["--data", "synthetic:16", "--image-size", "64", "--encoder-weights", "none", "--epochs", "2",
         "--batch-size", "8"]
ARTIFACTS = {"petseg.keras", "petseg.json", "history.json", "training_curves.png"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_worker(index: int, cluster: dict, out: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster,
                                                 "task": {"type": "worker", "index": index}}))
    with open(log, "w") as sink:  # a file, not a pipe: a worker blocked on a full pipe stalls both
        return subprocess.Popen([sys.executable, "-m", "petseg.train.cli", *TRAIN, "--distribute",
                                 "multiworker", "--out", str(out)], env=env, stdout=sink,
                                stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_multiworker_training_on_two_local_workers(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    outs, logs = [tmp_path / "chief", tmp_path / "worker1"], [tmp_path / "0.log", tmp_path / "1.log"]
    workers = [_start_worker(i, cluster, outs[i], logs[i]) for i in range(2)]
    try:
        codes = [w.wait(timeout=900) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], "\n---\n".join(t[-3000:] for t in texts)
    assert all("MultiWorkerMirroredStrategy over 2 replicas" in t for t in texts)
    assert {p.name for p in outs[0].iterdir()} >= ARTIFACTS
    meta = json.loads((outs[0] / "petseg.json").read_text())
    assert meta["distribution"] == {"strategy": "MultiWorkerMirroredStrategy", "replicas": 2, "workers": 2}
    assert [row["epoch"] for row in json.loads((outs[0] / "history.json").read_text())] == [1, 2]
    assert not outs[1].exists()  # the other worker checkpoints into a scratch directory only
    assert "the chief (worker 0) writes" in texts[1]


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    # Two logical CPU devices stand in for two GPUs; they must exist before TensorFlow runs an op.
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from petseg.train.cli import main
        raise SystemExit(main({[*TRAIN, "--distribute", "mirrored", "--out", str(tmp_path)]!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MirroredStrategy over 2 replicas" in proc.stdout
    assert {p.name for p in tmp_path.iterdir()} >= ARTIFACTS
    meta = json.loads((tmp_path / "petseg.json").read_text())
    assert meta["distribution"] == {"strategy": "MirroredStrategy", "replicas": 2, "workers": 1}
