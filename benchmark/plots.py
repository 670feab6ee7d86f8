"""Pictures of a benchmark run: latency against mIoU, and sample overlays per variant.

Both latency plots are legend-keyed rather than labelled point by point (labels of near-equal
variants overlap), give the log latency axis plain millisecond ticks, and never let the mIoU
axis span less than MIN_MIOU_SPAN, so that a 0.1-point difference stays a small one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from petseg import atomic
from petseg.overlay import blend, grid
from petseg.split import Split

from .measure import Measurement

MIN_MIOU_SPAN = 0.06  # 6 mIoU points: the smallest height the mIoU axis shows
MARKERS = "osD^vP*X"
NICE_MS = (1, 1.5, 2, 3, 4, 5, 7)  # latency ticks per decade


def _pyplot():
    """matplotlib's pyplot on the file backend, or None when matplotlib is missing (optional on devices)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def latency_ticks(low: float, high: float) -> list[float]:
    """Round millisecond values to label a log axis from ``low`` to ``high``: at least two."""
    decades = range(int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1)
    candidates = sorted(m * 10.0 ** d for d in decades for m in NICE_MS)
    inside = [t for t in candidates if low <= t <= high]
    if len(inside) >= 2:
        step = max(1, len(inside) // 6)  # at most about six labels
        return inside[::step]
    below = max(t for t in candidates if t < low)
    above = min(t for t in candidates if t > high)
    return [below, *inside, above]


def _latency_axis(ax, values: list[float], label: str) -> None:
    import matplotlib.ticker as ticker

    ticks = latency_ticks(min(values) / 1.15, max(values) * 1.15)
    ax.set_xscale("log")
    ax.set_xlim(min(ticks[0], min(values) / 1.15), max(ticks[-1], max(values) * 1.15))
    ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))  # no "3x10^0"
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel(label)


def miou_limits(values: list[float], min_span: float = MIN_MIOU_SPAN) -> tuple[float, float]:
    """The mIoU axis range: the data with a margin, never narrower than ``min_span``."""
    low, high = min(values), max(values)
    span = max(high - low, min_span) * 1.15
    middle = (low + high) / 2
    return max(0.0, middle - span / 2), min(1.0, middle + span / 2)


def _miou_axis(ax, values: list[float]) -> None:
    ax.set_ylim(*miou_limits(values))
    ax.set_ylabel("test mIoU")
    ax.grid(alpha=0.3, which="both")


def _save(fig, plt, dest: Path) -> None:
    fig.tight_layout()
    with atomic.atomic_path(dest, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def _series(ax, series: list[dict], colour, marker_of) -> None:
    """One series: its points joined by a faint line, each point's marker from ``marker_of``."""
    series = sorted(series, key=lambda r: r["median_ms"])
    ax.plot([r["median_ms"] for r in series], [r["miou"] for r in series], color=colour, lw=1.2, alpha=0.5)
    for r in series:
        ax.scatter(r["median_ms"], r["miou"], color=colour, s=50, zorder=3, marker=marker_of(r))


def _key(plt, colours: dict, markers: dict) -> list:
    """Legend handles: a line per colour (series), a grey marker per marker kind."""
    lines = [plt.Line2D([], [], color=c, lw=2, label=label) for label, c in colours.items()]
    return lines + [plt.Line2D([], [], color="grey", ls="", marker=m, label=label)
                    for label, m in markers.items()]


def latency_vs_miou(records: list[dict], dest: Path, title: str) -> bool:
    """Median latency (x, log) against mIoU: one colour per variant, one marker per thread count.

    Returns False when matplotlib is missing.
    """
    plt = _pyplot()
    points = [r for r in records if r["miou"] is not None]
    if plt is None or not points:
        return plt is not None
    palette = plt.get_cmap("tab10").colors
    variants = list(dict.fromkeys(r["variant"] for r in points))
    threads = sorted({r["threads"] for r in points})
    marker = {t: MARKERS[i % len(MARKERS)] for i, t in enumerate(threads)}
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    colours = {}
    for i, variant in enumerate(variants):
        series = [r for r in points if r["variant"] == variant]
        colours[f"{variant} ({series[0]['size_mb']:.1f} MB)"] = palette[i % len(palette)]
        _series(ax, series, palette[i % len(palette)], lambda r: marker[r["threads"]])
    _latency_axis(ax, [r["median_ms"] for r in points], "median latency per image, ms (log scale)")
    _miou_axis(ax, [r["miou"] for r in points])
    threads_key = {f"{t} thread{'s' if t > 1 else ''}": marker[t] for t in threads}
    ax.legend(handles=_key(plt, colours, threads_key), fontsize=8, loc="best", framealpha=0.9)
    ax.set_title(title, fontsize=9)
    _save(fig, plt, dest)
    return True


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency, mIoU) points no other point beats on both, fastest first."""
    front: list[tuple[float, float]] = []
    for latency, miou in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or miou > front[-1][1]:
            front.append((latency, miou))
    return front


def pareto_plot(records: list[dict], dest: Path, title: str) -> bool:
    """One panel per thread count: one series (colour) per model size, one marker per variant,
    and the Pareto front dashed. ``records`` carry ``size``, ``variant``, ``threads``,
    ``median_ms`` and ``miou``. Returns False when matplotlib is missing.
    """
    plt = _pyplot()
    points = [r for r in records if r["miou"] is not None]
    if plt is None or not points:
        return plt is not None
    palette = plt.get_cmap("tab10").colors
    colour = {s: palette[i % len(palette)] for i, s in enumerate(dict.fromkeys(r["size"] for r in points))}
    marker = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(dict.fromkeys(r["variant"] for r in points))}
    threads = sorted({r["threads"] for r in points})
    fig, axes = plt.subplots(1, len(threads), figsize=(4.2 * len(threads) + 1, 4.2), dpi=100,
                             sharey=True, squeeze=False)
    for ax, t in zip(axes[0], threads):
        mine = [r for r in points if r["threads"] == t]
        for size in colour:
            _series(ax, [r for r in mine if r["size"] == size], colour[size], lambda r: marker[r["variant"]])
        front = pareto_front([(r["median_ms"], r["miou"]) for r in mine])
        ax.step(*zip(*front), where="post", color="black", ls="--", lw=0.8, alpha=0.6)
        _latency_axis(ax, [r["median_ms"] for r in mine],
                      f"median ms per image, {t} thread{'s' if t > 1 else ''} (log)")
        _miou_axis(ax, [r["miou"] for r in points])
        ax.label_outer()
    handles = _key(plt, colour, marker)
    handles.append(plt.Line2D([], [], color="black", ls="--", lw=0.8, label="Pareto front"))
    axes[0][-1].legend(handles=handles, fontsize=8, loc="lower right", framealpha=0.9)
    fig.suptitle(title, fontsize=9)
    _save(fig, plt, dest)
    return True


def overlays(results: list[Measurement], split: Split, dest: Path, samples: int = 4) -> None:
    """Grid: photo | truth | each variant's prediction, for a few test images."""
    shown = [m for m in results if m.predictions is not None]
    pick = np.linspace(0, len(split) - 1, min(samples, len(split))).astype(int)
    rows = [[split.images[i], blend(split.images[i], split.masks[i])]
            + [blend(split.images[i], m.predictions[i]) for m in shown] for i in pick]
    titles = ["photo", "truth", *(m.variant for m in shown)]
    image = grid(rows, titles)
    with atomic.atomic_path(dest, suffix=".png") as tmp:
        image.save(tmp)
