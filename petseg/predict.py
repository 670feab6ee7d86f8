"""petseg-predict: segment your own photos with any exported model.

Writes, for each photo, the class mask (palette PNG whose pixel values are the
class ids 0 pet, 1 background, 2 border) and a colour overlay, both at the
photo's own resolution; prints the pet's bounding box and pixel share.
The .tflite path never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from . import atomic
from .compiled import ARITHMETIC, choose_backend
from .dataset import load_rgb, resize_image
from .errors import PetsegError
from .labels import CLASSES, PALETTE
from .modelfile import read_description, variant_of
from .models import open_model
from .overlay import blend
from .quiet import VERBOSE_HELP, quiet_cli


def segment(model, photo: Image.Image) -> np.ndarray:
    """Class ids at the photo's own resolution."""
    classes = model.predict(resize_image(photo, model.image_size)[None])[0]
    return np.asarray(Image.fromarray(classes).resize(photo.size, Image.NEAREST))


def mask_summary(classes: np.ndarray, names: tuple[str, ...] = CLASSES) -> dict:
    """The pet's share of the pixels and its bounding box (x0, y0, x1, y1; None without a pet), and
    each class's share."""
    pet = classes != names.index("background") if "background" in names else classes == 0
    share = {name: float(np.mean(classes == i)) for i, name in enumerate(names)}
    if not pet.any():
        return {"pet_share": 0.0, "bbox": None, "class_share": share}
    rows, cols = np.flatnonzero(pet.any(1)), np.flatnonzero(pet.any(0))
    return {"pet_share": float(pet.mean()), "class_share": share,
            "bbox": [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]}


def save_mask(classes: np.ndarray, dest: Path) -> None:
    image = Image.fromarray(classes, mode="P")
    image.putpalette(PALETTE.ravel().tolist())
    with atomic.atomic_path(dest, suffix=".png") as tmp:
        image.save(tmp, format="PNG")


def save_overlay(photo: Image.Image, classes: np.ndarray, dest: Path) -> None:
    with atomic.atomic_path(dest, suffix=".png") as tmp:
        Image.fromarray(blend(np.asarray(photo), classes)).save(tmp, format="PNG")


def model_classes(path: Path) -> tuple[str, ...]:
    """Class names from the model's metadata (beside it or inside it); petseg's own if it has none."""
    description = read_description(path)
    if description is None:
        print(f"note: {path} carries no petseg metadata; assuming classes {', '.join(CLASSES)} and raw "
              "RGB 0..255 input", file=sys.stderr)
    return description.classes if description else CLASSES


def open_for(path: Path, accelerator: str, arithmetic: str):
    """The model on the backend asked for, and a line saying where and in what arithmetic it runs."""
    backend = choose_backend(read_variant(path), accelerator, arithmetic) \
        if path.suffix == ".tflite" else "cpu"
    if backend == "cpu":
        if accelerator == "gpu" or arithmetic == "fp16":
            raise PetsegError(f"{path}: --accelerator gpu and --arithmetic fp16 need a .tflite model")
        return open_model(path), "cpu, fp32 arithmetic"
    from .compiled import CompiledSegmenter

    model = CompiledSegmenter(path, backend)
    where = model.placement()
    if backend == "cpu-fp16":
        return model, f"cpu, fp16 arithmetic ({where['fp16_arithmetic']})"
    accelerated = "fully accelerated" if where["fully_accelerated"] else "some ops on the CPU"
    return model, f"{backend} on {where['adapter']} ({accelerated})"


def read_variant(path: Path) -> str:
    description = read_description(path)
    return variant_of(path, description)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="petseg-predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help=".tflite (or .onnx, or .keras with TensorFlow)")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="photos Pillow can read")
    p.add_argument("-o", "--out", type=Path, default=Path("predictions"), help="output directory")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    p.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu",
                   help="cpu (XNNPACK), or gpu: LiteRT's GPU accelerator (needs a Vulkan device)")
    p.add_argument("--arithmetic", choices=ARITHMETIC, default="auto",
                   help="auto: an fp16 model computes in fp16 where the CPU has fp16 arithmetic "
                        "(AVX512-FP16, ARMv8.2 FP16), others in fp32; fp16: ask for it (refused where "
                        "the CPU lacks it); fp32: always fp32")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    p.add_argument("--debug", action="store_true", help="show tracebacks (and what --verbose shows)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    photos = [(path, load_rgb(path)) for path in args.images]  # every photo checked before any work
    model, runs_on = open_for(args.model, args.accelerator, args.arithmetic)
    names = model_classes(args.model)
    if not args.json:
        print(f"{args.model}: {runs_on}")
    out = atomic.ensure_dir(args.out)
    results = []
    for path, photo in photos:
        classes = segment(model, photo)
        mask, overlay = out / f"{path.stem}_mask.png", out / f"{path.stem}_overlay.png"
        save_mask(classes, mask)
        save_overlay(photo, classes, overlay)
        result = {"image": str(path), "runs_on": runs_on, "size": list(photo.size),
                  **mask_summary(classes, names), "mask": str(mask), "overlay": str(overlay)}
        results.append(result)
        if not args.json:
            box = result["bbox"] or "none"
            print(f"{path}: pet {100 * result['pet_share']:.1f}% of pixels, bbox (x0, y0, x1, y1) {box}"
                  f" -> {mask}, {overlay}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def entry() -> None:
    sys.exit(quiet_cli(main, prog="petseg-predict"))


if __name__ == "__main__":
    entry()
