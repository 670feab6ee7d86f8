"""tf.distribute strategies for users who outgrow one machine."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import tensorflow as tf

from petseg.errors import PetsegError


@dataclass(frozen=True)
class Distribution:
    """How training is spread, and whether this process is the one that writes the artifacts."""

    strategy: tf.distribute.Strategy
    chief: bool = True
    workers: int = 1
    task: int = 0

    def strategy_details(self) -> dict | None:
        """The strategy, replicas and workers, as the trained model's description records them (None
        when training ran on one device)."""
        if self.strategy is tf.distribute.get_strategy() and self.workers == 1:
            return None
        name = type(self.strategy).__name__.lstrip("_")
        return {"strategy": name, "replicas": self.strategy.num_replicas_in_sync, "workers": self.workers}


def check_batch_size(distribution: Distribution, batch_size: int) -> None:
    """A batch must split evenly between the replicas (each computes on the same shape)."""
    replicas = distribution.strategy.num_replicas_in_sync
    if batch_size % replicas:
        fit = batch_size + (-batch_size) % replicas
        raise PetsegError(f"--batch-size {batch_size} does not split evenly over {replicas} replicas; "
                          f"pass a multiple of {replicas}, e.g. --batch-size {fit}")


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy with a ``reduce`` that takes what Keras 3's fit gives it.

    Under this strategy Keras 3 (keras-team/keras#20585) reduces its first (images, masks) batch
    as one structure, which the cross-worker reduce refuses ("unsupported type PerReplica": every
    worker exited 1), and averages each replica's scalar logs "along axis 0", which a scalar lacks.
    """

    def reduce(self, reduce_op, value, axis):  # noqa: ANN001 - tf.distribute's own signature
        reduce_one = super().reduce

        def one(v):
            scalar = all(len(t.shape) == 0 for t in self.experimental_local_results(v))
            return reduce_one(reduce_op, v, None if scalar else axis)

        return tf.nest.map_structure(one, value)


def make_strategy(kind: str) -> Distribution:
    """The strategy for ``--distribute``: none, mirrored (local devices) or multiworker (TF_CONFIG)."""
    if kind == "none":
        return Distribution(tf.distribute.get_strategy())
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        # Without GPUs, mirror over the logical CPU devices (how the tests exercise it).
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return Distribution(tf.distribute.MirroredStrategy(devices=devices))
    cluster, task = _tf_config()
    strategy = _MultiWorkerMirroredStrategy()
    task_type, index = task.get("type"), int(task.get("index", 0))
    # TensorFlow's convention: the "chief" task if the cluster names one, else worker 0.
    chief = task_type == "chief" or (task_type == "worker" and index == 0 and "chief" not in cluster)
    workers = sum(len(cluster.get(job, [])) for job in ("chief", "worker"))
    return Distribution(strategy, chief, workers, index)


def _tf_config() -> tuple[dict, dict]:
    if "TF_CONFIG" not in os.environ:
        raise PetsegError("--distribute multiworker needs TF_CONFIG describing the cluster and this "
                          "process's task (see README, 'Training on several hosts')")
    try:
        config = json.loads(os.environ["TF_CONFIG"])
    except json.JSONDecodeError as exc:
        raise PetsegError(f"TF_CONFIG is not valid JSON ({exc}); fix the environment variable") from exc
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict) or task.get("type") not in cluster:
        raise PetsegError("TF_CONFIG needs a 'cluster' of host:port lists and a 'task' naming one of "
                          'them, e.g. {"cluster": {"worker": ["h1:2222", "h2:2222"]}, '
                          '"task": {"type": "worker", "index": 0}}')
    return cluster, task
