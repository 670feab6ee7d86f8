"""One dataset reader for every stage: official Oxford-IIIT Pet layout, TFDS, or synthetic.

Reading needs only NumPy and Pillow, so the on-device benchmark can reuse it
without TensorFlow. Examples come back resized to a square ``image_size`` as
uint8 RGB images and uint8 class-id masks.
"""

from __future__ import annotations

import collections
import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .description import MAX_IMAGE_SIZE
from .errors import PetsegError
from .labels import trimap_to_classes
from .split import Split
from .synthetic import synthetic_splits

TFDS_HOST = "thor.robots.ox.ac.uk"  # where TFDS's oxford_iiit_pet builder downloads from
SOURCES_HELP = ("a directory in the official Oxford-IIIT Pet layout (images/, annotations/trimaps/, "
                "annotations/trainval.txt, annotations/test.txt), 'tfds' (downloads oxford_iiit_pet), "
                "or 'synthetic[:N]' (procedurally drawn pets, offline)")


@dataclass
class Dataset:
    source: str
    image_size: int
    splits: dict[str, Split]
    skipped: collections.Counter = field(default_factory=collections.Counter)

    def __getitem__(self, name: str) -> Split:
        return self.splits[name]

    def counts(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.splits.items()}

    def summary(self) -> str:
        """One line: what was read, and what was skipped and why."""
        counts = ", ".join(f"{n} {name}" for name, n in self.counts().items())
        line = f"dataset {self.source}: {counts} at {self.image_size}x{self.image_size}"
        if self.skipped:
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
            line += f"; skipped {sum(self.skipped.values())} ({why})"
        return line


def load_dataset(source: str, image_size: int = 128, *, val_fraction: float = 0.1,
                 seed: int = 0, splits: tuple[str, ...] = ("train", "val", "test"),
                 limit: int | None = None) -> Dataset:
    """Read ``source`` and return the requested splits.

    ``train`` and ``val`` are carved from the official trainval list
    (deterministically for ``seed``); ``test`` is the official test list and
    is never used to choose anything. ``limit`` caps each split (for quick looks).
    """
    if not 32 <= image_size <= MAX_IMAGE_SIZE or image_size % 32:
        raise PetsegError(f"image size {image_size} must be a multiple of 32 from 32 to {MAX_IMAGE_SIZE}; "
                          "try 128")
    kind = source.split(":", 1)[0]
    if kind == "synthetic":
        trainval, test, skipped = synthetic_splits(source, image_size, seed)
    elif kind == "tfds":
        trainval, test, skipped = _tfds_splits(image_size)
    else:
        trainval, test, skipped = _directory_splits(Path(source), image_size, splits)
    out: dict[str, Split] = {}
    if "train" in splits or "val" in splits:
        train, val = carve_validation(trainval, val_fraction, seed)
        out.update({"train": train, "val": val})
    if "test" in splits:
        out["test"] = test
    out = {name: split for name, split in out.items() if name in splits}
    if limit is not None:
        out = {name: split.take(range(min(limit, len(split)))) for name, split in out.items()}
    for name, split in out.items():
        if len(split) == 0:
            raise PetsegError(f"no usable examples in the {name} split of {source}; "
                              f"point --data at {SOURCES_HELP}")
    return Dataset(source=source, image_size=image_size, splits=out, skipped=skipped)


def carve_validation(trainval: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split trainval into train and validation, the same way for the same seed."""
    n = len(trainval)
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(n * fraction)), n - 1) if n >= 2 and fraction > 0 else 0
    return trainval.take(np.sort(order[n_val:])), trainval.take(np.sort(order[:n_val]))


# --- official archive layout ------------------------------------------------------------


def _directory_splits(root: Path, size: int, wanted: tuple[str, ...]
                      ) -> tuple[Split, Split, collections.Counter]:
    if not root.is_dir():
        raise PetsegError(f"dataset {root} is not a directory; pass --data {SOURCES_HELP}")
    for sub in ("images", "annotations/trimaps"):
        if not (root / sub).is_dir():
            raise PetsegError(f"dataset directory {root} has no {sub}/; expected the official "
                              "Oxford-IIIT Pet layout (extract images.tar.gz and annotations.tar.gz there)")
    skipped: collections.Counter = collections.Counter()
    stray = sum(1 for p in (root / "images").iterdir() if p.suffix.lower() != ".jpg")
    if stray:
        skipped["stray files"] = stray
    need_trainval = "train" in wanted or "val" in wanted
    trainval = (_read_list(root, "trainval", size, skipped) if need_trainval
                else _empty_split(size))
    test = _read_list(root, "test", size, skipped) if "test" in wanted else _empty_split(size)
    return trainval, test, skipped


def _split_names(root: Path, split: str) -> list[str]:
    path = root / "annotations" / f"{split}.txt"
    if not path.is_file():
        raise PetsegError(f"dataset directory {root} has no annotations/{split}.txt; "
                          "expected the official Oxford-IIIT Pet layout")
    names = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = line.split()[0]
        # Names come from a file we do not control: never let one reach outside the dataset.
        if "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
            raise PetsegError(f"annotations/{split}.txt names {name!r}, which is not a plain image "
                              "name; fix or regenerate the split file")
        names.append(name)
    if not names:
        raise PetsegError(f"annotations/{split}.txt in {root} lists no images; restore it from "
                          "annotations.tar.gz")
    return names


def _read_list(root: Path, split: str, size: int, skipped: collections.Counter) -> Split:
    names = _split_names(root, split)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: read_example(root, n, size), names))
    kept = [(name, r) for name, r in zip(names, results) if not isinstance(r, str)]
    for r in results:
        if isinstance(r, str):
            skipped[r] += 1
    if not kept:
        return _empty_split(size)
    return Split(np.stack([r[0] for _, r in kept]), np.stack([r[1] for _, r in kept]),
                 [name for name, _ in kept])


def read_example(root: Path, name: str, size: int) -> tuple[np.ndarray, np.ndarray] | str:
    """Read one image and trimap pair, or return why it was skipped."""
    image_path = root / "images" / f"{name}.jpg"
    trimap_path = root / "annotations" / "trimaps" / f"{name}.png"
    if not image_path.is_file():
        return "missing images"
    if not trimap_path.is_file():
        return "missing trimaps"
    try:
        image = load_rgb(image_path)
    except PetsegError:
        return "unreadable images"
    try:
        with Image.open(trimap_path) as im:
            trimap = np.asarray(im.convert("L") if im.mode not in ("L", "P") else im)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return "bad trimaps"
    classes = checked_classes(trimap, image.size)
    if isinstance(classes, str):
        return classes
    return resize_image(image, size), resize_mask(classes, size)


def checked_classes(trimap: np.ndarray, image_size: tuple[int, int]) -> np.ndarray | str:
    """Class ids for a trimap that fits its (width, height) image, or why it was skipped."""
    try:
        classes = trimap_to_classes(trimap)
    except ValueError:
        return "bad trimaps"
    if classes.shape != image_size[::-1]:
        return "trimaps of the wrong size"
    # Every Oxford-IIIT Pet photo shows a pet; a trimap without one is the known corrupt kind.
    if not np.any(classes == 0):
        return "trimaps without a pet"
    return classes


def load_rgb(path: Path) -> Image.Image:
    """Open any image Pillow reads as RGB (RGBA, palette, grey and CMYK occur in practice).

    The EXIF orientation is applied first: phones store portrait photos sideways with a
    "rotate" tag, and masks must line up with the photo as every viewer shows it.
    """
    try:
        with Image.open(path) as im:
            im.load()
            if im.width < 1 or im.height < 1:
                raise PetsegError(f"{path} has no pixels")
            return ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError,
            SyntaxError) as exc:
        raise PetsegError(f"{path} is not a readable image ({exc}); pass a JPEG or PNG photo") from exc


def resize_image(image: Image.Image, size: int) -> np.ndarray:
    return np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize((size, size), Image.NEAREST), dtype=np.uint8)


def _empty_split(size: int) -> Split:
    return Split(np.zeros((0, size, size, 3), np.uint8), np.zeros((0, size, size), np.uint8), [])


# --- TFDS (online users) -----------------------------------------------------------------


def _tfds_splits(size: int) -> tuple[Split, Split, collections.Counter]:
    # Decide before importing TFDS (and TensorFlow with it) so that offline users hear at once.
    data_dir = Path(os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets"))
    if not (data_dir / "oxford_iiit_pet").is_dir() and not _reachable(TFDS_HOST, 443):
        raise PetsegError("TFDS cannot download oxford_iiit_pet (offline); point --data at a local copy "
                          "in the official layout (make model DATA=DIR ENCODER_WEIGHTS=FILE), or run "
                          "the offline demo (--data synthetic, make demo)")
    tfds = import_tfds()
    builder = tfds.builder("oxford_iiit_pet", data_dir=str(data_dir))
    builder.download_and_prepare()
    skipped: collections.Counter = collections.Counter()
    # TFDS's train split is the official trainval list; validation is carved from it as for a directory.
    return _tfds_split(builder, "train", size, skipped), _tfds_split(builder, "test", size, skipped), skipped


def import_tfds():
    """tensorflow_datasets, ready to prepare oxford_iiit_pet (or a one-line error without it)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as exc:
        raise PetsegError("--data tfds needs tensorflow-datasets (pip install 'petseg[train]'); "
                          f"or pass --data {SOURCES_HELP}") from exc
    try:
        import importlib_resources  # noqa: F401
    except ImportError:
        # TFDS 4.9 imports this backport when it prepares a dataset but declares it only for
        # Python < 3.9; from 3.11 the standard library's importlib.resources is the same API.
        try:
            import importlib.resources.abc  # noqa: F401
        except ImportError:
            pass
        else:
            sys.modules.setdefault("importlib_resources", importlib.resources)
    return tfds


def _tfds_split(builder, split: str, size: int, skipped: collections.Counter) -> Split:
    kept = []
    for ex in builder.as_dataset(split=split).as_numpy_iterator():
        image = Image.fromarray(ex["image"]).convert("RGB")
        classes = checked_classes(ex["segmentation_mask"][..., 0], image.size)
        if isinstance(classes, str):
            skipped[classes] += 1
            continue
        # Named as in the official lists (TFDS keeps the file name), so both sources agree.
        name = ex["file_name"].decode().removesuffix(".jpg")
        kept.append((name, resize_image(image, size), resize_mask(classes, size)))
    if not kept:
        return _empty_split(size)
    # TFDS stores examples in hash order; sorting makes the validation carve independent of it.
    kept.sort(key=lambda item: item[0])
    return Split(np.stack([k[1] for k in kept]), np.stack([k[2] for k in kept]), [k[0] for k in kept])


def _reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
