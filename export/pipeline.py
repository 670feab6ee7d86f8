"""The export job: calibrate once, convert each variant, verify it, then publish it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from petseg import atomic
from petseg.dataset import Split, load_dataset
from petseg.environment import versions
from petseg.errors import PetsegError
from petseg.labels import CLASSES
from petseg.metrics import confusion, scores
from petseg.modelfile import sidecar
from petseg.runtime import load_runtime
from petseg.table import format_table
from petseg.train.evaluate import predict_classes

from . import convert, tflite_metadata
from .decoder import has_petseg_decoder
from .signature import INPUT_NAME, OUTPUT_NAME, SIGNATURE_KEY, add_serving_signature
from .source import file_sha256, load_keras_model, training_metadata
from .variants import VARIANTS
from .verify import Verification, run_model_bytes, verify_bytes


@dataclass
class ExportJob:
    model_path: Path
    variants: list[str]
    out: Path
    data: str | None = None
    calibration_samples: int = 300
    io_type: str = "uint8"
    verify_images: int = 64
    keep_float: list[str] = field(default_factory=list)
    max_drop: float | None = 0.3
    min_agreement: float = 98.5
    report: bool = False
    seed: int = 0
    decoder: str = "auto"
    quantizer: str = "auto"
    integer_only: bool = False

    def quantizer_for(self, variant: str) -> str:
        """'auto' is the converter for int8 and the AI Edge Quantizer for int16x8 (see README)."""
        if VARIANTS[variant].quantizer == "aeq" or (variant == "int8" and self.integer_only):
            return "aeq"
        if self.quantizer == "auto":
            return "aeq" if variant == "int16x8" else "converter"
        return self.quantizer


@dataclass
class Reference:
    """Held-out images with the Keras model's own predictions on them."""

    split: Split
    classes: np.ndarray
    miou: float


def run_export(job: ExportJob) -> int:
    model = load_keras_model(job.model_path)
    meta = training_metadata(job.model_path)
    source = job.data or meta.get("data", {}).get("source")
    if not source:
        raise PetsegError(f"no dataset recorded beside {job.model_path}; pass --data for calibration "
                          "and verification images")
    out = atomic.ensure_dir(job.out)
    data = load_dataset(source, model.input_shape[1], seed=meta.get("recipe", {}).get("seed", 0),
                        val_fraction=meta.get("data", {}).get("val_fraction", 0.1),
                        splits=("train", "val"))
    print(data.summary())
    calib = pick(data["train"], job.calibration_samples, job.seed)
    reference = keras_reference(model, data["val"].take(range(min(job.verify_images, len(data["val"])))))
    context = {"model_sha256": file_sha256(job.model_path), "source": source, "meta": meta}
    rows, failed, fp32_size = [], {}, None
    calibrated = None
    for name in job.variants:
        started = time.perf_counter()
        try:
            if name == "int8" and job.quantizer_for(name) == "converter":
                calibrated = calibrated or convert.calibrate(model, calib.images, decoder(job, model, "int8"))
            flatbuffer, extra = build(name, model, calib.images, calibrated, job, reference)
            seconds = time.perf_counter() - started
            dest = out / f"petseg_{name}{VARIANTS[name].suffix}"
            size, check = publish(dest, name, flatbuffer, job, calib, reference, context, extra)
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


def pick(split: Split, count: int, seed: int) -> Split:
    """Up to ``count`` images of ``split`` (never empty: the reader refuses that), same seed, same ones."""
    return split.take(np.sort(np.random.default_rng(seed).permutation(len(split))[:count]))


def keras_reference(model: keras.Model, split: Split) -> Reference:
    classes = predict_classes(model, split.images, batch_size=16)
    return Reference(split, classes, scores(confusion(split.masks, classes))["mean_iou"])


def build(name: str, model: keras.Model, calib: np.ndarray, calibrated: bytes | None,
          job: ExportJob, reference: Reference) -> tuple[bytes, dict]:
    """The flatbuffer for one variant, and what else its metadata should record."""
    if job.quantizer_for(name) == "aeq":
        from . import aeq_variants

        # Sub-pixel for every AEQ variant: Winograd's sums leave int8 ADDs outside XNNPACK, and
        # its 25 weight matrices per block would make weight-only files larger.
        return aeq_variants.build(name, model, calib, job, reference, decoder(job, model, "int8"))
    if name == "int8":
        if job.max_drop is not None:
            from .sensitivity import search_keep_float

            keep = search_keep_float(calibrated, calib, job, reference)
        elif job.keep_float:
            from .sensitivity import layer_errors, resolve

            keep = resolve(job.keep_float, [r["tensor"] for r in layer_errors(calibrated, calib[:8])])
        else:
            keep = []
        if job.report:
            from .sensitivity import write_report

            write_report(calibrated, calib, job.out / "int8_layer_report.csv")
        return convert.quantize_int8(calibrated, job.io_type, keep), {"keep_float": keep,
                                                                       "decoder": decoder(job, model, name)}
    if name == "int16x8":
        # The 16x8 quantiser has no DEPTH_TO_SPACE; this variant is an accuracy reference anyway.
        return convert.convert_int16x8(model, calib, "transpose-conv"), {"decoder": "transpose-conv"}
    if name.startswith("onnx"):
        from .onnx_export import export_onnx, quantize_onnx_int8

        fp32 = export_onnx(model)
        return (quantize_onnx_int8(fp32, calib) if name == "onnx-int8" else fp32), {}
    form = decoder(job, model, name)
    return convert.convert_float(model, name, form), {"decoder": form}


def decoder(job: ExportJob, model: keras.Model, variant: str) -> str:
    """The decoder form exported for ``variant``: 'auto' is Winograd for float, sub-pixel for int8.

    int8 stays sub-pixel because XNNPACK declines int8 ADD/SUB whose input and output scales
    differ too much: on a briefly trained model 25 of Winograd's sums left the delegate.
    """
    if not has_petseg_decoder(model):
        return "transpose-conv"
    if job.decoder == "auto":
        return "subpixel" if variant == "int8" else "winograd"
    return job.decoder


def publish(dest: Path, name: str, flatbuffer: bytes, job: ExportJob, calib: Split,
            reference: Reference, context: dict, extra: dict) -> tuple[int, Verification]:
    """Verify the variant, describe it, and write the model and its JSON together (or neither).

    A ``.tflite`` gets the serving signature and the app metadata (tflite_metadata.py);
    neither changes an op, which is checked on the final bytes.
    """
    tflite = dest.suffix == ".tflite"
    if tflite:
        flatbuffer = add_serving_signature(flatbuffer)
    check = verify_bytes(flatbuffer, dest.suffix, reference)
    if check.broken:
        raise PetsegError("its predictions disagree with the Keras model on most pixels "
                          "(a broken conversion)")
    meta = describe(dest, name, job, calib, check, context, extra)
    if tflite:
        flatbuffer = tflite_metadata.embed(flatbuffer, meta)
        sample = reference.split.images[:8]
        if not np.array_equal(run_model_bytes(flatbuffer, ".tflite", sample), check.predictions[:8]):
            raise PetsegError("embedding the metadata changed its predictions (a bug: report it)")
    # The JSON goes into place first, so that a model file, once visible, has its description.
    atomic.write_files({sidecar(dest): atomic.json_bytes(meta), dest: flatbuffer})
    return len(flatbuffer), check


def describe(dest: Path, name: str, job: ExportJob, calib: Split, check: Verification,
             context: dict, extra: dict) -> dict:
    """petseg's description of one variant: the sidecar JSON, and petseg.json inside the model."""
    io = check.io
    runtime = load_runtime()
    meta = context["meta"]
    return {
        "model": dest.name,
        "variant": name,
        "description": VARIANTS[name].summary,
        "classes": list(CLASSES),
        "image_size": int(io["inputs"][0]["shape"][1]),
        "input": {"normalisation": "raw RGB 0..255; the model scales to [-1, 1] itself",
                  "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], **io["inputs"][0]},
        "output": {"kind": "logits", "activation": "softmax", **io["outputs"][0]},
        "signature": ({"key": SIGNATURE_KEY, "inputs": [INPUT_NAME], "outputs": [OUTPUT_NAME]}
                      if dest.suffix == ".tflite" else None),
        "calibration": ({"images": len(calib), "split": "train", "source": context["source"],
                         "seed": job.seed} if VARIANTS[name].calibrated else None),
        **extra,
        "verification": {"images": check.images, "split": "val",
                         "agreement": check.agreement, "miou": check.miou,
                         "miou_delta_points": check.miou_delta},
        "recipe": meta.get("recipe"),
        "source_model": {"path": str(job.model_path), "sha256": context["model_sha256"],
                         "trained_on": meta.get("data", {}).get("source")},
        "versions": {**versions("tensorflow", "keras"), "converter": f"tensorflow {tf.__version__}",
                     "runtime": f"{runtime.name} {runtime.version}"},
    }


def row(name: str, size: int, fp32_size: int | None, check: Verification, seconds: float) -> list:
    return [name, f"{size / 1e6:.2f}", f"{size / fp32_size:.2f}x" if fp32_size else "",
            f"{100 * check.agreement:.2f}%", f"{check.miou_delta:+.2f}", f"{seconds:.1f}"]
