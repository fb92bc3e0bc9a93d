"""The generic folder layout: which mask belongs to which image, and how a mask file is read (colour, alpha, palette,
EXIF orientation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pmsp_utils.data import load_folder, read_mask
from pmsp_utils.data.records import MaskError

from test_data_loaders import BOX, save  # noqa: E402  (the loaders' fixtures: one box in a 48x64 image)
from test_data_loaders import box_mask as boxed_mask  # noqa: E402
from test_data_loaders import scene as boxed_scene  # noqa: E402


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    return boxed_scene(height, width, BOX, seed)


def box_mask(height: int, width: int) -> np.ndarray:
    return boxed_mask(height, width, BOX)


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


# --- finding 2: a colour mask is refused, not read by its luminance ---------------------------------------------------

def colour_mask(height: int, width: int, region=(255, 0, 0), rest=(255, 255, 255)) -> np.ndarray:
    mask = np.empty((height, width, 3), np.uint8)
    mask[:] = rest
    top, left, bottom, right = BOX
    mask[top:bottom, left:right] = region
    return mask


def test_a_colour_mask_is_refused_in_one_line_naming_it(tmp_path):
    """A red region on white was read by its luminance: the white (96% of the image) counted as tampered."""
    save(scene(48, 64, 0), tmp_path / "images" / "red.png")
    save(colour_mask(48, 64), tmp_path / "masks" / "red_gt.png")
    palette = Image.fromarray(colour_mask(48, 64, (0, 200, 0), (0, 0, 0))).convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    save(scene(48, 64, 1), tmp_path / "images" / "green.png")
    palette.save(tmp_path / "masks" / "green.png")  # a palette mask: green on black
    save(scene(48, 64, 2), tmp_path / "images" / "grey.png")
    save(np.stack([box_mask(48, 64)] * 3, axis=-1), tmp_path / "masks" / "grey.jpg", quality=75)  # grey, stored as RGB JPEG: read
    dataset = load_folder(tmp_path, "set")
    assert [record.name for record in dataset.records] == ["grey"]
    why = refused(dataset)
    assert why["red.png"] == ("mask red_gt.png is a colour mask (24% of its pixels coloured, e.g. RGB (255, 0, 0)): masks must be "
                              "white (tampered) on black (authentic); not used")
    assert why["green.png"].startswith("mask green.png is a colour mask") and "\n" not in why["green.png"]
    with pytest.raises(MaskError, match=r"red_gt.png: a colour mask .* masks must be white \(tampered\) on black \(authentic\)"):
        read_mask(tmp_path / "masks" / "red_gt.png")
    np.testing.assert_array_equal(dataset.records[0].load_mask(), box_mask(48, 64) // 255)


def test_alpha_masks_the_colour_of_transparent_pixels_is_not_looked_at(tmp_path):
    truth = box_mask(48, 64)
    white_on_clear = np.zeros((48, 64, 4), np.uint8)
    white_on_clear[..., 0] = 255  # transparent red: not seen
    white_on_clear[truth > 0] = (255, 255, 255, 255)
    np.testing.assert_array_equal(read_mask(save(white_on_clear, tmp_path / "white.png")), truth // 255)
    red_on_clear = np.zeros((48, 64, 4), np.uint8)
    red_on_clear[truth > 0] = (255, 0, 0, 255)  # a red region painted on a transparent layer: a colour mask
    with pytest.raises(MaskError, match="a colour mask"):
        read_mask(save(red_on_clear, tmp_path / "red.png"))


# --- finding 3: EXIF orientation ---------------------------------------------------------------------------------------

def save_turned(display: np.ndarray, path: Path) -> Path:
    """Store ``display`` turned a quarter, with the EXIF orientation 6 that turns it back for display."""
    image = Image.fromarray(np.ascontiguousarray(np.rot90(display, 1)))
    exif = image.getexif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, exif=exif.tobytes(), quality=95)
    return path


def test_a_mask_drawn_on_the_stored_pixels_of_a_turned_image_is_named_so(tmp_path):
    save_turned(scene(48, 64, 0), tmp_path / "images" / "wide.jpg")  # stored 48 wide and 64 high, displayed 64x48
    save(np.ascontiguousarray(np.rot90(box_mask(48, 64), 1)), tmp_path / "masks" / "wide.png")  # drawn on the stored pixels
    save_turned(scene(48, 64, 1), tmp_path / "images" / "right.jpg")
    save(box_mask(48, 64), tmp_path / "masks" / "right.png")  # drawn on the displayed image: fits, nothing to say
    dataset = load_folder(tmp_path, "set")
    assert [record.name for record in dataset.records] == ["right"] and not dataset.fixes
    assert refused(dataset) == {"wide.jpg": "mask is 48x64 but the image is 64x48 as displayed (EXIF orientation 6; stored 48x64): "
                                            "the image is scored as displayed, so turn the mask the same way or remove the tag; "
                                            "not resized, not used"}


def test_a_square_turned_image_says_its_mask_is_read_as_displayed_and_is_scored_so(tmp_path):
    from pmsp_utils.evaluate import evaluate

    display = scene(64, 64, 0)
    save_turned(display, tmp_path / "images" / "square.jpg")
    save(box_mask(64, 64), tmp_path / "masks" / "square.png")
    dataset = load_folder(tmp_path, "set")
    note = ("EXIF orientation 6: the image is scored as displayed, so its mask must be drawn on the displayed image, not on the "
            "stored pixels")
    assert dataset.fixes == [("square", note)] and dataset.records[0].notes == (note,)
    assert dataset.loading_report()[-1] == f"  square: {note}"  # said in full where pmsp evaluate and pmsp train print
    # the convention the note states: a map of the displayed image's bright box scores 1.0 against the displayed mask
    bright = {"bright": lambda image: (np.asarray(image.to_display().convert("L")) > 128).astype(np.float32)}
    scored = evaluate(dataset.records, bright, dataset="set", show_progress=False)
    assert scored.metrics["bright"].images[0].f1 == pytest.approx(1.0)


def test_pmsp_evaluate_scores_the_rest_and_exits_non_zero_when_images_are_refused(tmp_path, capsys):
    """The two images that claim one mask are named on stderr and left out; the third is scored; the exit code says
    that not everything asked for was scored (it was 0)."""
    from pmsp_utils.cli import main

    save(scene(48, 64, 0), tmp_path / "set" / "images" / "a.jpg")
    save(scene(48, 64, 1), tmp_path / "set" / "images" / "a.jpg.tif")
    save(scene(48, 64, 2), tmp_path / "set" / "images" / "b.jpg")
    save(box_mask(48, 64), tmp_path / "set" / "masks" / "a.jpg_gt.png")
    save(box_mask(48, 64), tmp_path / "set" / "masks" / "b.png")
    code = main(["evaluate", "--data", "folder", "--root", str(tmp_path / "set"), "--split", "all", "--weights", "synthetic",
                 "--baselines", "--no-copy-move", "--out", str(tmp_path / "out")])
    printed = capsys.readouterr()
    assert code == 1 and "a.jpg_gt.png" in printed.err, printed.err
    rows = (tmp_path / "out" / "per_image.csv").read_text().splitlines()[1:]
    assert "scoring all 1 images" in printed.out and [row.split(",")[2] for row in rows] == ["b"], rows


def test_an_image_with_two_masks_is_refused_naming_both(tmp_path):
    """a_gt.png beside a_mask.png, or b_gt.png beside b_gt.tif: the first suffix (or the last file read) won silently."""
    save(scene(48, 64, 0), tmp_path / "images" / "a.jpg")
    save(scene(48, 64, 1), tmp_path / "images" / "b.jpg")
    save(scene(48, 64, 2), tmp_path / "images" / "c.jpg")
    save(box_mask(48, 64), tmp_path / "masks" / "a_gt.png")
    save(255 - box_mask(48, 64), tmp_path / "masks" / "a_mask.png")
    save(box_mask(48, 64), tmp_path / "masks" / "b_gt.png")
    save(box_mask(48, 64), tmp_path / "masks" / "b_gt.tif")
    save(box_mask(48, 64), tmp_path / "masks" / "c.png")
    dataset = load_folder(tmp_path, "set")
    assert [record.image_path.name for record in dataset.records] == ["c.jpg"]
    why = refused(dataset)
    assert why["a.jpg"] == "has 2 masks (a_gt.png, a_mask.png); not used: keep one"
    assert why["b.jpg"] == "has 2 masks (b_gt.png, b_gt.tif); not used: keep one"
    assert not dataset.unmatched_masks
