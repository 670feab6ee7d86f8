"""Every export on the clients apps run it in, against LiteRT in Python on the CPU (``make browser-check``).

    python -m petseg.benchmark.browser models            # petseg_{fp32,fp16,int8}.tflite in models/
    python -m petseg.benchmark.browser a.tflite b.tflite --images 16 --json reports/browser.json

Per model: LiteRT's GPU accelerator in Python (CompiledModel, fp16 allowed, as petseg-bench's gpu
row), MediaPipe Tasks web's ImageSegmenter on its CPU and GPU (WebGL) delegates, and LiteRT.js on
wasm and WebGPU, in headless Chromium. Each run's class masks are compared pixel by pixel with
the same file in LiteRT's Interpreter on the CPU, on test images; a run fails with its runtime's
own message, in one line. Needs no TensorFlow. Without a GPU, WebGL, WebGPU and Vulkan run on
SwiftShader (a software device): op support and numerics are the real delegates', speed is not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from petseg import atomic
from petseg.dataset import load_dataset
from petseg.errors import PetsegError
from petseg.modelfile import check_model_path, read_description, variant_file, variant_of
from petseg.quiet import VERBOSE_HELP, quiet_cli
from petseg.table import format_table

from .web_clients import CLIENTS, LITERT_BUILDS, one_line, run_clients

# The goals: agreement with the same file's CPU run.
GOALS = {"int8": 0.990}
FLOAT_GOAL = 0.995
HEADERS = ["runtime", "delegate", "variant", "result", "agreement %", "goal", "device / failure"]


def goal(variant: str) -> float:
    return GOALS.get(variant, FLOAT_GOAL)


def model_paths(given: list[Path], variants: list[str]) -> list[Path]:
    """Files as given; a folder stands for its petseg_<variant>.tflite exports."""
    paths: list[Path] = []
    for path in given:
        if path.is_dir():
            found = [variant_file(path, v) for v in variants if variant_file(path, v).is_file()]
            if not found:
                raise PetsegError(f"{path} holds no petseg_{{{','.join(variants)}}}.tflite; export "
                                  "them with petseg-export, or name the files")
            paths += found
        else:
            paths.append(check_model_path(path, (".tflite",)))
    return list(dict.fromkeys(paths))


def test_images(paths: list[Path], data: str | None, count: int) -> np.ndarray:
    """The first ``count`` test images of the dataset the models were made from, at their size."""
    from petseg.runtime import TFLiteModel

    size = TFLiteModel(paths[0]).image_size
    source = data or next((d.dataset for d in map(read_description, paths) if d and d.dataset), None)
    if not source:
        raise PetsegError("no --data given and no model's description names a dataset; pass --data")
    return load_dataset(source, size, splits=("test",), limit=count)["test"].images


def python_gpu(path: Path, images: np.ndarray) -> dict:
    """LiteRT's GPU accelerator in this process, as petseg-bench's gpu row runs it."""
    from petseg.compiled import CompiledSegmenter

    try:
        model = CompiledSegmenter(path, "gpu")
        return {"ok": True, "masks": model.predict(images), "device": model.adapter,
                "fullyAccelerated": model.model.is_fully_accelerated()}
    except PetsegError as exc:
        return {"ok": False, "error": str(exc)}


def _vulkan() -> bool:
    from petseg import vulkan

    vulkan.prepare()
    if not vulkan.device_configured():
        print(f"no LiteRT GPU rows: {vulkan.missing_device()}")
        return False
    return True


def rows(paths: list[Path], images: np.ndarray, answer: dict, gpu: dict[Path, dict]) -> list[dict]:
    from petseg.runtime import TFLiteModel

    out = []
    by_path: dict[str, list[dict]] = {}
    for result in answer["results"]:
        by_path.setdefault(result["path"], []).append(result)
    for path in paths:
        reference = TFLiteModel(path).predict(images)
        variant = _variant(path)
        runs = ([{"runtime": "litert-python", "delegate": "gpu", **gpu[path]}] if path in gpu else []) \
            + by_path.get(str(path), [])
        for run in runs:
            out.append(_row(path, variant, run, reference))
    return out


def _row(path: Path, variant: str, run: dict, reference: np.ndarray) -> dict:
    row = {"model": str(path), "variant": variant, "runtime": run["runtime"], "delegate": run["delegate"],
           "build": run.get("build"), "ok": bool(run.get("ok")), "goal": goal(variant),
           "device": run.get("device"), "fully_accelerated": run.get("fullyAccelerated"),
           "error": None if run.get("ok") else one_line(run.get("error", "no answer")),
           "agreement": None, "meets_goal": False}
    if row["ok"]:
        row["agreement"] = float(np.mean(run["masks"] == reference))
        row["meets_goal"] = row["agreement"] >= row["goal"]
    return row


def _variant(path: Path) -> str:
    description = read_description(path)
    return variant_of(path, description)


def table(results: list[dict]) -> str:
    names = {"litert-python": "LiteRT Python", **{c.runtime: c.name for c in CLIENTS}}
    cells = [[names[r["runtime"]], r["delegate"] + (" (jspi)" if r.get("build") == "jspi" else ""),
              r["variant"], "ok" if r["ok"] else "failed",
              f"{100 * r['agreement']:.2f}" if r["agreement"] is not None else "",
              f">= {100 * r['goal']:.1f} " + ("met" if r["meets_goal"] else "missed"),
              r["device"] if r["ok"] else r["error"]] for r in results]
    return format_table(HEADERS, cells)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m petseg.benchmark.browser", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path, metavar="MODEL",
                   help=".tflite files, or folders of exports")
    p.add_argument("--variants", default="fp32,fp16,int8", help="which exports a folder stands for")
    p.add_argument("--data", default=None, help="test images (default: the dataset the models name)")
    p.add_argument("--images", type=int, default=32, help="test images each client segments")
    p.add_argument("--litert-build", choices=LITERT_BUILDS, default="default",
                   help="LiteRT.js's WebAssembly build: default, or jspi (JS promise integration)")
    p.add_argument("--no-python-gpu", action="store_true", help="skip LiteRT's GPU accelerator in Python")
    p.add_argument("--timeout", type=float, default=600, help="seconds one client may take on one model")
    p.add_argument("--json", type=Path, help="write the rows as JSON")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    p.add_argument("--debug", action="store_true", help="show tracebacks (and what --verbose shows)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.images < 1:
        raise PetsegError(f"--images {args.images} must be at least 1")
    paths = model_paths(args.models, [v.strip() for v in args.variants.split(",") if v.strip()])
    images = test_images(paths, args.data, args.images)
    gpu = {} if args.no_python_gpu or not _vulkan() else {p: python_gpu(p, images) for p in paths}
    answer = run_clients(paths, images, build=args.litert_build, timeout_s=args.timeout)
    results = rows(paths, images, answer, gpu)
    print(f"{len(images)} test images; agreement: pixels given the class LiteRT's Interpreter gives them "
          f"on the CPU (same file); {answer['chromium']}")
    print(table(results))
    met = sum(r["meets_goal"] for r in results)
    print(f"{met} of {len(results)} runs succeed with agreement at or above their goal")
    if answer["blocked"]:
        print(f"blocked: requests to {', '.join(answer['blocked'])} (the browser reaches 127.0.0.1 only)")
    if args.json:
        atomic.write_json(args.json, {"images": len(images), "chromium": answer["chromium"],
                                      "blocked": answer["blocked"], "results": results})
    return 0 if met == len(results) else 1


if __name__ == "__main__":
    sys.exit(quiet_cli(main, prog="petseg.benchmark.browser"))
