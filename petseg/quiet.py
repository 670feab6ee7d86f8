"""Quiet output: petseg's own lines, not its libraries' chatter (``--verbose`` or ``--debug`` shows it).

TensorFlow and LiteRT print from native code straight to file descriptor 2: start-up notes logged
before absl is initialised, the CUDA probe on hosts without a GPU, "Created TensorFlow Lite XNNPACK
delegate for CPU." at every model load, the converter's "fully_quantize: 0, ..." lines. Python's
logging cannot reach those, so a CLI sends its fd 2 through a small filter process that drops them
and passes everything else (petseg's errors, warnings, progress bars) on at once. A process, not a
thread: a native library that floods stderr while holding the GIL cannot stall it, and whatever a
crash prints still gets through.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence

from .child import python_module
from .errors import debug_enabled, run_cli
from .noise import NOISE

# Python loggers and warning sources of the same libraries.
LIBRARY_LOGGERS = ("absl", "tensorflow", "keras", "tf2onnx", "onnxruntime", "h5py")
LIBRARY_MODULES = r"(absl|tensorflow|tf_keras|keras|tf2onnx|onnx|onnxruntime|google|h5py)(\.|$)"
VERBOSE_HELP = "also show the libraries' own log lines (TensorFlow, LiteRT, the converter)"
# A line still open after this long is a progress bar or a prompt, not the start of a log line.
PARTIAL_LINE_S = 0.1


def verbose_requested(argv: Sequence[str] | None = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return "--verbose" in argv or debug_enabled(argv)


def quiet_libraries() -> None:
    """Silence the libraries' Python-level warnings and log lines, and their C++ logging."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read when TensorFlow loads
    warnings.filterwarnings("ignore", module=LIBRARY_MODULES)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Route this process's fd 2 (and its children's) through the filter process."""
    sys.stderr.flush()
    real = os.dup(2)
    try:
        filt = subprocess.Popen(python_module("petseg.quiet"), stdin=subprocess.PIPE,
                                stdout=real, stderr=subprocess.DEVNULL, close_fds=True)
    except OSError:  # no process to spare: better chatter than nothing
        os.close(real)
        yield
        return
    os.dup2(filt.stdin.fileno(), 2)
    filt.stdin.close()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # the filter sees end-of-file once children holding fd 2 are gone too
        os.close(real)
        with contextlib.suppress(subprocess.TimeoutExpired):
            filt.wait(timeout=10)


def quiet_cli(main: Callable[[Sequence[str] | None], int], prog: str) -> int:
    """Run a CLI entry point (see errors.run_cli) with the libraries' chatter filtered out."""
    if verbose_requested():
        return run_cli(main, prog=prog)
    quiet_libraries()
    with filtered_stderr():
        return run_cli(main, prog=prog)


def _pump(source: int, sink: int) -> None:
    """Copy ``source`` to ``sink`` line by line, dropping NOISE; open lines pass after a pause."""
    pending = b""
    while True:
        ready, _, _ = select.select([source], [], [], PARTIAL_LINE_S if pending else None)
        if not ready:
            _emit(sink, pending)
            pending = b""
            continue
        chunk = os.read(source, 65536)
        if not chunk:
            break
        *lines, pending = re.split(rb"(?<=[\r\n])", pending + chunk)
        for line in lines:
            if not NOISE.match(line):
                _emit(sink, line)
    if pending and not NOISE.match(pending):
        _emit(sink, pending)


def _emit(sink: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(sink, data):]
        except OSError:  # the terminal went away: nothing left to show anything on
            return


if __name__ == "__main__":
    # Ctrl-C goes to the whole process group; the filter lives until the CLI's last line is out.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _pump(sys.stdin.fileno(), sys.stdout.fileno())
