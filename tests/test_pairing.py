"""The generic folder layout: which mask belongs to which image, and how a mask file is read (colour, alpha, palette,
EXIF orientation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from PIL import Image

from pmsp_utils.data import load_folder

BOX = (8, 6, 30, 40)  # top, left, bottom, right


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(20, 60, size=(height, width, 3), dtype=np.uint8)
    top, left, bottom, right = BOX
    image[top:bottom, left:right] = rng.integers(190, 240, size=(bottom - top, right - left, 3), dtype=np.uint8)
    return image


def box_mask(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    top, left, bottom, right = BOX
    mask[top:bottom, left:right] = 255
    return mask


def save(array: np.ndarray, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)
    return path


def refused(dataset) -> dict[str, str]:
    return {path.name: why for path, why in dataset.inconsistent}


# --- finding 1: a mask named exactly after one image is not another's by suffix --------------------------------------

def test_a_mask_named_after_one_image_is_not_another_images_by_its_suffix(tmp_path):
    """images/a.jpg and images/a_gt.jpg (another photo), only masks/a_gt.png: both were scored against a_gt.png."""
    save(scene(48, 64, 0), tmp_path / "images" / "a.jpg")
    save(scene(48, 64, 1), tmp_path / "images" / "a_gt.jpg")
    save(box_mask(48, 64), tmp_path / "masks" / "a_gt.png")
    dataset = load_folder(tmp_path, "set")
    assert {record.image_path.name: record.mask_path.name for record in dataset.records} == {"a_gt.jpg": "a_gt.png"}
    assert [path.name for path in dataset.missing_masks] == ["a.jpg"] and not dataset.inconsistent
    assert "1 tampered images without a mask (not used), e.g. a.jpg" in "\n".join(dataset.loading_report())
    # with its own mask beside, a.jpg takes that one (a_mask.png), still not a_gt.png
    save(box_mask(48, 64), tmp_path / "masks" / "a_mask.png")
    dataset = load_folder(tmp_path, "set")
    assert {record.image_path.name: record.mask_path.name for record in dataset.records} == {
        "a.jpg": "a_mask.png", "a_gt.jpg": "a_gt.png"}
    assert not dataset.unmatched_masks


def test_a_mask_two_images_still_claim_is_given_to_neither(tmp_path):
    """a.jpg (by its whole name) and a.jpg.tif (by its stem) both fit a.jpg_gt.png: one line each, naming the mask."""
    save(scene(48, 64, 0), tmp_path / "images" / "a.jpg")
    save(scene(48, 64, 1), tmp_path / "images" / "a.jpg.tif")
    save(scene(48, 64, 2), tmp_path / "images" / "b.jpg")
    save(box_mask(48, 64), tmp_path / "masks" / "a.jpg_gt.png")
    save(box_mask(48, 64), tmp_path / "masks" / "b.png")
    dataset = load_folder(tmp_path, "set")
    assert [record.image_path.name for record in dataset.records] == ["b.jpg"]
    why = refused(dataset)
    assert sorted(why) == ["a.jpg", "a.jpg.tif"] and not dataset.unmatched_masks and not dataset.missing_masks
    assert why["a.jpg"] == ("mask a.jpg_gt.png fits the name of this image and of a.jpg.tif, so it could be either's; "
                            "not used: rename the mask or one of the images")
    assert "a.jpg_gt.png" in why["a.jpg.tif"] and "\n" not in why["a.jpg.tif"]
