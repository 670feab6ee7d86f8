"""Where each model's time goes: CPU time and GMAC/s by kind of work, LiteRT beside ONNX Runtime.

    petseg-profile models/compare/petseg_fp32.tflite models/compare/petseg_onnx.onnx
    petseg-profile --arithmetic fp16 models/compare/petseg_fp16.tflite models/compare/petseg_onnx.onnx

A .tflite is sampled with Linux perf while it runs (XNNPACK's microkernels keep their names);
a .onnx is timed by ONNX Runtime's own node profiler. Both are summed into the same families
(convolution, depthwise convolution, elementwise, data movement, ...), so the table says which
kind of work one runtime does slower. Models run one after another, never together. Each
column after the first is also given as a ratio of the first model's time. With ``--arithmetic
fp16`` the .tflite files run as petseg-bench's fp16-arithmetic rows do (CompiledModel, XNNPACK
forced to fp16), on CPUs that compute in fp16 only.

At one thread (the default) both are the time per inference. At more threads a .tflite's is CPU
time summed over its threads and a .onnx's each node's wall clock, which do not compare: the two
runtimes are then refused together.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from petseg.atomic import write_text
from petseg.capability import FP16_NEEDS, fp16_arithmetic
from petseg.child import run_module
from petseg.environment import cpu_model
from petseg.errors import PetsegError
from petseg.modelfile import check_model_path
from petseg.quiet import VERBOSE_HELP, quiet_cli
from petseg.table import format_table, markdown_table

from .kernels import FAMILIES

# ONNX Runtime's profiler stops recording at about a million events (a few thousand runs).
MAX_SECONDS = 60.0
ARITHMETIC = ("fp32", "fp16")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="petseg-profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path, metavar="MODEL", help=".tflite or .onnx files")
    p.add_argument("--threads", type=int, default=1, help="threads per model (default 1, as the goals)")
    p.add_argument("--arithmetic", choices=ARITHMETIC, default="fp32",
                   help="how the .tflite files compute: fp32 (the Interpreter, default) or fp16 "
                        "(CompiledModel with XNNPACK forced to fp16, where the CPU has fp16 arithmetic); "
                        ".onnx files run as they are")
    p.add_argument("--seconds", type=float, default=5.0, help="how long each model runs profiled (default 5)")
    p.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    p.add_argument("--json", type=Path, default=None, help="also write every figure here")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    p.add_argument("--debug", action="store_true", help="show tracebacks (and what --verbose shows)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads < 1 or not (math.isfinite(args.seconds) and 0 < args.seconds <= MAX_SECONDS):
        raise PetsegError(f"--threads must be at least 1 and --seconds above 0 and at most {MAX_SECONDS}")
    paths = [check_model_path(p, (".tflite", ".onnx")) for p in args.models]
    kinds = {p.suffix == ".onnx" for p in paths}
    if args.threads > 1 and len(kinds) > 1:
        raise PetsegError("at more than one thread a .tflite's profile is CPU time and a .onnx's wall "
                          "clock, which do not compare; profile them in separate runs, or at --threads 1")
    if args.arithmetic == "fp16" and fp16_arithmetic() is None:
        raise PetsegError(f"--arithmetic fp16: this CPU has no fp16 arithmetic ({FP16_NEEDS}); "
                          "profile with --arithmetic fp32 on this machine")
    if False in kinds:
        from .perf_sampling import check_sampling

        check_sampling()  # before any model runs: perf missing or refused is said at once
    cpu = cpu_model()
    print(f"CPU: {cpu}; {args.threads} thread(s); .tflite in {args.arithmetic} arithmetic; "
          f"{args.seconds:g} s per model")
    profiles = []
    for path in paths:
        print(f"profiling {path} ...", flush=True)
        answer = run_module("petseg.benchmark.profile_worker",
                            [str(path), "--threads", str(args.threads), "--seconds", str(args.seconds),
                             "--arithmetic", args.arithmetic],
                            f"{path} cannot be profiled", "check that it is an exported segmentation model",
                            timeout=args.seconds * 10 + 600)
        profiles.append({"model": str(path), **json.loads(answer)})
    headers, rows = family_table(profiles)
    print(format_table(headers, rows))
    for profile in profiles:
        print(f"\n{_label(profile)} ({profile['how']}), the most time:")
        print(format_table(*top_table(profile)))
    if args.markdown:
        write_text(args.markdown, markdown(profiles, cpu, args.threads))
    if args.json:
        figures = {"cpu": cpu, "threads": args.threads, "profiles": profiles}
        write_text(args.json, json.dumps(figures, indent=1))
    return 0


def family_table(profiles: list[dict]) -> tuple[list[str], list[list[str]]]:
    """One row per family; per model its CPU ms per inference, GMAC/s and (after the first) the ratio."""
    headers = ["family"]
    for i, p in enumerate(profiles):
        headers += [f"{_label(p)} ms", "GMAC/s"] + ([f"x {_label(profiles[0])}"] if i else [])
    used = [f for f in FAMILIES if any(f in p["families"] for p in profiles)]
    rows = [[family, *_cells(profiles, lambda p, f=family: p["families"].get(f, {}))] for family in used]
    rows.append(["all (CPU time)", *_cells(profiles, _total)])
    rows.append(["wall clock per inference", *_cells(profiles, lambda p: {"ms": p["wall_ms"]}, rate=False)])
    rows.append(["wall clock, not profiled", *_cells(profiles, lambda p: {"ms": p["plain_ms"]}, rate=False)])
    return headers, rows


def _label(profile: dict) -> str:
    """The file's name, and the arithmetic where it was not the file's own (fp16 forced)."""
    name = Path(profile["model"]).name
    return f"{name} in fp16" if profile.get("arithmetic") == "fp16" else name


def _total(profile: dict) -> dict:
    fams = profile["families"].values()
    return {"ms": sum(f["ms"] for f in fams), "macs": sum(f.get("macs", 0) for f in fams)}


def _cells(profiles: list[dict], pick, rate: bool = True) -> list[str]:
    cells: list[str] = []
    first = pick(profiles[0]).get("ms")
    for i, p in enumerate(profiles):
        entry = pick(p)
        ms, macs = entry.get("ms"), entry.get("macs", 0)
        cells.append("" if ms is None else f"{ms:.3f}")
        cells.append(f"{macs / ms / 1e6:.1f}" if rate and ms and macs else "")
        if i:
            cells.append(f"{ms / first:.2f}" if ms and first else "")
    return cells


def top_table(profile: dict) -> tuple[list[str], list[list[str]]]:
    rows = [[t["name"][:72], t["family"], t["variant"], f"{t['ms']:.3f}"] for t in profile["top"]]
    return ["function or node", "family", "kernel variant (ISA)", "ms per inference"], rows


def markdown(profiles: list[dict], cpu: str, threads: int) -> str:
    parts = [f"# Where the time goes\n\nCPU: {cpu}; {threads} thread(s). "
             "Milliseconds per inference by kind of work: a .tflite's CPU time sampled with perf, a "
             ".onnx's node times from ONNX Runtime's profiler (at one thread both are the time per "
             "inference); GMAC/s counts each graph's own multiply-accumulates.\n",
             markdown_table(*family_table(profiles))]
    for profile in profiles:
        parts.append(f"\n## {_label(profile)} ({profile['runtime']}, {profile['how']})\n")
        parts.append(markdown_table(*top_table(profile)))
    return "\n".join(parts) + "\n"


def entry() -> None:
    sys.exit(quiet_cli(main, prog="petseg-profile"))


if __name__ == "__main__":
    entry()
