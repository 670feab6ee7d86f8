"""Pictures of a benchmark run: latency against mIoU, and sample overlays per variant."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from petseg import atomic
from petseg.dataset import Split
from petseg.overlay import blend, grid

from .measure import Measurement


def latency_vs_miou(records: list[dict], dest: Path, title: str) -> bool:
    """Scatter of median latency (x, log) against mIoU; marker area follows file size.

    Returns False when matplotlib is missing (it is optional on devices).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    points = [r for r in records if r["miou"] is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=90)
    for r in points:
        ax.scatter(r["median_ms"], r["miou"], s=40 + 12 * r["size_mb"], alpha=0.6)
        ax.annotate(f"{r['variant']} ({r['threads']}t, {r['size_mb']:.1f} MB)", (r["median_ms"], r["miou"]),
                    textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("median latency per image, ms (log scale)")
    ax.set_ylabel("test mIoU")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    with atomic.atomic_path(dest, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
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

