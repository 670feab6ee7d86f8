"""The benchmark table and its JSON, CSV and Markdown forms."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from petseg import atomic
from petseg.environment import cpu_model, versions
from petseg.table import format_table

from .measure import Measurement

HEADERS = ["variant", "threads", "size MB", "mIoU", "pixel acc", "ΔmIoU", "agreement", "median ms",
           "p90 ms", "speed-up", "GMAC/s", "outside delegate"]


def rows(results: list[Measurement]) -> list[dict]:
    """One flat record per model and thread count, the figures the table and files share."""
    out = []
    for m in results:
        lat, acc = m.latency, m.accuracy
        out.append({
            "variant": m.variant, "model": str(m.path), "threads": m.threads,
            "size_mb": m.path.stat().st_size / 1e6,
            "miou": acc.get("mean_iou"), "pixel_accuracy": acc.get("pixel_accuracy"),
            "per_class_iou": acc.get("per_class_iou"),
            "miou_delta_points": acc.get("miou_delta_points"), "agreement": acc.get("agreement"),
            "speedup": acc.get("speedup"),
            "gmacs": lat["macs"] / 1e9 if lat["macs"] else None,
            "gmac_per_s": lat["macs"] / lat["median_ms"] / 1e6 if lat["macs"] else None,
            "outside_delegate": lat["outside_delegate"],
            **{k: lat[k] for k in ("runtime", "init_ms", "first_ms", "runs", "median_ms", "mean_ms",
                                   "p90_ms", "p99_ms", "std_ms", "min_ms", "peak_mb", "input_dtype")},
        })
    return out


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _outside(ops: dict) -> str:
    return ", ".join(f"{name}x{n}" for name, n in sorted(ops.items())) if ops else "none"


def cells(records: list[dict]) -> list[list[str]]:
    return [[
        r["variant"], str(r["threads"]), f"{r['size_mb']:.2f}", _fmt(r["miou"], ".4f"),
        _fmt(r["pixel_accuracy"], ".4f"), _fmt(r["miou_delta_points"], "+.2f"),
        _fmt(None if r["agreement"] is None else 100 * r["agreement"], ".2f"),
        f"{r['median_ms']:.2f}", f"{r['p90_ms']:.2f}", _fmt(r["speedup"], ".2f"),
        _fmt(r["gmac_per_s"], ".1f"), _outside(r["outside_delegate"]),
    ] for r in records]


def table(records: list[dict]) -> str:
    return format_table(HEADERS, cells(records))


def environment(runtime: str) -> dict:
    return {"cpu": cpu_model(), "runtime": runtime, **versions("ai-edge-litert", "onnxruntime")}


def write_json(dest: Path, records: list[dict], env: dict, settings: dict) -> None:
    atomic.write_json(dest, {"environment": env, "settings": settings, "results": records})


def write_csv(dest: Path, records: list[dict]) -> None:
    buffer = io.StringIO()
    fields = [k for k in records[0] if k not in ("per_class_iou", "outside_delegate")]
    writer = csv.DictWriter(buffer, fieldnames=[*fields, "outside_delegate"], extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow({**r, "outside_delegate": _outside(r["outside_delegate"])})
    atomic.write_text(dest, buffer.getvalue())


def write_markdown(dest: Path, records: list[dict], env: dict, settings: dict) -> None:
    lines = [" | ".join(HEADERS), " | ".join("---" for _ in HEADERS)]
    lines += [" | ".join(row) for row in cells(records)]
    head = (f"CPU: {env['cpu']}; runtime: {env['runtime']}; {settings['images']} test images from "
            f"{settings['data']}; medians of at least {settings['runs']} runs after {settings['warmup']} "
            "warm-up runs. ΔmIoU in points and agreement in % are against the reference "
            f"({settings['reference']}); speed-up is reference latency / variant latency.\n\n")
    atomic.write_text(dest, head + "\n".join(f"| {ln} |" for ln in lines) + "\n")

