"""Per-epoch checkpoints that survive ``kill -9``, and resuming from them.

Each epoch writes ``epoch_<n>.keras`` (weights and optimizer state) and, when
validation loss improves, ``best_<n>.keras``; ``state.json`` is written last
and names both. A kill at any moment leaves ``state.json`` pointing at complete
files, so a resume loses at most the epoch in progress.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import keras

from petseg import atomic

STATE = "state.json"


class EpochCheckpoint(keras.callbacks.Callback):
    def __init__(self, directory: Path, state: dict | None = None,
                 loss_scale: dict[str, float] | None = None) -> None:
        super().__init__()
        self.loss_scale = loss_scale or {}  # per logged loss, what undoes padding's dilution
        self.directory = atomic.ensure_dir(Path(directory))
        self.state = state or {"epoch": 0, "history": [], "best_val_loss": None,
                               "best": None, "best_epoch": None, "last": None}
        self._started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": epoch + 1,
               **{k: float(v) * self.loss_scale.get(k, 1.0) for k, v in (logs or {}).items()},
               "seconds": round(time.perf_counter() - self._started, 2)}
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        state = dict(self.state, epoch=epoch + 1, history=[*self.state["history"], row])
        val_loss = row.get("val_loss", row.get("loss"))
        state["last"] = self._save(f"epoch_{epoch + 1}.keras")
        if state["best_val_loss"] is None or val_loss < state["best_val_loss"]:
            state["best"] = self._same_as(state["last"], f"best_{epoch + 1}.keras")
            state["best_val_loss"], state["best_epoch"] = val_loss, epoch + 1
        atomic.write_json(self.directory / STATE, state)
        self._prune(keep={state["best"], state["last"]})
        self.state = state

    def _save(self, name: str) -> str:
        with atomic.atomic_path(self.directory / name, suffix=".keras") as tmp:
            self.model.save(tmp)
        return name

    def _same_as(self, saved: str, name: str) -> str:
        # A second name for the checkpoint just written: a save costs about a second of the
        # training budget, a hard link nothing. A link appears whole, so no temporary is needed;
        # filesystems without links get an atomic copy.
        source, target = self.directory / saved, self.directory / name
        target.unlink(missing_ok=True)  # left by a run killed before it wrote state.json
        try:
            os.link(source, target)
        except OSError:
            with atomic.atomic_path(target, suffix=".keras") as tmp:
                shutil.copyfile(source, tmp)
        return name

    def _prune(self, keep: set[str]) -> None:
        for path in self.directory.glob("*.keras"):
            if path.name not in keep:
                path.unlink(missing_ok=True)


def load_state(directory: Path) -> dict | None:
    """The last complete checkpoint state, or None if there is none."""
    path = Path(directory) / STATE
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    if not (Path(directory) / state["last"]).is_file():
        return None
    if "best_epoch" not in state:  # written before the state recorded it: the best val loss's epoch
        losses = [(row.get("val_loss", row.get("loss", float("inf"))), row["epoch"])
                  for row in state["history"]]
        state["best_epoch"] = min(losses)[1] if losses else None
    return state
