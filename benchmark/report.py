"""The benchmark table and its JSON, CSV and Markdown forms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from petseg import atomic
from petseg.environment import cpu_model, versions
from petseg.graph import MAC_OPS
from petseg.table import csv_text, format_ops, format_table, format_value, markdown_table

from .measure import Measurement

HEADERS = ["variant", "accelerator", "threads", "size MB", "mIoU", "pixel acc", "ΔmIoU", "agreement",
           "median ms", "p90 ms", "speed-up", "GMAC/s", "memory MB", "outside delegate", "vs CPU run"]
SOFTWARE_MARK = " (sw)"  # latency on a software GPU device: not a GPU's speed
UNSTABLE = "*"  # marks the latencies of a row whose timing stayed unstable (stability.py)


def rows(results: list[Measurement]) -> list[dict]:
    """One flat record per model and thread count, the figures the table and files share."""
    out, labels = [], _labels(results)
    for m in results:
        lat, acc = m.latency, m.accuracy
        out.append({
            "variant": labels[m.path], "accelerator": m.backend, "model": str(m.path), "threads": m.threads,
            "size_mb": m.path.stat().st_size / 1e6,
            "miou": acc.get("mean_iou"), "pixel_accuracy": acc.get("pixel_accuracy"),
            "per_class_iou": acc.get("per_class_iou"),
            "miou_delta_points": acc.get("miou_delta_points"), "agreement": acc.get("agreement"),
            "speedup": acc.get("speedup"),
            "gmacs": lat["macs"] / 1e9 if lat["macs"] else None,
            "gmac_per_s": lat["macs"] / lat["median_ms"] / 1e6 if lat["macs"] else None,
            "outside_delegate": lat["outside_delegate"],
            **{k: acc.get(k) for k in ("cpu_agreement", "cpu_miou_delta_points")},
            **{k: lat.get(k) for k in ("fully_accelerated", "adapter", "software_device", "fp16_arithmetic")},
            **{k: lat[k] for k in ("runtime", "init_ms", "first_ms", "runs", "median_ms", "mean_ms",
                                   "p90_ms", "p99_ms", "std_ms", "min_ms", "input_dtype")},
            # Resident memory the model added to its process: after loading, after the first inference.
            **{k: lat.get(k) for k in ("memory_load_mb", "memory_first_mb", "stability")},
        })
    return out


def _labels(results: list[Measurement]) -> dict:
    """Each model's variant name, or its file name where several files are the same variant."""
    by_variant: dict[str, set] = {}
    for m in results:
        by_variant.setdefault(m.variant, set()).add(m.path)
    stems = [m.path.stem for m in results]

    def name(m: Measurement) -> str:
        if len(by_variant[m.variant]) == 1:
            return m.variant
        clash = len({p for p, s in zip((r.path for r in results), stems) if s == m.path.stem}) > 1
        return f"{m.path.parent.name}/{m.path.stem}" if clash else m.path.stem

    return {m.path: name(m) for m in results}


def _outside(ops: dict, fully_accelerated: bool | None) -> str:
    if not ops and fully_accelerated is False:  # CompiledModel tells no more than this
        return "some (unnamed)"
    return format_ops(ops)


def _vs_cpu(r: dict) -> str:
    if r.get("cpu_agreement") is None:
        return ""
    return f"{100 * r['cpu_agreement']:.2f}% {r['cpu_miou_delta_points']:+.2f}"


def plotted(records: list[dict]) -> list[dict]:
    """The records a latency plot may show (not software-GPU latency), each backend its own label."""
    return [{**r, "variant": r["variant"] if r.get("accelerator", "cpu") == "cpu"
             else f"{r['variant']} {r['accelerator']}"} for r in records if not r.get("software_device")]


def unstable(record: dict) -> bool:
    return (record.get("stability") or {}).get("stable") is False


def cells(records: list[dict]) -> list[list[str]]:
    def ms(r: dict, key: str) -> str:
        return f"{r[key]:.2f}{UNSTABLE if unstable(r) else ''}"

    fmt = format_value
    return [[
        r["variant"], r.get("accelerator", "cpu"), str(r["threads"]), f"{r['size_mb']:.2f}",
        fmt(r["miou"], ".4f"),
        fmt(r["pixel_accuracy"], ".4f"), fmt(r["miou_delta_points"], "+.2f"),
        fmt(None if r["agreement"] is None else 100 * r["agreement"], ".2f"),
        ms(r, "median_ms") + (SOFTWARE_MARK if r.get("software_device") else ""), ms(r, "p90_ms"),
        fmt(r["speedup"], ".2f"), "" if r.get("software_device") else fmt(r["gmac_per_s"], ".1f"),
        fmt(r.get("memory_first_mb"), ".1f"), _outside(r["outside_delegate"], r.get("fully_accelerated")),
        _vs_cpu(r),
    ] for r in records]


def table(records: list[dict], notes: Sequence[str] = ()) -> str:
    """The table, and under it a note for each thing the measurements flag (see flags)."""
    return "\n".join([format_table(HEADERS, cells(records)),
                      *(f"note: {n}" for n in [*notes, *flags(records)])])


def flags(records: list[dict]) -> list[str]:
    """What the measurements warn of, never a verdict fixed in advance.

    - convolutions the delegate left to TFLite's reference kernels (the dynamic-range variant's
      depthwise convs, for one), which is where a variant's time goes;
    - a variant slower than the reference at the same thread count, when even its fastest run
      took longer than the reference's median (slower beyond the run-to-run noise);
    - timing that stayed unstable however often it was measured (stability.py), marked in the table.
    """
    notes = []
    for r in records:
        if unstable(r):
            notes.append(_timing_note(r))
        heavy = {op: n for op, n in r["outside_delegate"].items() if op in MAC_OPS}
        if heavy:
            notes.append(f"{row_name(r)}: {format_ops(heavy)} ran outside XNNPACK, on TFLite's reference "
                         "kernels")
        speedup = r["speedup"]
        if speedup is not None and speedup < 1 and r["min_ms"] > speedup * r["median_ms"]:
            notes.append(f"{row_name(r)} at {r['threads']} thread(s) runs at {speedup:.2f}x the "
                         "reference's speed: even its fastest run was slower than the reference's median")
        notes += accelerator_flags(r)
    return list(dict.fromkeys(notes))  # the ops note would repeat for every thread count


def row_name(r: dict) -> str:
    """The variant, and its accelerator where it is not today's CPU path (an fp16 file has both)."""
    accelerator = r.get("accelerator", "cpu")
    return r["variant"] if accelerator == "cpu" else f"{r['variant']} ({accelerator})"


def accelerator_flags(r: dict) -> list[str]:
    """What a CompiledModel row's placement says: a software GPU, a graph not fully accelerated."""
    notes = []
    if r.get("software_device"):
        notes.append(f"GPU rows ran on {r['adapter']}, a software Vulkan device: their latency (marked "
                     "(sw)) says nothing about a GPU's speed; placement and numerics are the real delegate's")
    if r.get("accelerator", "cpu") != "cpu" and r.get("fully_accelerated") is False:
        notes.append(f"{r['variant']} on {r['accelerator']}: not fully accelerated; some ops ran on the CPU "
                     "(CompiledModel does not say which)")
    return notes


def _timing_note(r: dict) -> str:
    s = r["stability"]
    return (f"{UNSTABLE} {r['variant']} at {r['threads']} thread(s): timing unstable in "
            f"{s.get('attempts', 1)} measurement(s) ({'; '.join(s['problems'])}): the machine's other "
            "load is in these figures; compare them with care, or rerun on an idle machine")


def environment(runtime: str) -> dict:
    return {"cpu": cpu_model(), "runtime": runtime, **versions("ai-edge-litert", "onnxruntime")}


def write_json(dest: Path, records: list[dict], env: dict, settings: dict, notes: Sequence[str] = ()) -> None:
    atomic.write_json(dest, {"environment": env, "settings": settings, "results": records,
                             "notes": [*notes, *flags(records)]})


def write_csv(dest: Path, records: list[dict]) -> None:
    fields = [k for k in records[0] if k not in ("per_class_iou", "outside_delegate", "stability")]
    rows = [{**r, "timing_unstable": _problems(r), "outside_delegate": format_ops(r["outside_delegate"])}
            for r in records]
    atomic.write_text(dest, csv_text(rows, [*fields, "timing_unstable", "outside_delegate"]))


def _problems(r: dict) -> str:
    return "; ".join((r.get("stability") or {}).get("problems") or []) if unstable(r) else ""


def write_markdown(dest: Path, records: list[dict], env: dict, settings: dict,
                   notes: Sequence[str] = ()) -> None:
    head = (f"CPU: {env['cpu']}; runtime: {env['runtime']}; {settings['images']} test images from "
            f"{settings['data']}; medians of at least {settings['runs']} runs after {settings['warmup']} "
            "warm-up runs. ΔmIoU in points and agreement in % are against the reference "
            f"({settings['reference']}); speed-up is reference latency / variant latency.\n\n")
    listed = "".join(f"- {n}\n" for n in [*notes, *flags(records)])
    body = markdown_table(HEADERS, cells(records)) + "\n"
    atomic.write_text(dest, head + body + ("\n" + listed if listed else ""))

