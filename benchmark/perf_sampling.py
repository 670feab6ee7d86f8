"""CPU samples of this process while it runs a loop: how much CPU time each function took (Linux perf).

LiteRT's Python packages carry no op profiler, and XNNPACK runs the whole graph as one delegate
node, so TFLite's own profiler would say only "DELEGATE". XNNPACK's microkernels keep their
names in LiteRT's library, so sampling the CPU names the work instead.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from petseg.errors import PetsegError

FREQUENCY_HZ = 1000  # samples per CPU-second; 4 kHz slowed a 16 ms inference by 17 % on a VM
_ACK_TIMEOUT_S = 30.0


@dataclass
class Samples:
    """CPU time by (library, function), over ``iterations`` runs of the loop in ``seconds`` of wall
    clock and ``cpu_seconds`` of this process's CPU time (all its threads) as the OS counted it."""

    cpu_ms: dict[tuple[str, str], float]
    iterations: int
    seconds: float
    cpu_seconds: float

    def per_iteration(self) -> dict[tuple[str, str], float]:
        return {key: ms / self.iterations for key, ms in self.cpu_ms.items()}


def perf_binary() -> str:
    """Linux perf, or a one-line error that says how to install it."""
    perf = shutil.which("perf")
    if perf is None:
        raise PetsegError("profiling a .tflite samples the CPU with Linux perf, which is not installed; "
                          "install it (Debian: apt-get install linux-perf; Ubuntu: linux-tools-generic)")
    return perf


def check_sampling() -> None:
    """Sample a short busy loop of this process: perf missing or refused is said before any model runs."""
    def spin(seconds: float) -> int:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            pass
        return 1

    sample(spin, 0.05)


def sample(loop: Callable[[float], int], seconds: float) -> Samples:
    """Run ``loop(seconds)`` (it returns how many iterations it ran) under perf, sampling this process.

    perf attaches with its events off and is switched on and off around the loop itself (perf's
    control pipe), so neither attaching nor stopping is in the samples.
    """
    perf = perf_binary()
    with tempfile.TemporaryDirectory(prefix="petseg-perf-") as tmp:
        data = Path(tmp) / "perf.data"
        with _recording(perf, data) as switch:
            switch("enable")
            start, cpu_start = time.perf_counter(), time.process_time()
            iterations = loop(seconds)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            switch("disable")
        return Samples(_report(perf, data), max(iterations, 1), elapsed, cpu)


@contextlib.contextmanager
def _recording(perf: str, data: Path) -> Iterator[Callable[[str], None]]:
    """perf record on this process, events off until switched on; always stopped on the way out."""
    ctl_read, ctl_write = os.pipe()
    ack_read, ack_write = os.pipe()
    # --no-buildid-cache: perf would otherwise copy every sampled library into ~/.debug.
    record = subprocess.Popen(
        [perf, "record", "-e", "cpu-clock", "-F", str(FREQUENCY_HZ), "--no-buildid-cache", "-D", "-1",
         "--control", f"fd:{ctl_read},{ack_write}", "-p", str(os.getpid()), "-o", str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, pass_fds=(ctl_read, ack_write))
    os.close(ctl_read)
    os.close(ack_write)

    def switch(command: str) -> None:
        try:
            os.write(ctl_write, f"{command}\n".encode())
            ready, _, _ = select.select([ack_read], [], [], _ACK_TIMEOUT_S)
            answered = bool(ready) and os.read(ack_read, 16).startswith(b"ack")
        except OSError:  # perf already gone: its end of the pipe is closed
            answered = False
        if not answered:
            raise _Refused

    refused = False
    try:
        yield switch
    except _Refused:
        refused = True
    finally:
        said = _stop(record)
        os.close(ctl_write)
        os.close(ack_read)
    if refused:
        raise PetsegError(f"perf could not sample this process ({_reason(said)}); "
                          "run as root, or allow it: sysctl kernel.perf_event_paranoid=1")
    if record.returncode not in (0, -signal.SIGINT):
        raise PetsegError(f"perf record failed ({_reason(said)}); check that perf matches the running kernel")


class _Refused(Exception):
    """perf did not answer on its control pipe (it could not attach, or it died)."""


def _stop(record: subprocess.Popen) -> str:
    """Stop perf record (SIGINT lets it write its file) and return what it said on stderr."""
    if record.poll() is None:
        record.send_signal(signal.SIGINT)
    try:
        _, err = record.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        record.kill()
        _, err = record.communicate()
    return err or ""


def _report(perf: str, data: Path) -> dict[tuple[str, str], float]:
    """perf's per-function CPU time, in milliseconds."""
    proc = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children", "--sort", "dso,sym",
                           "-F", "sample,period,dso,sym", "-q", "--percent-limit", "0", "-t", "\t"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise PetsegError(f"perf report failed ({_reason(proc.stderr)}); "
                          "check that perf matches the running kernel")
    return parse_report(proc.stdout)


def parse_report(text: str) -> dict[tuple[str, str], float]:
    """``perf report -F sample,period,dso,sym -t '\\t'`` lines -> CPU ms by (library, function).

    The period is the CPU time the samples stand for (ns for cpu-clock): right even where the
    kernel held perf below FREQUENCY_HZ (kernel.perf_event_max_sample_rate).
    """
    found: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) < 4 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        symbol = parts[3].split("] ", 1)[-1]  # "[.] name" (user space) or "[k] name" (kernel)
        key = (parts[2], symbol)
        found[key] = found.get(key, 0.0) + int(parts[1]) / 1e6
    return found


def _reason(text: str | None) -> str:
    """perf's own words: its lines after a bare 'Error:', joined, else 'no message'."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    lines = [ln for ln in lines if ln.rstrip(":").lower() != "error" and not ln.startswith("[ perf record")
             and not ln.startswith("Events ")]
    return " ".join(lines[:2])[:300] if lines else "no message"
