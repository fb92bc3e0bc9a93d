"""The native-resolution policy (issue 35): training crops at the image's own pixels, inference whole or in blended
tiles, never a resampling."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pmsp_utils.model_settings import ModelSettings
from pmsp_utils.pipeline import blend_weights, crop_window, localize, native_tiles

rng = np.random.default_rng(7)


def jpeg_420(path, height=200, width=152, quality=85):
    """A textured photo-like JPEG with 4:2:0 chroma subsampling (16x16 MCUs), written to ``path``."""
    smooth = np.cumsum(np.cumsum(rng.normal(0, 3, (height, width, 3)), axis=0), axis=1)
    image = np.clip(128 + smooth / np.abs(smooth).max() * 100 + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(path, quality=quality, subsampling="4:2:0")
    return path


def test_a_training_crop_carries_the_whole_images_ela_at_that_place(tmp_path, cache_folder):
    pytest.importorskip("keras")
    from pmsp_utils.data.records import Record
    from pmsp_utils.ela import ElaCache, ElaSettings, ela
    from pmsp_utils.feed import make_sequence
    from pmsp_utils.train import TrainConfig

    path = jpeg_420(tmp_path / "photo.jpg")
    mask = np.zeros((200, 152), np.uint8)
    mask[60:120, 40:100] = 255
    Image.fromarray(mask).save(tmp_path / "photo_gt.png")
    record = Record("folder", "photo", "splicing", path, tmp_path / "photo_gt.png")
    config = TrainConfig(input_size=96, policy="native", batch_size=1, weights=None, workers=1, seed=3)
    sequence = make_sequence([record], config, shuffle=False, augment=False, ela_cache=ElaCache(settings=ElaSettings.of_model(config.model)))
    try:
        (inputs, targets) = sequence[0]
    finally:
        sequence.close()
    top, left = crop_window(200, 152, 96, np.random.default_rng([3, 0, 0]))
    assert top % 8 == 0 and left % 8 == 0
    whole = ela(path, quality=config.model.ela_quality)
    np.testing.assert_array_equal(inputs["ela"][0], whole[top : top + 96, left : left + 96])
    np.testing.assert_array_equal(targets[0, ..., 0], (mask[top : top + 96, left : left + 96] > 127).astype(np.float32))
    # Computing ELA on the crop instead would differ: the crop's JPEG re-save sees other chroma blocks unless the
    # crop started on the 16-pixel MCU grid, and other content at its border.
    with Image.open(path) as opened:
        cropped = np.asarray(opened.convert("RGB"))[top + 4 : top + 100, left + 4 : left + 100]
    assert not np.array_equal(ela(cropped, quality=90), whole[top + 4 : top + 100, left + 4 : left + 100])


def test_crop_windows_lie_on_the_jpeg_grid_and_inside_the_image():
    generator = np.random.default_rng(0)
    for _ in range(200):
        height, width = (int(v) for v in generator.integers(96, 700, 2))
        top, left = crop_window(height, width, 96, generator)
        assert top % 8 == 0 and left % 8 == 0 and top + 96 <= max(height, 96) and left + 96 <= max(width, 96)
    assert crop_window(50, 60, 96, generator) == (0, 0)


class GlobalContext:
    """A stand-in network with what makes tiles disagree: each pixel's output mixes its own value with its tile's mean
    (as the pyramid's global pooling does)."""

    pmsp_input_names = ["rgb", "ela"]

    def predict_on_batch(self, inputs):
        red = inputs["rgb"][..., :1] / 255.0
        return 0.6 * red + 0.4 * red.mean(axis=(1, 2, 3), keepdims=True)


def planted(height=400, width=400):
    image = np.full((height, width, 3), 40, np.uint8)
    image[150:350, 150:350] = 220  # crosses the tiles' borders at 192 and 144..208
    return image


def test_an_image_that_fits_one_tile_gives_the_whole_image_map():
    settings = ModelSettings(input_size=96, output_stride=16, policy="native")
    image = planted(90, 70)
    native = localize(GlobalContext(), image, settings=settings).probability
    padded = localize(GlobalContext(), image, settings=settings, policy="pad").probability
    np.testing.assert_array_equal(native, padded)


def test_blended_tiles_show_no_seam_on_a_region_that_crosses_a_tile_border(monkeypatch):
    image = planted()
    sources = {"rgb": image.astype(np.float32), "ela": np.zeros_like(image, np.float32)}
    blended = native_tiles(GlobalContext(), sources, ["rgb", "ela"], 192, 0.25, 4, False)
    monkeypatch.setattr("pmsp_utils.pipeline.blend_weights", lambda size, overlap: np.ones((size, size), np.float32))
    boxed = native_tiles(GlobalContext(), sources, ["rgb", "ela"], 192, 0.25, 4, False)
    inside = (slice(160, 340), slice(160, 340))

    def largest_step(probability):
        region = probability[inside]
        return max(np.abs(np.diff(region, axis=0)).max(), np.abs(np.diff(region, axis=1)).max())

    assert largest_step(boxed) > 0.01  # tiles disagree, and plain averaging shows where they meet
    assert largest_step(blended) < 0.2 * largest_step(boxed)
    assert np.all((blended >= 0) & (blended <= 1))


def test_blend_weights_fall_towards_the_edges_and_stay_positive():
    weights = blend_weights(96, 24)
    assert weights[48, 48] == 1.0 and 0 < weights[0, 0] < weights[0, 48] < weights[12, 48] < 1.0
    np.testing.assert_allclose(weights, weights.T)


def test_native_tiles_cover_a_large_photo_and_keep_its_size():
    image = rng.integers(0, 255, (530, 777, 3)).astype(np.uint8)
    settings = ModelSettings(input_size=192, output_stride=16, policy="native")
    result = localize(GlobalContext(), image, settings=settings)
    assert result.probability.shape == (530, 777) and result.policy == "native"
