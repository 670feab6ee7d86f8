"""petseg-export's job: pick calibration images once, let each variant build itself, publish it.

One variant from the command line to its file: cli.py parses the options into an ExportJob (its
settings groups are settings.py's), run_export (here) asks variants.py for the variant's maker,
the maker (converter.py, aeq_variants.py or onnx_export.py) builds the bytes from the groups it
reads, and publish (here) verifies, describes and writes them, with their reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from petseg import atomic
from petseg.dataset import Split, load_dataset
from petseg.description import ARCHITECTURE, Description, InputConvention, SourceModel
from petseg.environment import versions
from petseg.errors import PetsegError
from petseg.metrics import confusion, scores
from petseg.modelfile import sidecar, variant_file
from petseg.runtime import load_runtime
from petseg.table import format_table
from petseg.train.evaluate import predict_classes

from .settings import Build, Fallback, Sampling
from .trained_model import file_sha256, load_trained
from .variant import BuildInputs, Built, Variant
from .variants import pick
from .verify import Reference, Verification, run_model_bytes, verify_bytes


@dataclass(frozen=True)
class ExportJob:
    """What to export from which model, where to, and the settings groups the variants read."""

    model_path: Path
    variants: list[str]
    out: Path
    data: str | None = None  # dataset for calibration and verification (default: the training one)
    quantizer: str = "auto"
    sampling: Sampling = field(default_factory=Sampling)
    build: Build = field(default_factory=Build)
    fallback: Fallback = field(default_factory=Fallback)


def run_export(job: ExportJob) -> int:
    model, trained = load_trained(job.model_path)
    source = job.data or trained.dataset
    if not source:
        raise PetsegError(f"no dataset recorded beside {job.model_path}; pass --data for calibration "
                          "and verification images")
    with atomic.output_dir(job.out):
        return _export_into(job, model, trained, source)


def _export_into(job: ExportJob, model: keras.Model, trained: Description, source: str) -> int:
    """run_export once the output directory exists (it is removed again if this fails first)."""
    data = load_dataset(source, model.input_shape[1], seed=trained.seed, val_fraction=trained.val_fraction,
                        splits=("train", "val"))
    print(data.summary())
    sampling = job.sampling
    pool, held_out = hold_out(data["train"], sampling.holdout_images, sampling.seed)
    calib = pick_images(pool, sampling.calibration_samples, sampling.seed)
    val = data["val"].take(range(min(sampling.verify_images, len(data["val"]))))
    sources = {"val": len(val), **({"train held out of calibration": len(held_out)} if held_out else {})}
    reference = keras_reference(model, concat(val, held_out), sources)
    print(f"calibration: {len(calib)} training images; verification: "
          + " + ".join(f"{n} {split}" for split, n in reference.sources.items()))
    inputs = BuildInputs(model, calib.images, reference, job.build, job.fallback)
    origin = trained.derived(
        dataset=source, details={"recipe": trained.details.get("recipe"),
                                 **{k: trained.details[k] for k in ARCHITECTURE if k in trained.details}},
        source_model=SourceModel(str(job.model_path), file_sha256(job.model_path), trained.dataset))
    rows, failed, fp32_size = [], {}, None
    for name in job.variants:
        variant = pick(name, job.quantizer)
        started = time.perf_counter()
        try:
            built = variant.build(inputs)
            seconds = time.perf_counter() - started
            size, check = publish(variant, built, job, len(calib), reference, origin)
            if variant.calibrated:
                print(f"{name} on {check.images} held-out images: {check.judgement.line(check.budget)}")
        except PetsegError as exc:
            failed[name] = str(exc)
            continue
        fp32_size = fp32_size or (size if name == "fp32" else None)
        rows.append(row(name, size, fp32_size, check, seconds))
    if rows:
        print(format_table(["variant", "size MB", "x of fp32", "agreement", "ΔmIoU", "convert s"], rows))
        print("speed and the ops each variant runs outside XNNPACK: petseg-bench measures them")
    if failed:
        why = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
        raise PetsegError(f"not written: {why}")
    return 0


def pick_images(split: Split, count: int, seed: int) -> Split:
    """Up to ``count`` images of ``split`` (never empty: the reader refuses that), same seed, same ones."""
    return split.take(np.sort(np.random.default_rng(seed).permutation(len(split))[:count]))


def hold_out(train: Split, count: int, seed: int) -> tuple[Split, Split | None]:
    """``train`` split in two by ``seed``: what calibration may use, and up to ``count`` images it may not."""
    count = min(count, len(train) // 4)
    if count < 1:
        return train, None
    order = np.random.default_rng(seed + 1).permutation(len(train))
    return train.take(np.sort(order[count:])), train.take(np.sort(order[:count]))


def concat(first: Split, second: Split | None) -> Split:
    if second is None:
        return first
    return Split(np.concatenate([first.images, second.images]), np.concatenate([first.masks, second.masks]),
                 first.names + second.names)


def keras_reference(model: keras.Model, split: Split, sources: dict | None = None) -> Reference:
    """The Keras model's predictions on ``split``; ``sources``: its images per split they came from."""
    classes = predict_classes(model, split.images, batch_size=16)
    return Reference(split, classes, scores(confusion(split.masks, classes))["mean_iou"], sources or {})


def publish(variant: Variant, built: Built, job: ExportJob, calibration_images: int, reference: Reference,
            origin: Description) -> tuple[int, Verification]:
    """Verify the variant, describe it, and write the model, its JSON and its reports together (or none)."""
    dest = variant_file(job.out, variant.name)
    model = variant.with_signature(built.model)
    check = verify_bytes(model, dest.suffix, reference, job.fallback.budget, fp16=variant.name == "fp16")
    if check.broken:
        raise PetsegError("its predictions disagree with the Keras model on most pixels "
                          "(a broken conversion)")
    description = description_for(dest, variant, built, job, calibration_images, check, origin)
    final = variant.with_metadata(model, description)
    sample = reference.split.images[:8]
    if final != model and not np.array_equal(run_model_bytes(final, dest.suffix, sample),
                                             check.predictions[:8]):
        raise PetsegError("embedding the metadata changed its predictions (a bug: report it)")
    reports = {job.out / name: text.encode() for name, text in built.reports.items()}
    # The JSON goes into place first, so that a model file, once visible, has its description.
    atomic.write_files({**reports, sidecar(dest): atomic.json_bytes(description.to_json()), dest: final})
    for path in reports:
        print(f"{variant.name}: report written to {path}")
    return len(final), check


def description_for(dest: Path, variant: Variant, built: Built, job: ExportJob, calibration_images: int,
                    check: Verification, origin: Description) -> Description:
    """The variant's description: its trained model's, with what this export did and measured."""
    io, runtime = check.io, load_runtime()
    tensor_in = io["inputs"][0]
    return origin.derived(
        variant=variant.name, image_size=int(tensor_in["shape"][1]),
        input=InputConvention(tensor=tensor_in),
        details={
            "model": dest.name,
            "description": variant.summary,
            "output": {"kind": "logits", "activation": "softmax", **io["outputs"][0]},
            "signature": variant.signature,
            "calibration": ({"images": calibration_images, "split": "train", "source": origin.dataset,
                             "seed": job.sampling.seed} if variant.calibrated else None),
            **built.details,
            "verification": check.to_json(),
            **origin.details,
            "versions": {**versions("tensorflow", "keras"), "converter": f"tensorflow {tf.__version__}",
                         "runtime": f"{runtime.name} {runtime.version}"},
        })


def row(name: str, size: int, fp32_size: int | None, check: Verification, seconds: float) -> list:
    return [name, f"{size / 1e6:.2f}", f"{size / fp32_size:.2f}x" if fp32_size else "",
            f"{100 * check.agreement:.2f}%", f"{check.miou_delta:+.2f}", f"{seconds:.1f}"]
