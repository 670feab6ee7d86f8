"""Write files so that a reader never sees a half-written one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import PetsegError


def ensure_dir(path: Path) -> Path:
    """Create an output directory, refusing a path that is a file or not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PetsegError(f"output directory {path} is an existing file; pass a directory with --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PetsegError(f"cannot create output directory {path}: {exc.strerror}; "
                          "choose a writable place with --out") from exc
    if not os.access(path, os.W_OK):
        raise PetsegError(f"output directory {path} is not writable; choose another with --out")
    return path


@contextlib.contextmanager
def output_dir(path: Path) -> Iterator[Path]:
    """``ensure_dir(path)`` for a run that may fail: the folders it had to create are removed again
    if the run raises before writing anything into them, so a refused run leaves no trace."""
    path = Path(path)
    created = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    try:
        yield ensure_dir(path)
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):  # not empty (something was written) or gone: keep it
                folder.rmdir()
        raise


@contextlib.contextmanager
def atomic_path(dest: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it over ``dest`` only on success.

    The temporary name starts with a dot and holds ``.partial`` so that a process
    killed mid-write leaves nothing that looks like a finished artifact. ``suffix``
    is for writers that insist on an extension (Keras wants ``.keras``).
    """
    dest = Path(dest)
    tmp_path = _temp_beside(dest, suffix)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); finished artifacts get the usual permissions.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(dest: Path, text: str) -> None:
    write_bytes(dest, text.encode("utf-8"))


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n").encode("utf-8")


def write_json(dest: Path, obj: Any) -> None:
    write_bytes(dest, json_bytes(obj))


def write_files(files: dict[Path, bytes]) -> None:
    """Publish several files together: all of them, or none if any write fails.

    Each file is written in full under a temporary name first (where a full disk or a
    file-size limit strikes); only then are they renamed into place, in the order given.
    If anything fails, the temporary files and whatever was already renamed are removed.
    """
    temps: dict[Path, Path] = {}
    renamed: list[Path] = []
    try:
        for dest, data in files.items():
            temps[Path(dest)] = tmp = _temp_beside(Path(dest))
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
        for dest, tmp in temps.items():
            os.replace(tmp, dest)
            renamed.append(dest)
    except BaseException:
        for path in [*temps.values(), *renamed]:
            path.unlink(missing_ok=True)
        raise


def _temp_beside(dest: Path, suffix: str = "") -> Path:
    ensure_dir(dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".partial{suffix}", dir=dest.parent)
    os.close(fd)
    return Path(tmp)


def _json_default(obj: Any) -> Any:
    # NumPy scalars and arrays turn up in metrics; JSON has no type for them.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
