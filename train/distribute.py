"""tf.distribute strategies for users who outgrow one machine."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from petseg.errors import PetsegError


def make_strategy(kind: str) -> tuple[tf.distribute.Strategy, bool]:
    """The strategy for ``--distribute`` and whether this process writes the artifacts."""
    if kind == "none":
        return tf.distribute.get_strategy(), True
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        # Without GPUs, mirror over the logical CPU devices (how the tests exercise it).
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices), True
    if "TF_CONFIG" not in os.environ:
        raise PetsegError("--distribute multiworker needs TF_CONFIG describing the cluster "
                          "(see tf.distribute.MultiWorkerMirroredStrategy)")
    try:
        task = json.loads(os.environ["TF_CONFIG"]).get("task", {})
    except json.JSONDecodeError as exc:
        raise PetsegError(f"TF_CONFIG is not valid JSON ({exc}); fix the environment variable") from exc
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    is_chief = task.get("type") == "chief" or (task.get("type") == "worker" and task.get("index") == 0)
    return strategy, is_chief


def split_cpu(count: int) -> None:
    """Expose ``count`` logical CPU devices (call before TensorFlow runs any op)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
