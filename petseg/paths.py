"""Paths a description records (the dataset, the source model), so that they resolve from any directory.

A path is recorded absolute. A relative one, read from a file, is taken relative to the file that
records it; files written before petseg recorded absolute paths hold the path as it was typed,
relative to the directory the command ran in, so when the file-relative reading names nothing
there, the working directory is tried as before.
"""

from __future__ import annotations

import os
from pathlib import Path

# Dataset sources that are names, not paths (dataset.load_dataset).
NAMED_SOURCES = ("synthetic", "tfds")


def is_path_source(source: str) -> bool:
    return source.split(":", 1)[0] not in NAMED_SOURCES


def absolute(path: str) -> str:
    """``path`` made absolute against the working directory, without resolving symlinks."""
    return os.path.normpath(os.path.abspath(path))


def recorded_source(source: str | None) -> str | None:
    """A dataset source as a description records it: a path absolute, a name as it is."""
    return absolute(source) if source and is_path_source(source) else source


def read_source(source: str | None, recorded_in: Path | str) -> str | None:
    """A dataset source read from the file ``recorded_in``, as a path that works from anywhere."""
    if not source or not is_path_source(source) or Path(source).is_absolute():
        return source
    return read_path(source, recorded_in)


def read_path(path: str, recorded_in: Path | str) -> str:
    """A recorded relative path: beside the recording file, else (older files) the working directory."""
    beside = absolute(os.path.join(os.path.dirname(absolute(str(recorded_in))), path))
    if not os.path.exists(beside) and os.path.exists(path):
        return absolute(path)
    return beside
