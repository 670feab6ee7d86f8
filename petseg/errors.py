"""User-facing errors and the wrapper that turns them into one-line CLI failures."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence


class PetsegError(Exception):
    """A problem with the user's input: the message names it and says how to fix it."""


def debug_enabled(argv: Sequence[str] | None = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get("PETSEG_DEBUG", "") not in ("", "0")


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None,
            prog: str | None = None) -> int:
    """Run a CLI entry point: bad input becomes one line on stderr and exit status 2.

    Tracebacks are for bug reports, so they appear only with ``--debug`` or
    ``PETSEG_DEBUG=1``.
    """
    prog = prog or os.path.basename(sys.argv[0]) or "petseg"
    try:
        return main(argv)
    except PetsegError as exc:
        if debug_enabled(argv):
            traceback.print_exc()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if debug_enabled(argv):
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{prog}: error: {exc.strerror or exc}{where} (check the path, its permissions "
              "and the free disk space)", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - last line of defence for a CLI
        if debug_enabled(argv):
            traceback.print_exc()
        print(f"{prog}: internal error: {type(exc).__name__}: {exc} "
              "(rerun with --debug and report the traceback)", file=sys.stderr)
        return 1
