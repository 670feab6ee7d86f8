"""Side-by-side: TFLite variants against ONNX Runtime, exported from one trained model, timed in one run.

    python -m petseg.benchmark.compare --model models/petseg.keras

Exports fp32, fp16, int8 and the ONNX fp32 / static int8 variants (petseg-export,
in a child process: this module never imports TensorFlow), then benchmarks
them together at 1 and 2 threads with ONNX Runtime fp32 as the reference, so the
speed-up column is each variant's ratio to ONNX Runtime fp32.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from petseg.child import python_module
from petseg.errors import PetsegError
from petseg.modelfile import TRAINED_MODEL, variant_file
from petseg.quiet import VERBOSE_HELP, quiet_cli

# The variants compared (each file's suffix is petseg.modelfile's).
VARIANTS = ("fp32", "fp16", "int8", "onnx", "onnx-int8")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m petseg.benchmark.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("models") / TRAINED_MODEL)
    p.add_argument("--out", type=Path, default=Path("models/compare"))
    p.add_argument("--reports", type=Path, default=Path("reports"))
    p.add_argument("--threads", default="1,2")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--min-seconds", type=float, default=3.0, help="time each model for at least this long")
    p.add_argument("--limit", type=int, default=None, help="test images to score")
    p.add_argument("--skip-export", action="store_true", help="reuse the files already in --out")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    p.add_argument("--debug", action="store_true", help="show tracebacks (and what --verbose shows)")
    args = p.parse_args(argv)
    if not args.skip_export:
        cmd = [*python_module("petseg.export.cli"), "--model", str(args.model),
               "--quantize", ",".join(VARIANTS), "--out", str(args.out),
               *(flag for flag in ("--verbose", "--debug") if getattr(args, flag[2:]))]
        if subprocess.run(cmd).returncode != 0:
            raise PetsegError("the export step failed (see above); fix it, or rerun with --skip-export")
    files = [variant_file(args.out, v) for v in VARIANTS]
    from .cli import main as bench

    bench_args = [*map(str, files), "--reference", str(variant_file(args.out, "onnx")),
                  "--threads", args.threads, "--runs", str(args.runs), "--min-seconds", str(args.min_seconds),
                  "--markdown", str(args.reports / "runtimes.md"),
                  "--json", str(args.reports / "runtimes.json"), "--plot", str(args.reports / "runtimes.png")]
    if args.limit:
        bench_args += ["--limit", str(args.limit)]
    print("speed-up below = ONNX Runtime fp32 latency / variant latency, same thread count, same run")
    return bench(bench_args)


if __name__ == "__main__":
    sys.exit(quiet_cli(main, prog="petseg.benchmark.compare"))
