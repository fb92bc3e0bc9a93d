"""The packaged photos and the forgeries made from them."""

import numpy as np
import pytest

from pmsp_utils.data import load_photo, photo_names
from pmsp_utils.data.synthetic import crop_to, decode, ellipse_mask, polygon_mask, recompress, splice, tutorial_forgeries


def test_every_packaged_photo_loads():
    for name in photo_names():
        photo = load_photo(name)
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3 and min(photo.shape[:2]) >= 300
    with pytest.raises(ValueError, match="Unknown photo 'lena'"):
        load_photo("lena")


def test_masks():
    mask = ellipse_mask((50, 80), (25, 40), (10, 20))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert abs(mask.sum() - np.pi * 10 * 20) < 0.05 * np.pi * 10 * 20
    square = polygon_mask((20, 20), [(5, 5), (14, 5), (14, 14), (5, 14)])
    assert square.sum() == 100


def test_splice_puts_donor_pixels_exactly_inside_the_mask(photo):
    donor = photo[::-1].copy()
    mask = ellipse_mask(photo.shape[:2], (60, 70), (30, 40))
    forgery = splice(photo, donor, mask, host_quality=None, final_quality=None)
    assert forgery.format == "PNG"
    np.testing.assert_array_equal(forgery.image[mask == 1], donor[mask == 1])
    np.testing.assert_array_equal(forgery.image[mask == 0], photo[mask == 0])
    np.testing.assert_array_equal(decode(forgery.data), forgery.image)
    with pytest.raises(ValueError, match="mask shape"):
        splice(photo, donor, mask[:10])


def test_crop_to_reflects_past_the_border(photo):
    crop = crop_to(photo, (10, 10), (photo.shape[0] - 5, 0))
    np.testing.assert_array_equal(crop[:5], photo[-5:, :10])
    np.testing.assert_array_equal(crop[5:], photo[::-1][:5, :10])


def test_tutorial_forgeries_are_deterministic():
    first, second = tutorial_forgeries(), tutorial_forgeries()
    assert list(first) == list(second) and len(first) == 4
    for name in first:
        assert first[name].data == second[name].data
        assert 0.02 < first[name].tampered_fraction < 0.4


def test_recompress_keeps_the_mask(photo):
    forgery = splice(photo, photo[::-1].copy(), ellipse_mask(photo.shape[:2], (60, 70), (30, 40)))
    again = recompress(forgery, 60)
    assert again.format == "JPEG" and again.provenance["recompressed_quality"] == 60
    np.testing.assert_array_equal(again.mask, forgery.mask)
    assert not np.array_equal(again.image, forgery.image)


# --- the embedded synthetic set -------------------------------------------------------

from pmsp_utils.data import load_folder  # noqa: E402
from pmsp_utils.data import synthetic  # noqa: E402
from pmsp_utils.data.synthetic import SHAPES, SyntheticConfig, SyntheticForgerySet, random_region  # noqa: E402

SMALL = SyntheticConfig(size=96)


def test_items_depend_only_on_seed_and_index():
    first, second = SyntheticForgerySet(12, seed=4, config=SMALL), SyntheticForgerySet(30, seed=4, config=SMALL)
    for index in (0, 7, 11):
        assert first[index].data == second[index].data, "adding items must not change earlier ones"
    assert first[3].data != SyntheticForgerySet(12, seed=5, config=SMALL)[3].data
    assert [f.data for f in first] == [f.data for f in SyntheticForgerySet(12, seed=4, config=SMALL)]
    with pytest.raises(IndexError):
        first[12]


def test_kinds_sizes_and_masks():
    items = list(SyntheticForgerySet(80, seed=0, config=SMALL))
    kinds = {f.provenance["kind"] for f in items}
    assert kinds == {"splicing", "copy-move", "authentic"}
    generator = SyntheticForgerySet(80, seed=0, config=SMALL)
    assert [generator.kind(i) for i in range(80)] == [f.provenance["kind"] for f in items]
    for forgery in items:
        assert forgery.image.shape == (96, 96, 3) and forgery.mask.dtype == np.uint8
        assert forgery.format == "JPEG" and 70 <= forgery.provenance["final_quality"] <= 98
        if forgery.provenance["kind"] == "authentic":
            assert not forgery.mask.any()
        else:
            assert 0.005 <= forgery.tampered_fraction <= 0.40, forgery.provenance
    assert {f.provenance.get("shape") for f in items} - {None} == set(SHAPES)


@pytest.mark.parametrize("feather", [0.0, 1.0])
def test_masks_are_exact(monkeypatch, feather):
    """A magenta donor (a colour no photo here has) must land exactly where the mask says."""
    magenta = np.array([255, 0, 255], np.float32)

    def plain_patch(source, height, width, config, rng, provenance):
        return np.broadcast_to(magenta, (height, width, 3)).astype(np.uint8)

    monkeypatch.setattr(synthetic, "_donor_patch", plain_patch)
    config = SyntheticConfig(size=96, splicing=1.0, copy_move=0.0, feather=feather, blur=0, noise=0, color_match=0, final_quality=None)
    for forgery in SyntheticForgerySet(10, seed=2, config=config):
        image = forgery.image.astype(int)
        donor_weight = image[..., 0] - image[..., 1]  # magenta raises red above green, host pixels barely
        if feather == 0.0:
            exact = (image == magenta.astype(int)).all(axis=2)
            np.testing.assert_array_equal(forgery.mask.astype(bool), exact)
        else:
            assert (donor_weight[forgery.mask == 1] > 0).all()


def test_region_shapes_cover_the_requested_area():
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        fractions = [random_region(200, 0.1, shape, rng).mean() for _ in range(20)]
        assert 0.04 < np.median(fractions) < 0.2, shape
    with pytest.raises(ValueError, match="shape must be one of"):
        random_region(50, 0.1, "star", rng)


def test_write_to_disk_in_the_generic_layout(tmp_path):
    dataset = SyntheticForgerySet(10, seed=1, config=SMALL).write(tmp_path, show_progress=False)
    assert len(dataset) == 10
    record = next(r for r in dataset if r.is_tampered)
    np.testing.assert_array_equal(record.load_mask(), SyntheticForgerySet(10, seed=1, config=SMALL)[int(record.name[-5:])].mask)
    reloaded = load_folder(tmp_path, "synthetic")
    assert len(reloaded) == 10 and not reloaded.missing_masks and not reloaded.inconsistent


def test_raw_ela_does_not_separate_the_synthetic_set():
    """Hard enough to matter: raw ELA as a pixel score stays far from AUC 0.9 (pooled)."""
    from sklearn.metrics import roc_auc_score

    from pmsp_utils.ela import ela

    items = list(SyntheticForgerySet(16, seed=9))  # 576 x 576, as the network sees them
    scores = np.concatenate([ela(f.data).mean(axis=2)[::2, ::2].ravel() for f in items])
    masks = np.concatenate([f.mask[::2, ::2].ravel() for f in items])
    assert roc_auc_score(masks, scores) < 0.8


@pytest.mark.parametrize("angle_seed", range(6))
def test_a_rotated_donor_adds_no_black_corners(angle_seed):
    """Rotation's empty corners are filled from the donor: a bright donor stays free of near-black pixels."""
    rng = np.random.default_rng(angle_seed)
    source = rng.integers(90, 200, (300, 400, 3), dtype=np.uint8)  # no pixel near black
    config = SyntheticConfig(rotate=1.0, rotate_degrees=45.0, resample=0.0, donor_double_jpeg=0.0)
    provenance = {}
    patch = synthetic._donor_patch(source, 120, 90, config, rng, provenance)
    assert abs(provenance["donor_angle"]) > 0
    assert patch.shape == (120, 90, 3)
    assert int((patch.max(axis=2) < 40).sum()) == 0


def test_rotation_adds_no_near_black_pixels_to_copy_moves():
    """Whole forgeries: the same copy-move provenance with rotation adds no near-black pixels inside the mask beyond the photo's own."""
    counts = {}
    for rotate in (0.0, 1.0):
        config = SyntheticConfig(splicing=0.0, copy_move=1.0, rotate=rotate, final_quality=None)
        forgeries = SyntheticForgerySet(8, seed=7, config=config)
        counts[rotate] = sum(int(((item.image.max(axis=2) < 16) & (item.mask > 0)).sum()) for item in (forgeries[i] for i in range(8)))
    assert counts[1.0] <= counts[0.0] + 100, counts  # before the fix: 2147 against 1270


def test_a_pixel_limit_below_the_packaged_photos_names_the_setting_not_an_internal_file(monkeypatch):
    """PMSP_MAX_IMAGE_PIXELS=1 stopped `pmsp evaluate --data synthetic` naming site-packages/.../flower.jpg as a
    possible decompression bomb: a file the user never gave. The error names the setting."""
    import pytest
    from PIL import Image

    from pmsp_utils.data.photos import load_photo
    from pmsp_utils.images import ImageTooLargeError

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1)
    with pytest.raises(ImageTooLargeError, match=r"PMSP_MAX_IMAGE_PIXELS=1 is below the size of the packaged photo 'flower'"):
        load_photo("flower")
