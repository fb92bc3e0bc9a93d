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
    assert again.format == "JPEG" and again.recipe["recompressed_quality"] == 60
    np.testing.assert_array_equal(again.mask, forgery.mask)
    assert not np.array_equal(again.image, forgery.image)
