"""What this CPU can compute: fp16 arithmetic is a hardware feature, detected, never assumed.

XNNPACK computes in fp16 only on CPUs with native half-precision arithmetic: x86 with
AVX512-FP16 (Sapphire Rapids and later), ARMv8.2-A with the FP16 extension (``asimdhp`` on
aarch64, ``fphp``/``asimdhp`` on 32-bit ARM). Elsewhere a forced-fp16 run is refused or
emulated, so petseg reads the CPU's flags itself and skips fp16-arithmetic runs there.
"""

from __future__ import annotations

from pathlib import Path

# The /proc/cpuinfo flags that mean native fp16 arithmetic, in the order they are named.
FP16_FLAGS = ("avx512_fp16", "asimdhp", "fphp")
FP16_NEEDS = "needs AVX512-FP16 (x86) or ARMv8.2 FP16 arithmetic (asimdhp)"


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """Every feature flag the kernel lists (x86 ``flags``, ARM ``Features``), all cores together."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    found: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            found.update(value.split())
    return found


def fp16_arithmetic(cpuinfo: str | None = None) -> str | None:
    """The flag by which this CPU computes in fp16 (e.g. 'avx512_fp16'), or None where it cannot."""
    flags = cpu_flags(cpuinfo)
    return next((f for f in FP16_FLAGS if f in flags), None)
