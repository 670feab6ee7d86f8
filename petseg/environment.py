"""What ran where: versions and CPU model, recorded in every artifact and report."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from . import __version__
from .capability import cpu_flags

# Beside the widest SIMD, the extensions that send XNNPACK to other kernels: fp16 arithmetic
# (petseg's cpu-fp16 rows) and int8 matrix units (AMX tiles; Arm's dot product and i8mm). Two
# AVX-512 VNNI Xeons ran int8 at 0.24x and 0.39x ONNX Runtime fp32: the first one had AMX.
EXTENSIONS = ("avx_vnni", "avx512_fp16", "amx_int8", "asimdhp", "fphp", "asimddp", "i8mm", "sme")


def cpu_model(cpuinfo: str | None = None) -> str:
    """CPU name, core count, widest SIMD and kernel-choosing extensions: enough to tell two
    benchmark machines apart. ``cpuinfo``: /proc/cpuinfo's text (read when not given)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = cpu_flags(cpuinfo)
    simd = next((f for f in ("avx512_vnni", "avx512f", "avx2", "avx", "sse4_2") if f in flags), "")
    family = f"family {fields['cpu family']} model {fields['model']}" if "cpu family" in fields else ""
    parts = [fields.get("model name", platform.machine()), family, f"{os.cpu_count()} cores", simd,
             *(f for f in EXTENSIONS if f in flags)]
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
