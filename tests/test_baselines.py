"""The classic baselines (Table I): maps at the image's size that respond to a planted inconsistency."""

import numpy as np
import pytest
from PIL import Image

from pmsp_utils.baselines import BASELINES, daubechies, heatmap
from pmsp_utils.baselines.cfa import tampered_posterior
from pmsp_utils.data.photos import load_photo, photo_names
from pmsp_utils.data.synthetic import jpeg_roundtrip
from pmsp_utils.metrics import pixel_auc


@pytest.fixture(scope="module")
def photo():
    return np.ascontiguousarray(load_photo(photo_names()[0])[:240, :320])


def _square_mask(shape, top=64, left=96, size=96):
    mask = np.zeros(shape[:2], np.uint8)
    mask[top : top + size, left : left + size] = 1
    return mask


def test_daubechies_coefficients():
    root3 = np.sqrt(3.0)
    expected = np.array([1 + root3, 3 + root3, 3 - root3, 1 - root3]) / (4 * np.sqrt(2.0))
    np.testing.assert_allclose(daubechies(2), expected, atol=1e-12)
    np.testing.assert_allclose(daubechies(1), [2**-0.5, 2**-0.5], atol=1e-12)
    h = daubechies(8)
    assert h.size == 16 and h[0] == pytest.approx(0.0544158422, abs=1e-9)  # db8's first coefficient
    assert h.sum() == pytest.approx(np.sqrt(2.0)) and (h**2).sum() == pytest.approx(1.0)
    for shift in range(1, 8):  # orthogonal to its even shifts
        assert np.dot(h[: -2 * shift], h[2 * shift :]) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("shape", [(240, 320, 3), (101, 77, 3), (64, 48)])
def test_maps_have_the_image_size_and_unit_range(name, shape, photo):
    array = photo[: shape[0], : shape[1]]
    if len(shape) == 2:
        array = array.mean(axis=2).astype(np.uint8)
    result = heatmap(name, array)
    assert result.shape == shape[:2] and result.dtype == np.float32
    assert 0.0 <= result.min() and result.max() <= 1.0 and result.max() > 0


def test_maps_follow_the_exif_orientation(tmp_path, photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(photo).save(path, quality=90, exif=exif)
    for name in BASELINES:
        assert heatmap(name, path).shape == (photo.shape[1], photo.shape[0]), name


def test_errors():
    with pytest.raises(ValueError, match="unknown baseline"):
        heatmap("noi9", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        heatmap("noi1", np.zeros((8, 8, 3), np.uint8))


def test_ela_finds_material_without_the_hosts_compression(photo):
    host = jpeg_roundtrip(photo, 75)
    mask = _square_mask(photo.shape)
    forged = np.where(mask[..., None] == 1, photo, host)  # pasted material never saved at 75
    assert pixel_auc(heatmap("ela", forged), mask) > 0.8


def test_noi1_finds_a_noisier_region(photo):
    rng = np.random.default_rng(0)
    mask = _square_mask(photo.shape)
    noisy = photo + rng.normal(0, 10, photo.shape) * mask[..., None]
    forged = np.clip(noisy, 0, 255).astype(np.uint8)
    assert pixel_auc(heatmap("noi1", forged), mask) > 0.85  # texture also reads as noise, so not 1.0
    assert pixel_auc(heatmap("noi1", photo), mask) < 0.6  # the untouched photo has no such region


def test_noi1_map_is_aligned_with_the_image():
    rng = np.random.default_rng(0)
    mask = _square_mask((240, 320))
    flat = np.clip(128 + rng.normal(0, 6, (240, 320, 3)) * mask[..., None], 0, 255).astype(np.uint8)
    result = heatmap("noi1", flat)
    assert result[mask == 1].min() > result[mask == 0].max()  # the square lies on 16-pixel block edges: no spill


def _bayer_green(image: np.ndarray) -> np.ndarray:
    """Keep green on one quincunx lattice and interpolate the other bilinearly, as a camera would."""
    green = image[..., 1].astype(np.float64)
    rows, cols = np.indices(green.shape)
    interpolated = (rows + cols) % 2 == 1
    padded = np.pad(green, 1, mode="reflect")
    neighbours = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]) / 4
    out = image.astype(np.float64).copy()
    out[..., 1] = np.where(interpolated, neighbours, green)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def test_cfa1_finds_a_region_without_cfa_traces(photo):
    rng = np.random.default_rng(1)
    textured = np.clip(photo + rng.normal(0, 4, photo.shape), 0, 255).astype(np.uint8)  # sensor noise everywhere
    camera = _bayer_green(textured)
    mask = _square_mask(photo.shape)
    forged = np.where(mask[..., None] == 1, textured, camera)  # pasted: no demosaicing pattern
    assert pixel_auc(heatmap("cfa1", forged), mask) > 0.9


def test_cfa_mixture_separates_two_populations():
    rng = np.random.default_rng(2)
    feature = np.concatenate([rng.normal(0, 0.1, 200), rng.normal(2.0, 0.3, 800)]).reshape(40, 25)
    posterior = tampered_posterior(feature).ravel()
    assert posterior[:200].mean() > 0.9 and posterior[200:].mean() < 0.1
