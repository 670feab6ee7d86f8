"""A PNG of the training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from petseg import atomic  # noqa: E402


def plot_history(history: list[dict], dest: Path, best_epoch: int | None = None) -> None:
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=90)
    for ax, key, title in ((axes[0], "loss", "cross-entropy"), (axes[1], "accuracy", "pixel accuracy")):
        ax.plot(epochs, [row[key] for row in history], label="train")
        if history and f"val_{key}" in history[0]:
            ax.plot(epochs, [row[f"val_{key}"] for row in history], label="validation")
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic.atomic_path(dest, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
