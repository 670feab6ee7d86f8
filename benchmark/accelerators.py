"""Which accelerators each model runs on in a benchmark, and what the table says about them.

Rows per model: ``cpu`` is the Interpreter with XNNPACK in fp32 arithmetic (petseg's reference
path, kept for comparison); ``cpu-fp16`` the same CPU computing in fp16 through CompiledModel,
where the CPU has fp16 arithmetic; ``gpu`` and ``gpu-fp32`` LiteRT's GPU accelerator with fp16
allowed and with fp32 enforced. GPU rows run once, at the first thread count.
"""

from __future__ import annotations

from petseg.capability import FP16_NEEDS, fp16_arithmetic
from petseg.compiled import BACKENDS, check_backend
from petseg.errors import PetsegError
from petseg.vulkan import HOW_TO_GET_ONE

ACCELERATORS = ("cpu", "gpu")
GPU_BACKENDS = ("gpu", "gpu-fp32")
# --fp16-arithmetic: which variants also get a row computed in fp16 on the CPU.
FP16_VARIANTS = {"auto": ("fp16",), "all": ("fp16", "fp32"), "off": ()}
FP16_HELP = ("variants that also run with fp16 arithmetic on the CPU where it has it (AVX512-FP16, "
             "ARMv8.2 FP16): auto = fp16 files, all = fp16 and fp32, off = none")


def parse_accelerators(text: str) -> list[str]:
    names = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in ACCELERATORS]
    if not names or unknown:
        raise PetsegError(f"--accelerator {text!r}: choose from {', '.join(ACCELERATORS)} "
                          "(comma-separated, e.g. cpu,gpu)")
    return names


class Plan:
    """The backends of a run, checked against this machine before anything is measured."""

    def __init__(self, accelerators: list[str], fp16_mode: str) -> None:
        self.accelerators = accelerators
        self.fp16_variants = FP16_VARIANTS[fp16_mode] if "cpu" in accelerators else ()
        self.fp16_feature = fp16_arithmetic()
        if "gpu" in accelerators:
            check_backend(BACKENDS["gpu"])  # a missing Vulkan device: one line, before any work

    def backends(self, variant: str) -> list[str]:
        out = ["cpu"] if "cpu" in self.accelerators else []
        if variant in self.fp16_variants and self.fp16_feature:
            out.append("cpu-fp16")
        return out + (list(GPU_BACKENDS) if "gpu" in self.accelerators else [])

    def notes(self, variants: list[str]) -> list[str]:
        """What the table must say about fp16 arithmetic: that it ran, or why its rows are absent."""
        alone = ["gpu rows without cpu rows: no agreement with the CPU run (pass --accelerator cpu,gpu)"] \
            if "cpu" not in self.accelerators else []
        wanted = [v for v in dict.fromkeys(variants) if v in self.fp16_variants]
        if not wanted:
            return alone
        if self.fp16_feature is None:
            return [f"fp16 arithmetic: this CPU has none ({FP16_NEEDS}); no cpu-fp16 rows for "
                    f"{', '.join(wanted)}, whose cpu rows computed in fp32"]
        return [f"cpu-fp16 rows: XNNPACK computed in fp16 ({self.fp16_feature}) through CompiledModel; "
                "cpu rows: the Interpreter in fp32 arithmetic"]


def plain_device_error(exc: PetsegError) -> PetsegError:
    """A child's missing-device error as its own line, not as a fault of the model file."""
    text = str(exc)
    if HOW_TO_GET_ONE not in text:
        return exc
    return PetsegError(text[text.index("LiteRT's GPU accelerator"):text.index(HOW_TO_GET_ONE)]
                       + HOW_TO_GET_ONE)
