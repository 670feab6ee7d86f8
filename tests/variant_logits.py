"""Logits of every exported variant of one fixed model, for the refactoring guard (test_same_logits).

The model is petseg's seed U-Net at 64x64 from its seeded initialisation with batch norms set
from one batch (no training, so it is the same wherever float rounds the same), exported through
the petseg-export command line with the fallback search off, and then on with its default
budget. ``python tests/variant_logits.py OUT.npz`` records the figures of the code installed.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from pathlib import Path

import numpy as np

# (label, petseg-export arguments): every variant, both quantizers, every decoder form.
CONFIGS = (
    ("fp32", ["--quantize", "fp32"]),
    ("fp32-subpixel", ["--quantize", "fp32", "--decoder", "subpixel"]),
    ("fp32-transpose-conv", ["--quantize", "fp32", "--decoder", "transpose-conv"]),
    ("fp16", ["--quantize", "fp16"]),
    ("dynamic", ["--quantize", "dynamic"]),
    ("int8", ["--quantize", "int8"]),
    ("int8-float-io", ["--quantize", "int8", "--io-type", "float32"]),
    ("int8-minmax", ["--quantize", "int8", "--activation-ranges", "minmax"]),
    ("int8-aeq", ["--quantize", "int8", "--quantizer", "aeq"]),
    ("int8-integer-only", ["--quantize", "int8", "--integer-only"]),
    ("int8-aeq-integer-only", ["--quantize", "int8", "--quantizer", "aeq", "--integer-only"]),
    ("int16x8", ["--quantize", "int16x8"]),
    ("int16x8-converter", ["--quantize", "int16x8", "--quantizer", "converter"]),
    ("wi8", ["--quantize", "wi8"]),
    ("wi4", ["--quantize", "wi4"]),
    ("onnx", ["--quantize", "onnx"]),
    ("onnx-int8", ["--quantize", "onnx-int8"]),
    # The fallback search with its default budget (the flags given last win).
    ("int8-search", ["--quantize", "int8", "--max-drop", "0.3"]),
    ("int16x8-search", ["--quantize", "int16x8", "--max-drop", "0.3"]),
)
IMAGE_SIZE = 64
DATA = "synthetic:24"


# Their kernels and quantisers compute the figures: another version may round differently.
PACKAGES = ("tensorflow", "keras", "ai-edge-litert", "litert-quantizer", "onnxruntime", "onnx", "tf2onnx",
            "numpy")


def cpu() -> str:
    """The CPU's model name, flags and core count, and the versions of PACKAGES: float results are
    bit-exact only on the same kind of CPU, with the same number of threads splitting TensorFlow's
    work, and the same libraries."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    name = " ".join(fields.get("model name\t", platform.processor()).split())
    family = fields.get("cpu family\t", "").strip()
    flags = " ".join(sorted(fields.get("flags\t\t", "").split()))
    packages = " ".join(f"{p}={installed(p)}" for p in PACKAGES)
    return f"{name} family {family} | {os.cpu_count()} cores | {flags} | {packages}"


def seeded_model(path: Path) -> Path:
    import keras

    from petseg.train.model import build_unet

    keras.utils.set_random_seed(0)
    model = build_unet(IMAGE_SIZE, encoder_weights="none")
    # Batch norms at their initial statistics leave activations far off scale (int16x8 then
    # overflows its multipliers): set them from one batch, as a first training step would.
    norms = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(images(16).astype(np.float32), training=True)
    model.save(path)
    return path


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def images(count: int = 2) -> np.ndarray:
    """Fixed synthetic pets (the dataset's own drawing), not the ones the export verifies on."""
    from petseg.synthetic import draw_pet

    rng = np.random.default_rng(7)
    return np.stack([np.asarray(draw_pet(rng, IMAGE_SIZE)[0]) for _ in range(count)])


def logits_of(path: Path, batch: np.ndarray) -> np.ndarray:
    """Raw float logits, read with the runtimes directly (not through petseg)."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.stack([session.run(None, {name: image[None].astype(np.float32)})[0][0] for image in batch])
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    result = []
    for image in batch:
        interpreter.set_tensor(inp["index"], _quantised(image, inp))
        interpreter.invoke()
        raw = interpreter.get_tensor(out["index"])[0]
        scale, zero = out["quantization"]
        result.append((raw.astype(np.float32) - zero) * scale if scale else raw.astype(np.float32))
    return np.stack(result)


def keras_logits(path: Path) -> np.ndarray:
    """The seeded Keras model's own float logits on images(): the same on every CPU to float rounding."""
    import keras

    model = keras.saving.load_model(path, compile=False)
    return np.asarray(model(images().astype(np.float32), training=False))


def _quantised(image: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if detail["dtype"] == np.float32:
        return image[None].astype(np.float32)
    if detail["dtype"] == np.uint8 and (scale, zero) in ((1.0, 0), (0.0, 0)):
        return image[None]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(image / scale + zero), info.min, info.max).astype(detail["dtype"])[None]


def export_all(model: Path, out: Path, configs=CONFIGS) -> dict[str, np.ndarray]:
    """label -> logits of that export on images()."""
    from petseg.export.cli import main

    result = {}
    for label, args in configs:
        dest = out / label
        assert main(["--model", str(model), "--out", str(dest), "--data", DATA,
                     "--max-drop", "off", "--calibration-samples", "16", "--verify-images", "8",
                     *args]) == 0, label
        (path,) = [p for p in dest.iterdir() if p.suffix in (".tflite", ".onnx")]
        result[label] = logits_of(path, images())
    return result


def digest(logits: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(logits, np.float32).tobytes()).hexdigest()


def golden_arrays(figures: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the golden file keeps per export: the logits' digest (bit-exact on the recording CPU),
    and for other CPUs the class ids and every 4th pixel's logits."""
    kept = {"cpu": np.array(cpu())}
    for label, logits in figures.items():
        kept[f"{label}/digest"] = np.array(digest(logits))
        kept[f"{label}/classes"] = np.argmax(logits, axis=-1).astype(np.uint8)
        kept[f"{label}/sampled"] = logits[:, ::4, ::4].astype(np.float16)
    return kept


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model = seeded_model(Path(tmp) / "seeded.keras")
        figures = export_all(model, Path(tmp))
    np.savez_compressed(sys.argv[1], **golden_arrays(figures))
