"""What ran where: versions and CPU model, recorded in every artifact and report."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from . import __version__


def cpu_model() -> str:
    """CPU name, core count and widest SIMD: enough to tell two benchmark machines apart."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    simd = next((f for f in ("avx512_vnni", "avx512f", "avx2", "avx", "sse4_2") if f in flags), "")
    family = f"family {fields['cpu family']} model {fields['model']}" if "cpu family" in fields else ""
    parts = [fields.get("model name", platform.machine()), family, f"{os.cpu_count()} cores", simd]
    return ", ".join(p for p in parts if p)


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
