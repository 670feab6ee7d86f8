"""The shared reader: official layout, class mapping, real-world bad files, splits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from petseg.dataset import load_dataset
from petseg.errors import PetsegError
from petseg.labels import trimap_to_classes
from petseg.metrics import agreement, confusion, scores


def test_trimap_values_map_to_pet_background_border():
    assert trimap_to_classes(np.array([[1, 2, 3]])).tolist() == [[0, 1, 2]]


def test_trimap_values_outside_1_to_3_are_refused():
    with pytest.raises(ValueError, match="1..3"):
        trimap_to_classes(np.array([[0, 1, 4]]))


def test_official_layout_reads_every_split(official_dir):
    data = load_dataset(str(official_dir), 64, val_fraction=0.2)
    assert data.counts() == {"train": 8, "val": 2, "test": 4}
    train = data["train"]
    assert train.images.shape == (8, 64, 64, 3) and train.images.dtype == np.uint8
    assert train.masks.shape == (8, 64, 64) and set(np.unique(train.masks)) <= {0, 1, 2}
    assert not set(data["train"].names) & set(data["val"].names)


def test_validation_carve_is_deterministic_and_seeded(official_dir):
    a = load_dataset(str(official_dir), 64, val_fraction=0.3, seed=1)["val"].names
    b = load_dataset(str(official_dir), 64, val_fraction=0.3, seed=1)["val"].names
    c = load_dataset(str(official_dir), 64, val_fraction=0.3, seed=2)["val"].names
    assert a == b and a != c


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK"])
def test_odd_image_modes_become_rgb(official_dir, mode):
    path = official_dir / "images" / "Synthetic_trainval_0.jpg"
    image = Image.open(path).convert(mode)
    image.save(path, format="PNG" if mode in ("RGBA", "P") else "JPEG")  # a PNG named .jpg, as in the wild
    data = load_dataset(str(official_dir), 64, val_fraction=0.1)
    assert sum(data.counts().values()) == 14 and not data.skipped


def test_bad_files_are_skipped_counted_and_reported(official_dir):
    images, trimaps = official_dir / "images", official_dir / "annotations" / "trimaps"
    (images / "Synthetic_trainval_0.jpg").write_bytes(b"")  # zero bytes
    (images / "Synthetic_trainval_1.jpg").write_text("not an image")
    (trimaps / "Synthetic_trainval_2.png").unlink()  # missing trimap
    Image.fromarray(np.full((10, 10), 2, np.uint8)).save(trimaps / "Synthetic_trainval_3.png")  # wrong size
    Image.fromarray(np.full((64, 64), 7, np.uint8)).save(trimaps / "Synthetic_trainval_4.png")  # values
    Image.fromarray(np.full((64, 64), 2, np.uint8)).save(trimaps / "Synthetic_trainval_5.png")  # no pet
    (images / "Synthetic_trainval_0.mat").write_bytes(b"stray")
    data = load_dataset(str(official_dir), 64, val_fraction=0.25)
    assert data.counts()["train"] + data.counts()["val"] == 4
    assert sum(data.skipped.values()) == 7
    assert "skipped 7" in data.summary() and "stray files" in data.summary()


def test_no_usable_examples_is_an_error(official_dir):
    for path in (official_dir / "annotations" / "trimaps").glob("*test*"):
        path.unlink()
    with pytest.raises(PetsegError, match="no usable examples in the test split"):
        load_dataset(str(official_dir), 64)


def test_split_names_cannot_escape_the_dataset(official_dir):
    (official_dir / "annotations" / "test.txt").write_text("../../etc/passwd 1 1 1\n")
    with pytest.raises(PetsegError, match="not a plain image name"):
        load_dataset(str(official_dir), 64)


def test_stray_whitespace_in_split_files_is_tolerated(official_dir):
    path = official_dir / "annotations" / "test.txt"
    path.write_text("\n".join(f"  {line}  \r" for line in path.read_text().splitlines()) + "\n\n")
    assert len(load_dataset(str(official_dir), 64, splits=("test",))["test"]) == 4


def test_missing_layout_names_the_fix(tmp_path):
    with pytest.raises(PetsegError, match="official Oxford-IIIT Pet layout"):
        load_dataset(str(tmp_path), 64)


def test_synthetic_source_is_deterministic():
    a = load_dataset("synthetic:12", 64, seed=3)
    b = load_dataset("synthetic:12", 64, seed=3)
    assert np.array_equal(a["train"].images, b["train"].images)
    assert set(np.unique(a["train"].masks)) == {0, 1, 2}


def test_metrics_from_confusion():
    truth = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    s = scores(confusion(truth, pred))
    assert s["pixel_accuracy"] == pytest.approx(4 / 6)
    assert s["per_class_iou"] == {"pet": pytest.approx(1 / 3), "background": pytest.approx(2 / 3),
                                  "border": pytest.approx(1 / 2)}
    assert s["mean_iou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert agreement(truth, pred) == pytest.approx(4 / 6)


def test_shared_slice_copes_with_its_real_quirks(shared_data):
    data = load_dataset(str(shared_data), 128)
    # 300 trainval + 298 test listed; the 3 .mat files are stray, nothing else is skipped.
    assert sum(data.counts().values()) == 598
    assert data.skipped == {"stray files": 3}


def _phone_photo(path, stored=(50, 30), orientation=6):
    """A JPEG stored ``stored`` (width, height) whose EXIF says to rotate it for display, as phones do.

    The stored picture's left tenth is white, so the displayed picture shows where it went.
    """
    pixels = np.zeros((stored[1], stored[0], 3), np.uint8)
    pixels[:, : stored[0] // 10] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation tag
    Image.fromarray(pixels).save(path, quality=95, exif=exif)
    return path


@pytest.mark.parametrize("orientation, white_edge", [(6, "top"), (8, "bottom")])
def test_exif_orientation_is_applied_when_reading(tmp_path, orientation, white_edge):
    from petseg.dataset import load_rgb

    image = np.asarray(load_rgb(_phone_photo(tmp_path / "phone.jpg", orientation=orientation)))
    assert image.shape[:2] == (50, 30)  # displayed portrait, stored landscape
    # 6 turns the stored picture clockwise for display (its left edge goes to the top); 8 the other way.
    edge = image[:3] if white_edge == "top" else image[-3:]
    assert edge.mean() > 200 and image[20:30].mean() < 30


def test_dataset_reader_rotates_phone_photos_to_match_their_trimaps(official_dir):
    # A user's own photo, stored sideways with an EXIF rotation; its trimap is drawn as displayed.
    name = "Synthetic_trainval_0"
    path = official_dir / "images" / f"{name}.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(path).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)
    data = load_dataset(str(official_dir), 64, val_fraction=0.1)
    assert not data.skipped and sum(data.counts().values()) == 14
    reread = dict(zip(data["train"].names + data["val"].names,
                      np.concatenate([data["train"].images, data["val"].images])))[name]
    # What a viewer shows: the stored pixels turned clockwise, as the tag says.
    shown = Image.open(path).convert("RGB").transpose(Image.Transpose.ROTATE_270)
    assert np.array_equal(reread, np.asarray(shown.resize((64, 64), Image.BILINEAR)))


@pytest.mark.slow
def test_tfds_source_reads_classes_splits_and_names_like_the_official_layout(tmp_path, monkeypatch):
    # The online path, offline: TFDS's own oxford_iiit_pet builder prepares a local TFDS_DATA_DIR
    # from official-layout files (only its download is redirected), then --data tfds reads it.
    pytest.importorskip("tensorflow_datasets")
    from unittest import mock

    from official_layout import write_official_layout

    from petseg.dataset import import_tfds

    tfds = import_tfds()

    root = write_official_layout(tmp_path / "archive", n_trainval=10, n_test=4, size=64, seed=5)
    data_dir = tmp_path / "tfds"
    builder = tfds.builder("oxford_iiit_pet", data_dir=str(data_dir))
    with mock.patch.object(tfds.download.DownloadManager, "download_and_extract",
                           lambda self, urls: {key: str(root) for key in urls}):
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))

    online = load_dataset("tfds", 64, val_fraction=0.2, seed=3)
    local = load_dataset(str(root), 64, val_fraction=0.2, seed=3)
    # TFDS's train split is the official trainval list, its test split the test list.
    assert online.counts() == local.counts() == {"train": 8, "val": 2, "test": 4}
    assert not set(online["train"].names) & set(online["val"].names)
    assert online["val"].names == load_dataset("tfds", 64, val_fraction=0.2, seed=3)["val"].names

    def by_name(data, splits):
        return {name: (image, mask) for s in splits
                for name, image, mask in zip(data[s].names, data[s].images, data[s].masks)}

    for splits in (("train", "val"), ("test",)):
        tfds_read, dir_read = by_name(online, splits), by_name(local, splits)
        assert sorted(tfds_read) == sorted(dir_read), splits  # names as in the official lists
        for name, (image, mask) in tfds_read.items():
            # Trimap 1/2/3 (pet/background/border) -> class 0/1/2, the same pixels either way.
            assert np.array_equal(mask, dir_read[name][1]), name
            # TFDS decodes the JPEG with TensorFlow, the reader with Pillow: near-identical pixels.
            assert np.abs(image.astype(int) - dir_read[name][0].astype(int)).mean() < 2, name
    assert set(np.unique(online["test"].masks)) == {0, 1, 2}
