"""One benchmark run: measure every model at every thread count, score, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from petseg.dataset import Split, load_dataset
from petseg.described import check_described
from petseg.metrics import agreement, confusion, scores
from petseg.modelfile import check_model_path, read_description, sidecar, variant_file
from petseg.models import describe_io

from . import plots, report
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
        jobs = [(p, t) for p in self.paths for t in self.threads]
        for path, threads in tqdm(jobs, desc="benchmark", unit="model", disable=None, leave=False):
            first = threads == self.threads[0]
            images = self._test(source, path).images if source and first else None
            results.append(run_worker(path, threads, self.args.warmup, self.args.runs,
                                      self.args.min_seconds, images))
        self._score(results, source)
        self._report(results, source)

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
        timed = {(m.path, m.threads): m for m in results}
        by_path = {m.path: m.predictions for m in results if m.predictions is not None}
        for m in results:
            reference = self.references.get(m.path)
            ref, ref_pred = timed.get((reference, m.threads)), by_path.get(reference)
            pred = by_path[m.path]
            test = self.tests[pred.shape[1]]
            m.accuracy = scores(confusion(test.masks, pred))
            if ref:
                m.accuracy["speedup"] = ref.latency["median_ms"] / m.latency["median_ms"]
            if ref_pred is not None and ref_pred.shape == pred.shape:
                ref_miou = scores(confusion(test.masks, ref_pred))["mean_iou"]
                m.accuracy["agreement"] = agreement(pred, ref_pred)
                m.accuracy["miou_delta_points"] = 100 * (m.accuracy["mean_iou"] - ref_miou)

    def _report(self, results: list[Measurement], source: str | None) -> None:
        records = report.rows(results)
        env = report.environment(results[0].latency["runtime"])
        settings = {"data": source, "images": len(next(iter(self.tests.values()), [])),
                    "runs": self.args.runs, "warmup": self.args.warmup, "threads": self.threads,
                    "reference": ", ".join(map(str, dict.fromkeys(self.references.values()))) or None}
        print(f"CPU: {env['cpu']} | runtime: {env['runtime']} | reference: {self.reference_names}")
        print(report.table(records))
        a = self.args
        if a.json:
            report.write_json(a.json, records, env, settings)
        if a.csv:
            report.write_csv(a.csv, records)
        if a.markdown:
            report.write_markdown(a.markdown, records, env, settings)
        if a.plot and not plots.latency_vs_miou(records, a.plot, f"{env['cpu']}, {env['runtime']}"):
            print("matplotlib is not installed: no plot (pip install 'petseg[plot]')")
        if a.overlays and source:
            shown = [m for m in results if m.predictions is not None]
            plots.overlays(shown, self.tests[shown[0].predictions.shape[1]], a.overlays)
        for dest in (a.json, a.csv, a.markdown, a.plot, a.overlays):
            if dest and Path(dest).exists():
                print(f"wrote {dest}")


