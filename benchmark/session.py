"""One benchmark run: measure every model at every thread count, score, report."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from petseg.dataset import load_dataset
from petseg.described import check_described
from petseg.errors import PetsegError
from petseg.metrics import agreement, confusion, scores
from petseg.modelfile import check_model_path, read_description, sidecar, variant_file, variant_of
from petseg.models import describe_io
from petseg.split import Split

from . import plots, report
from .accelerators import Plan, plain_device_error
from .measure import Measurement, run_worker

BENCHABLE = (".tflite", ".onnx")
ASSUMPTIONS = ("no petseg metadata (no JSON beside it, none inside it): assuming raw RGB 0..255 input "
               "(scaled inside the model), "
               "input/output quantisation as stored in the model, classes pet/background/border")


class BenchSession:
    def __init__(self, args: argparse.Namespace, threads: list[int]) -> None:
        self.args = args
        self.threads = threads
        self.paths = list(dict.fromkeys(check_model_path(p, BENCHABLE) for p in args.models))
        self.references = self._references()
        self.paths += [r for r in dict.fromkeys(self.references.values()) if r not in self.paths]
        self.tests: dict[int, Split] = {}
        self.plan = Plan(args.accelerators, args.fp16_arithmetic)

    def _references(self) -> dict[Path, Path]:
        """Each model's reference: --reference, else the fp32 beside it (models of several sizes
        in one run each compare with their own), else the first such fp32 found."""
        if self.args.reference:
            reference = check_model_path(self.args.reference, BENCHABLE)
            return {path: reference for path in self.paths + [reference]}
        siblings = {p: variant_file(p.parent, "fp32") for p in self.paths}
        found = [s for s in siblings.values() if s.is_file()]
        refs = {p: s if s.is_file() else found[0] for p, s in siblings.items()} if found else {}
        return {**refs, **{r: r for r in refs.values()}}

    @property
    def reference_names(self) -> str:
        """The reference(s) in one line, with their folders when there are several."""
        refs = list(dict.fromkeys(self.references.values()))
        if len(refs) > 1:
            return ", ".join(str(r) for r in refs)
        return refs[0].name if refs else "none"

    def run(self) -> None:
        source = None if self.args.no_accuracy else self._data_source()
        results: list[Measurement] = []
        for path, threads, backend in tqdm(self._jobs(), desc="benchmark", unit="model", disable=None,
                                           leave=False):
            first = threads == self.threads[0]
            images = self._test(source, path).images if source and first else None
            try:
                results.append(run_worker(path, threads, self.args.warmup, self.args.runs,
                                          self.args.min_seconds, images, backend=backend))
            except PetsegError as exc:
                raise plain_device_error(exc) from exc
        self._score(results, source)
        self._report(results, source)

    def _jobs(self) -> list[tuple[Path, int, str]]:
        """Every model at every thread count on each CPU backend; on the GPU once (threads feed
        only the ops it leaves to the CPU)."""
        return [(p, t, b) for p in self.paths for b in self.plan.backends(self._variant(p))
                for t in self.threads if not b.startswith("gpu") or t == self.threads[0]]

    @staticmethod
    def _variant(path: Path) -> str:
        description = read_description(path)
        return variant_of(path, description)

    def _data_source(self) -> str | None:
        if self.args.data:
            return self.args.data
        for path in self.paths:
            description = read_description(path)
            if description and description.dataset:
                return description.dataset
        print("no --data given and no metadata names a dataset: latency only (pass --data for accuracy)")
        return None

    def _image_size(self, path: Path) -> int:
        # Each description of the model is checked against the model's own tensors before its image
        # size decides how large the images drawn and allocated here are.
        io = describe_io(path)
        check_described(path, io)
        if read_description(path):
            if not sidecar(path).is_file():
                print(f"{path}: no JSON beside it; using the petseg metadata inside the model")
        else:
            print(f"{path}: {ASSUMPTIONS}")
        return int(io["inputs"][0]["shape"][1])

    def _test(self, source: str, path: Path) -> Split:
        size = self._image_size(path)
        if size not in self.tests:
            data = load_dataset(source, size, splits=("test",), limit=self.args.limit)
            print(data.summary())
            self.tests[size] = data["test"]
        return self.tests[size]

    def _score(self, results: list[Measurement], source: str | None) -> None:
        if not source:
            return
        # The reference is its fp32's cpu row; a row on another backend is also held against its own
        # file's cpu row ("vs CPU run").
        timed = {(m.path, m.threads, m.backend): m for m in results}
        by_run = {(m.path, m.backend): m.predictions for m in results if m.predictions is not None}
        for m in results:
            reference = self.references.get(m.path)
            ref = timed.get((reference, m.threads, "cpu"))
            pred = by_run[m.path, m.backend]
            test = self.tests[pred.shape[1]]
            m.accuracy = scores(confusion(test.masks, pred))
            if ref and not m.latency.get("software_device"):
                m.accuracy["speedup"] = ref.latency["median_ms"] / m.latency["median_ms"]
            m.accuracy.update(_against(pred, by_run.get((reference, "cpu")), test, m.accuracy))
            if m.backend != "cpu":
                own = _against(pred, by_run.get((m.path, "cpu")), test, m.accuracy)
                m.accuracy.update({f"cpu_{k}": v for k, v in own.items()})

    def _report(self, results: list[Measurement], source: str | None) -> None:
        records = report.rows(results)
        env = report.environment(results[0].latency["runtime"])
        settings = {"data": source, "images": len(next(iter(self.tests.values()), [])),
                    "runs": self.args.runs, "warmup": self.args.warmup, "threads": self.threads,
                    "reference": ", ".join(map(str, dict.fromkeys(self.references.values()))) or None}
        notes = self.plan.notes([m.variant for m in results])
        print(f"CPU: {env['cpu']} | runtime: {env['runtime']} | reference: {self.reference_names}")
        print(report.table(records, notes))
        a = self.args
        if a.json:
            report.write_json(a.json, records, env, settings, notes)
        if a.csv:
            report.write_csv(a.csv, records)
        if a.markdown:
            report.write_markdown(a.markdown, records, env, settings, notes)
        if a.plot and not plots.latency_vs_miou(report.plotted(records), a.plot,
                                                f"{env['cpu']}, {env['runtime']}"):
            print("matplotlib is not installed: no plot (pip install 'petseg[plot]')")
        if a.overlays and source:
            shown = [m for m in results if m.predictions is not None and m.backend == "cpu"]
            plots.overlays(shown, self.tests[shown[0].predictions.shape[1]], a.overlays)
        for dest in (a.json, a.csv, a.markdown, a.plot, a.overlays):
            if dest and Path(dest).exists():
                print(f"wrote {dest}")




def _against(pred: np.ndarray, other: np.ndarray | None, test: Split, mine: dict) -> dict:
    """Agreement with ``other``'s predictions and the mIoU difference, in points (none if absent)."""
    if other is None or other.shape != pred.shape:
        return {}
    other_miou = scores(confusion(test.masks, other))["mean_iou"]
    return {"agreement": agreement(pred, other), "miou_delta_points": 100 * (mine["mean_iou"] - other_miou)}
