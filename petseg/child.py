"""Run native-runtime work in a child process, so a crash there is an error here, not a death."""

from __future__ import annotations

import subprocess
import sys

from .errors import PetsegError
from .noise import NOISE  # the libraries' log lines say nothing about why a child died

# Python 3.10 has no -P: the child drops sys.path[0] (the working directory, '' under -c) itself,
# then runs the module as -m would.
_WITHOUT_CWD = ("import runpy, sys; sys.path.pop(0); sys.argv[0] = {module!r}; "
                "runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")


def python_module(module: str, safe_path: bool | None = None) -> list[str]:
    """The command that runs ``python -m module`` without the working directory on sys.path.

    ``python -m`` puts the working directory first, so in a checkout of petseg its ``petseg/``
    folder (which holds no ``benchmark/``) would shadow the installed package. ``safe_path``
    (default: this Python has -P) picks -P over the 3.10 form.
    """
    if safe_path is None:
        safe_path = sys.version_info >= (3, 11)
    if safe_path:
        return [sys.executable, "-P", "-m", module]
    return [sys.executable, "-c", _WITHOUT_CWD.format(module=module)]


def run_module(module: str, args: list[str], what: str, fix: str, timeout: float) -> str:
    """Run ``python -m module args`` and return its last stdout line (its JSON answer).

    The child prints one line saying what went wrong and exits 1 on a Python
    error; a negative status means the native code crashed.
    """
    cmd = [*python_module(module), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise PetsegError(f"{what}: no answer within {timeout:.0f} s; {fix}") from exc
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0:
        raise PetsegError(f"{what}: {_why(proc, lines)}; {fix}")
    if not lines:
        raise PetsegError(f"{what}: the runtime printed nothing; {fix}")
    return lines[-1]


def _why(proc: subprocess.CompletedProcess, lines: list[str]) -> str:
    """The child's own last word: its one-line report, else its last line on stderr (an import
    error before the report could run, or what a crash printed), and how it ended."""
    if proc.returncode > 0 and lines:
        return lines[-1]
    said = [ln.strip() for ln in (proc.stderr or "").splitlines()
            if ln.strip() and not NOISE.match(ln.encode())]
    how = f"the runtime crashed (signal {-proc.returncode})" if proc.returncode < 0 \
        else f"the runtime failed (exit {proc.returncode})"
    return f"{how}: {said[-1]}" if said else how


def report_failure(exc: BaseException) -> None:
    """The child's side: one line naming the error, then exit status 1."""
    text = str(exc).strip()
    print(f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}")
    sys.exit(1)
