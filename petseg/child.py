"""Run native-runtime work in a child process, so a crash there is an error here, not a death."""

from __future__ import annotations

import subprocess
import sys

from .errors import PetsegError


def run_module(module: str, args: list[str], what: str, fix: str, timeout: float) -> str:
    """Run ``python -m module args`` and return its last stdout line (its JSON answer).

    The child prints one line saying what went wrong and exits 1 on a Python
    error; a negative status means the native code crashed.
    """
    cmd = [sys.executable, "-m", module, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise PetsegError(f"{what}: no answer within {timeout:.0f} s; {fix}") from exc
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0:
        if proc.returncode > 0 and lines:
            why = lines[-1]
        else:
            why = f"the runtime crashed (signal {-proc.returncode})" if proc.returncode < 0 \
                else f"the runtime failed (exit {proc.returncode})"
        raise PetsegError(f"{what}: {why}; {fix}")
    if not lines:
        raise PetsegError(f"{what}: the runtime printed nothing; {fix}")
    return lines[-1]


def report_failure(exc: BaseException) -> None:
    """The child's side: one line naming the error, then exit status 1."""
    text = str(exc).strip()
    print(f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}")
    sys.exit(1)
