"""What ran where: versions and CPU model, recorded in every artifact and report."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from . import __version__


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions(*packages: str) -> dict[str, str | None]:
    """petseg, Python and NumPy versions plus any ``packages`` asked for."""
    found = {"petseg": __version__, "python": sys.version.split()[0], "numpy": package_version("numpy")}
    found.update({name: package_version(name) for name in packages})
    return found
