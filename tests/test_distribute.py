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


def _start_worker(index: int, cluster: dict, out: Path, log: Path, train: list[str]) -> subprocess.Popen:
    env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster,
                                                 "task": {"type": "worker", "index": index}}))
    with open(log, "w") as sink:  # a file, not a pipe: a worker blocked on a full pipe stalls both
        return subprocess.Popen([sys.executable, "-m", "petseg.train.cli", *train, "--distribute",
                                 "multiworker", "--out", str(out)], env=env, stdout=sink,
                                stderr=subprocess.STDOUT)


def _two_workers(tmp_path: Path, train: list[str]) -> tuple[list[Path], list[str]]:
    """Run petseg-train as two local workers; their output folders and logs."""
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    outs, logs = [tmp_path / "chief", tmp_path / "worker1"], [tmp_path / "0.log", tmp_path / "1.log"]
    workers = [_start_worker(i, cluster, outs[i], logs[i], train) for i in range(2)]
    try:
        codes = [w.wait(timeout=900) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], "\n---\n".join(t[-3000:] for t in texts)
    return outs, texts


@pytest.mark.slow
def test_multiworker_training_on_two_local_workers(tmp_path):
    outs, texts = _two_workers(tmp_path, TRAIN)
    assert all("MultiWorkerMirroredStrategy over 2 replicas" in t for t in texts)
    assert {p.name for p in outs[0].iterdir()} >= ARTIFACTS
    meta = json.loads((outs[0] / "petseg.json").read_text())
    # 14 training and 2 validation images: the last batches (6, 2) are filled to 8 with blanks.
    assert meta["distribution"]["partial_batches"]["padded"] == {"train": 2, "val": 6}
    assert {k: meta["distribution"][k] for k in ("strategy", "replicas", "workers")} == {
        "strategy": "MultiWorkerMirroredStrategy", "replicas": 2, "workers": 2}
    assert [row["epoch"] for row in json.loads((outs[0] / "history.json").read_text())] == [1, 2]
    assert not outs[1].exists()  # the other worker checkpoints into a scratch directory only
    assert "the chief (worker 0) writes" in texts[1]


@pytest.mark.slow
def test_multiworker_training_when_batches_do_not_split_evenly(tmp_path):
    # synthetic:32 holds 29 training and 3 validation images: with batch 8 over two workers the last
    # batches (5 and 3 images) do not split evenly between them.
    train = ["--data", "synthetic:32", *TRAIN[2:]]
    outs, texts = _two_workers(tmp_path, train)
    meta = json.loads((outs[0] / "petseg.json").read_text())
    assert meta["data"]["counts"]["train"] == 29 and meta["data"]["counts"]["val"] == 3
    # What was done about the partial batches is recorded: padded with images that weigh nothing.
    assert meta["distribution"]["partial_batches"]["padded"] == {"train": 3, "val": 5}
    history = json.loads((outs[0] / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    # The blanks weigh nothing: the recorded validation loss of the kept epoch is the model's own
    # mean loss over the 3 real validation images.
    assert history[meta["best_epoch"] - 1]["val_loss"] == pytest.approx(_val_loss(outs[0]), rel=1e-3)


def _val_loss(out: Path) -> float:
    import keras
    import numpy as np

    from petseg.dataset import load_dataset

    val = load_dataset("synthetic:32", 64)["val"]
    model = keras.saving.load_model(out / "petseg.keras", compile=False)
    logits = model(val.images.astype(np.float32), training=False)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(val.masks.astype("int32"), logits)
    return float(loss)


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
    assert {k: meta["distribution"][k] for k in ("strategy", "replicas", "workers")} == {
        "strategy": "MirroredStrategy", "replicas": 2, "workers": 1}


def test_a_batch_that_cannot_split_between_the_replicas_is_refused():
    from types import SimpleNamespace

    from petseg.errors import PetsegError
    from petseg.train.distribute import Distribution, check_batch_size

    three = Distribution(SimpleNamespace(num_replicas_in_sync=3))
    check_batch_size(three, 9)
    with pytest.raises(PetsegError, match="--batch-size 8 does not split evenly over 3 replicas.*size 9"):
        check_batch_size(three, 8)
