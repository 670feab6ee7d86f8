"""CPU samples of this process while it runs a loop: how much CPU time each function took (Linux perf).

LiteRT's Python packages carry no op profiler, and XNNPACK runs the whole graph as one delegate
node, so TFLite's own profiler would say only "DELEGATE". XNNPACK's microkernels keep their
names in LiteRT's library, so sampling the CPU names the work instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from petseg.errors import PetsegError

FREQUENCY_HZ = 1000  # samples per CPU-second; higher rates slowed a 16 ms inference by 17 % on a VM
_ATTACH_S = 0.3  # perf needs a moment to attach before the loop starts


@dataclass
class Samples:
    """CPU time by (library, function), over ``iterations`` runs of the loop in ``seconds``."""

    cpu_ms: dict[tuple[str, str], float]
    iterations: int
    seconds: float

    def per_iteration(self) -> dict[tuple[str, str], float]:
        return {key: ms / self.iterations for key, ms in self.cpu_ms.items()}


def perf_binary() -> str:
    """Linux perf, or a one-line error that says how to install it."""
    perf = shutil.which("perf")
    if perf is None:
        raise PetsegError("profiling a .tflite samples the CPU with Linux perf, which is not installed; "
                          "install it (Debian: apt-get install linux-perf; Ubuntu: linux-tools-generic)")
    return perf


def sample(loop: Callable[[float], int], seconds: float) -> Samples:
    """Run ``loop(seconds)`` (it returns how many iterations it ran) under perf, sampling this process."""
    perf = perf_binary()
    with tempfile.TemporaryDirectory(prefix="petseg-perf-") as tmp:
        data = Path(tmp) / "perf.data"
        record = subprocess.Popen(
            [perf, "record", "-e", "cpu-clock", "-F", str(FREQUENCY_HZ), "-p", str(os.getpid()),
             "-o", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(_ATTACH_S)
        if record.poll() is not None:
            raise PetsegError(f"perf could not sample this process ({_first_line(record.stderr.read())}); "
                              "run as root or allow it: sysctl kernel.perf_event_paranoid=1")
        start = time.perf_counter()
        iterations = loop(seconds)
        elapsed = time.perf_counter() - start
        record.send_signal(signal.SIGINT)
        try:
            record.wait(timeout=120)
        except subprocess.TimeoutExpired:
            record.kill()
            raise PetsegError("perf did not stop within 120 s; profile for fewer --seconds") from None
        return Samples(_report(perf, data), max(iterations, 1), elapsed)


def _report(perf: str, data: Path) -> dict[tuple[str, str], float]:
    """perf's per-function sample counts, as CPU milliseconds."""
    proc = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children", "--sort", "dso,sym",
                           "-F", "sample,dso,sym", "-q", "--percent-limit", "0", "-t", "\t"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise PetsegError(f"perf report failed ({_first_line(proc.stderr)}); "
                          "check that perf matches the running kernel")
    return parse_report(proc.stdout)


def parse_report(text: str) -> dict[tuple[str, str], float]:
    """``perf report -F sample,dso,sym -t '\\t'`` lines -> CPU ms by (library, function)."""
    found: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        symbol = parts[2].split("] ", 1)[-1]  # "[.] name" (user space) or "[k] name" (kernel)
        key = (parts[1], symbol)
        found[key] = found.get(key, 0.0) + int(parts[0]) * 1e3 / FREQUENCY_HZ
    return found


def _first_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[0] if lines else "no message"
