"""petseg-bench: latency and accuracy of TFLite (and ONNX) segmentation models, in one table.

Runs where the model will run: needs only the LiteRT runtime, NumPy and Pillow,
never TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from petseg.dataset import SOURCES_HELP
from petseg.errors import PetsegError
from petseg.quiet import VERBOSE_HELP, quiet_cli

from .accelerators import FP16_HELP, FP16_VARIANTS, parse_accelerators


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="petseg-bench", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("models", nargs="+", type=Path, metavar="MODEL", help=".tflite (or .onnx) files")
    p.add_argument("--data", default=None,
                   help=f"test data: {SOURCES_HELP} (default: what the model's metadata names)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N test images")
    p.add_argument("--no-accuracy", action="store_true", help="latency only")
    p.add_argument("--reference", type=Path, default=None,
                   help="model for agreement, ΔmIoU and speed-up (default: the fp32 sibling when present)")
    p.add_argument("--threads", default="1", help="comma-separated thread counts, one row each")
    p.add_argument("--accelerator", default="cpu",
                   help="comma-separated: cpu (the Interpreter with XNNPACK), gpu (LiteRT's GPU accelerator "
                        "through CompiledModel, fp16 allowed and fp32 enforced: two rows; needs a Vulkan "
                        "device, SwiftShader from Debian's chromium without a GPU)")
    p.add_argument("--fp16-arithmetic", choices=sorted(FP16_VARIANTS), default="auto", help=FP16_HELP)
    p.add_argument("--warmup", type=int, default=10, help="untimed runs before timing")
    p.add_argument("--runs", type=int, default=50, help="timed runs, at least")
    p.add_argument("--min-seconds", type=float, default=1.0, help="keep timing for at least this long")
    p.add_argument("--json", type=Path, help="write the results as JSON")
    p.add_argument("--csv", type=Path, help="write the results as CSV")
    p.add_argument("--markdown", type=Path, help="write the table as Markdown")
    p.add_argument("--plot", type=Path, help="PNG of latency against mIoU (needs matplotlib)")
    p.add_argument("--overlays", type=Path, help="PNG of sample predictions per variant")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    p.add_argument("--debug", action="store_true", help="show tracebacks (and what --verbose shows)")
    return p


def parse_threads(text: str) -> list[int]:
    try:
        counts = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise PetsegError(f"--threads {text!r} must be whole numbers >= 1, e.g. 1,2")
    cores = os.cpu_count() or 1
    if max(counts) > cores:
        print(f"note: {max(counts)} threads on {cores} cores oversubscribes the CPU; expect slower rows")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads = parse_threads(args.threads)
    args.accelerators = parse_accelerators(args.accelerator)
    if args.runs < 1 or args.warmup < 0 or args.min_seconds < 0:
        raise PetsegError("--runs must be >= 1, --warmup and --min-seconds >= 0")
    if args.limit is not None and args.limit < 1:
        raise PetsegError(f"--limit {args.limit} must be at least 1")
    from .session import BenchSession

    session = BenchSession(args, threads)
    session.run()
    return 0


def entry() -> None:
    sys.exit(quiet_cli(main, prog="petseg-bench"))


if __name__ == "__main__":
    entry()
