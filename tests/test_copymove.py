"""The copy-move matcher (pmsp_utils.copymove, issue 36): each test fails on a broken matcher."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pmsp_utils import copymove
from pmsp_utils.ela import ela

data = pytest.importorskip("skimage.data")


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def photo(name: str = "coffee") -> np.ndarray:
    image = getattr(data, name)()
    return jpeg(np.stack([image] * 3, axis=2) if image.ndim == 2 else image, 85)


def box(shape, top, left, height, width) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top : top + height, left : left + width] = True
    return mask


def covered(found: np.ndarray, truth: np.ndarray) -> float:
    return float((found & truth).sum() / truth.sum())


def test_a_translated_copy_is_found_with_both_regions():
    image = photo()
    forged = image.copy()
    forged[203:283, 261:361] = image[60:140, 70:170]
    result = copymove.detect(forged)
    assert len(result.pairs) == 1, [(pair.offset, pair.score) for pair in result.pairs]
    pair = result.pairs[0]
    assert pair.offset == (143, 191) and pair.score >= copymove.PAIR_THRESHOLD
    assert covered(pair.region_a, box(image.shape[:2], 60, 70, 80, 100)) > 0.6
    assert covered(pair.region_b, box(image.shape[:2], 203, 261, 80, 100)) > 0.6
    assert not (pair.region_b & ~box(image.shape[:2], 190, 250, 106, 126)).any()  # nothing far outside the copy


@pytest.mark.parametrize("degrees, scale", [(15, 1.0), (-10, 0.9), (8, 1.1)])
def test_a_rotated_and_scaled_copy_is_found(degrees, scale):
    image = photo("chelsea")
    piece = Image.fromarray(image[40:160, 60:200]).rotate(degrees, resample=Image.Resampling.BICUBIC)
    piece = np.asarray(piece.resize((round(140 * scale), round(120 * scale)), Image.Resampling.BICUBIC))
    middle = piece[piece.shape[0] // 2 - 35 : piece.shape[0] // 2 + 35, piece.shape[1] // 2 - 45 : piece.shape[1] // 2 + 45]
    forged = image.copy()
    forged[180:250, 300:390] = middle
    result = copymove.detect(jpeg(forged, 95))
    assert result.found
    assert covered(result.both_mask(), box(image.shape[:2], 180, 300, 70, 90)) > 0.4


def planted(change: str) -> np.ndarray:
    """A 70x100 piece of the cat photo, changed, pasted 190 rows down and 290 columns right, saved at JPEG 95."""
    image = photo("chelsea")
    piece = Image.fromarray(image[30:150, 40:190])
    if "mirrored" in change:
        piece = piece.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    degrees = int(change.split("rotated ")[1].split()[0]) if "rotated" in change else 0
    piece = piece.rotate(degrees, resample=Image.Resampling.BICUBIC)
    if "scaled" in change:
        factor = float(change.split("scaled ")[1].split()[0])
        piece = piece.resize((round(150 * factor), round(120 * factor)), Image.Resampling.BICUBIC)
    forged = image.copy()
    top, left = (25, 25) if min(piece.size) >= 95 + 25 else (0, 0)  # a shrunk piece: from its corner
    forged[190:260, 290:390] = np.asarray(piece)[top : top + 70, left : left + 100]
    return jpeg(forged, 95)


@pytest.mark.parametrize("change", ["rotated 20 degrees", "rotated 30 degrees"])
def test_a_strongly_rotated_copy_is_found(change):
    """Offsets over such a copy change by a third to half a pixel per pixel: propagating a neighbour's offset as it is
    lands pixels off, and grouping by offset splits the copy into many small groups. Before :func:`copymove.match`'s
    continued offsets and :func:`copymove.duplicated_pairs`' second pass, neither was found."""
    result = copymove.detect(planted(change))
    assert result.found, change
    assert covered(result.both_mask(), box(result.shape, 190, 290, 70, 100)) > 0.4, change


def test_a_copy_rotated_45_degrees_is_found_when_the_change_is_measured_over_several_jumps(monkeypatch):
    """With the default :data:`copymove.EXTRAPOLATED` (the change per jump measured over one jump), whole-pixel offsets
    err by up to a pixel per pixel: PatchMatch finds the true offset for a quarter of this piece rotated 45 degrees,
    too few pixels are kept, and the copy is not found. Measured over up to four jumps, it is (the wider setting is not
    the default: on validation it moved as many images down as up)."""
    forged = planted("rotated 45 degrees")
    assert not copymove.detect(forged).found
    monkeypatch.setattr(copymove, "EXTRAPOLATED", {16: (1,), 4: (1, 2), 1: (1, 4)})
    result = copymove.detect(forged)
    assert result.found
    assert covered(result.both_mask(), box(result.shape, 190, 290, 70, 100)) > 0.4


@pytest.mark.parametrize("change", ["scaled 1.25", "scaled 1.5", "scaled 0.67", "rotated 15 degrees scaled 1.25"])
def test_a_scaled_copy_is_found_by_the_cross_scale_pass(change):
    """Zernike moments over a disc are not scale-invariant at a fixed radius: without the cross-scale pass
    (``scales=()``) none of these copies is found; with it (each patch against the patches 1.375 times larger) each is."""
    forged = planted(change)
    assert not copymove.detect(forged, scales=()).found, change
    result = copymove.detect(forged)
    assert result.found, change
    assert covered(result.both_mask(), box(result.shape, 190, 290, 70, 100)) > 0.4, change
    assert result.pairs[0].score >= copymove.PAIR_THRESHOLD


def test_a_mirrored_copy_is_matched_but_not_reported():
    """The matcher pairs a mirrored copy (with copymove.MIRRORS_REPORTED on), but does not report it: a mirror-symmetric
    object gives the same evidence."""
    forged = planted("mirrored")
    assert not copymove.detect(forged).found
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(copymove, "MIRRORS_REPORTED", True)
        result = copymove.detect(forged)
    assert result.found and covered(result.both_mask(), box(result.shape, 190, 290, 70, 100)) > 0.4


@pytest.mark.parametrize("name", ["coffee", "chelsea", "astronaut", "rocket", "camera", "immunohistochemistry"])
def test_a_photo_without_a_copy_gives_no_pair(name):
    result = copymove.detect(photo(name))
    assert not result.found, [(pair.offset, round(pair.score, 2), int(pair.region_a.sum())) for pair in result.pairs]


def test_flat_and_periodic_images_give_no_pair():
    rng = np.random.default_rng(0)
    flat = np.clip(128 + rng.normal(0, 1.0, (256, 320, 3)), 0, 255).astype(np.uint8)
    assert not copymove.detect(flat).found
    tile = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    periodic = jpeg(np.tile(tile, (11, 14, 1)), 90)
    features, textured = copymove.patch_features(copymove.luminance(periodic))
    assert textured.mean() > 0.5  # the pattern is detailed: it is the periodicity check that must reject it
    assert not copymove.detect(periodic).found


def test_the_copy_is_told_from_its_source_by_its_second_compression():
    image = photo()  # the host: one JPEG compression (quality 85)
    piece = jpeg(image[60:140, 70:170].copy(), 70)  # the pasted piece went through one more
    forged = image.copy()
    forged[203:283, 261:361] = piece  # off the 8x8 grid
    final = jpeg(forged, 95)
    result = copymove.detect(final, ela_map=ela(final))
    assert result.found
    pair = result.pairs[0]
    assert pair.copy == "b" and pair.evidence >= copymove.ELA_MARGIN
    assert covered(pair.copy_region, box(image.shape[:2], 203, 261, 80, 100)) > 0.6
    assert covered(pair.copy_region, box(image.shape[:2], 60, 70, 80, 100)) == 0.0
    undecided = copymove.which_is_copy(pair.region_a, pair.region_b, None)  # no evidence: both marked
    assert undecided[0] is None


def test_the_network_tells_the_copy_where_it_sees_a_difference_and_strong_ela_where_it_does_not():
    """The order of the evidence (copymove.NETWORK_MARGIN): on CASIA copy-moves the ELA log-ratio named the copy about
    as often as a coin, the network's map far more often; ELA still decides a copy saved at another quality."""
    a, b = np.zeros((20, 40), bool), np.zeros((20, 40), bool)
    a[5:15, 2:12], b[5:15, 25:35] = True, True
    levels = np.ones((20, 40), np.float32)
    levels[b] = 2.0  # ELA says b: log(2.5 / 1.5) = 0.51
    seen = np.zeros((20, 40), np.float32)
    seen[a] = 0.3  # the network says a, by 0.3
    assert copymove.which_is_copy(a, b, levels, seen)[0] == "a"  # the network decides over ELA
    faint = seen * (copymove.NETWORK_MARGIN / 0.3) * 0.5  # a difference under the margin: ELA decides
    assert copymove.which_is_copy(a, b, levels, faint) == ("b", pytest.approx(np.log(2.5 / 1.5)))
    weak = np.ones((20, 40), np.float32)
    weak[b] = 1.2  # log(1.7 / 1.5) = 0.125, under ELA_MARGIN: neither
    assert copymove.which_is_copy(a, b, weak, faint)[0] is None and copymove.which_is_copy(a, b, weak)[0] is None
    assert copymove.copy_evidence(a, b, levels, seen) == (pytest.approx(np.log(2.5 / 1.5)), pytest.approx(-0.3))


def test_fuse_raises_the_copy_and_keeps_the_network_elsewhere():
    network = np.full((50, 60), 0.2, np.float32)
    network[0:5, 0:5] = 0.9
    region_a, region_b = box((50, 60), 10, 10, 10, 10), box((50, 60), 30, 40, 10, 10)
    result = copymove.CopyMoveResult([copymove.DuplicatedPair((20, 30), 0.8, region_a, region_b, "b", 0.5)], (50, 60))
    fused = copymove.fuse(network, result)
    assert np.all(fused[region_b] == pytest.approx(0.9)) and np.all(fused[region_a] == pytest.approx(0.2))
    assert fused[0, 0] == pytest.approx(0.9) and fused[45, 5] == pytest.approx(0.2)
    result.pairs[0].copy = None
    assert np.all(copymove.fuse(network, result)[region_a] >= 0.5)  # undecided: both marked


def test_a_large_photo_is_matched_at_a_bounded_scale():
    image = np.asarray(Image.fromarray(photo()).resize((2400, 1600), Image.Resampling.BICUBIC))
    forged = image.copy()
    forged[800:1100, 1300:1700] = image[200:500, 300:700]
    result = copymove.detect(forged)
    assert result.scale < 1.0 and result.found
    assert covered(result.both_mask(), box(image.shape[:2], 800, 1300, 300, 400)) > 0.5


def test_pmsp_localize_copy_move_marks_the_copy_and_reports_the_pair(tmp_path, cache_folder):
    pytest.importorskip("keras")
    import csv

    from pmsp_utils.cli import main

    image = photo()
    forged = image.copy()
    forged[203:283, 261:361] = image[60:140, 70:170]
    Image.fromarray(forged).save(tmp_path / "forged.png")
    Image.fromarray(image).save(tmp_path / "clean.png")
    out = tmp_path / "out"
    assert main(["localize", str(tmp_path / "forged.png"), str(tmp_path / "clean.png"), "--out", str(out), "--weights", "synthetic",
                 "--runtime", "keras", "--copy-move"]) == 0
    rows = {Path(row["image"]).name: row for row in csv.DictReader((out / "scores.csv").open())}
    assert rows["forged.png"]["copy_move_pair"] == "yes" and float(rows["forged.png"]["copy_move_score"]) >= 0.5
    assert rows["clean.png"]["copy_move_pair"] == "no"
    mask = np.asarray(Image.open(out / "forged_png_mask.png")) > 0
    assert mask[203:283, 261:361].mean() > 0.6  # the copy is marked whatever the network said
    overlay = np.asarray(Image.open(out / "forged_png_overlay.jpg")).astype(int)
    yellow = (overlay[..., 0] > 200) & (overlay[..., 1] > 170) & (overlay[..., 2] < 90)
    assert yellow.sum() > 200  # the pair's outlines and arrow are drawn
    assert main(["localize", str(tmp_path / "forged.png"), "--out", str(tmp_path / "plain"), "--weights", "synthetic",
                 "--runtime", "keras", "--no-copy-move"]) == 0
    assert "copy_move_pair" not in (tmp_path / "plain" / "scores.csv").read_text().splitlines()[0]


def notebook_definitions() -> dict:
    """The functions notebook 07 defines in its cells tagged ``pmsp-defines``, executed in a fresh namespace."""
    import json
    import math

    path = Path(__file__).resolve().parent.parent / "notebooks" / "07_copy_move.ipynb"
    namespace = {"np": np, "math": math, "Image": Image, "copymove": copymove}
    cells = [cell for cell in json.loads(path.read_text())["cells"] if "pmsp-defines" in cell.get("metadata", {}).get("tags", [])]
    assert len(cells) == 3, "notebook 07 defines features, matching and filtering in three tagged cells"
    for cell in cells:
        exec(compile("".join(cell["source"]), str(path), "exec"), namespace)
    return namespace


def test_notebook_07s_matcher_is_the_packages():
    """The code students read in notebook 07 gives the package's maps, step by step."""
    ours = notebook_definitions()
    image = photo("chelsea")[::2, ::2]
    image = image.copy()
    image[90:130, 150:200] = image[10:50, 20:70]
    grey = ours["luminance"](image)
    np.testing.assert_array_equal(grey, copymove.luminance(image))
    features, textured = ours["patch_features"](grey)
    package_features, package_textured = copymove.patch_features(grey)
    np.testing.assert_array_equal(features, package_features)
    np.testing.assert_array_equal(textured, package_textured)
    offsets, distance = ours["match"](features, textured, seed=3)
    package_offsets, package_distance = copymove.match(package_features, package_textured, seed=3)
    np.testing.assert_array_equal(offsets, package_offsets)
    np.testing.assert_array_equal(distance, package_distance)
    np.testing.assert_array_equal(ours["regular_matches"](offsets, distance), copymove.regular_matches(offsets, distance))
