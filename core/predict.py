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
from .dataset import load_rgb, resize_image
from .errors import PetsegError, run_cli
from .labels import CLASSES, PALETTE
from .models import open_model
from .overlay import blend


class KerasModel:
    """The trained .keras model behind the same calls as TFLiteModel (needs TensorFlow)."""

    def __init__(self, path: Path) -> None:
        try:
            from petseg.export.source import load_keras_model
        except ImportError as exc:
            raise PetsegError(f"{path}: running a .keras model needs TensorFlow (pip install "
                              "'petseg[train]'); or pass an exported .tflite") from exc
        self.model = load_keras_model(path)
        self.image_size = int(self.model.input_shape[1])

    def predict(self, images: np.ndarray) -> np.ndarray:
        logits = self.model.predict(images.astype(np.float32), verbose=0)
        return np.argmax(logits, axis=-1).astype(np.uint8)


def open_any_model(path: Path):
    if Path(path).suffix == ".keras":
        return KerasModel(path)
    return open_model(path)


def segment(model, photo: Image.Image) -> np.ndarray:
    """Class ids at the photo's own resolution."""
    classes = model.predict(resize_image(photo, model.image_size)[None])[0]
    return np.asarray(Image.fromarray(classes).resize(photo.size, Image.NEAREST))


def describe(classes: np.ndarray) -> dict:
    pet = classes != CLASSES.index("background")  # the pet with its border
    share = {name: float(np.mean(classes == i)) for i, name in enumerate(CLASSES)}
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="petseg-predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help=".tflite (or .onnx, or .keras with TensorFlow)")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="photos Pillow can read")
    p.add_argument("-o", "--out", type=Path, default=Path("predictions"), help="output directory")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    photos = [(path, load_rgb(path)) for path in args.images]  # every photo checked before any work
    model = open_any_model(args.model)
    out = atomic.ensure_dir(args.out)
    results = []
    for path, photo in photos:
        classes = segment(model, photo)
        mask, overlay = out / f"{path.stem}_mask.png", out / f"{path.stem}_overlay.png"
        save_mask(classes, mask)
        save_overlay(photo, classes, overlay)
        result = {"image": str(path), "size": list(photo.size), **describe(classes),
                  "mask": str(mask), "overlay": str(overlay)}
        results.append(result)
        if not args.json:
            box = result["bbox"] or "none"
            print(f"{path}: pet {100 * result['pet_share']:.1f}% of pixels, bbox (x0, y0, x1, y1) {box}"
                  f" -> {mask}, {overlay}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def entry() -> None:
    sys.exit(run_cli(main, prog="petseg-predict"))


if __name__ == "__main__":
    entry()
