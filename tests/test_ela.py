"""pmsp_utils.ela against an independent computation, on every format and every bad input."""

from __future__ import annotations

import io
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tifffile
from conftest import encode, reference_ela
from PIL import Image

from pmsp_utils import images
from pmsp_utils.ela import SCALINGS, ela, ela_result
from pmsp_utils.images import ImageReadError, ImageTooLargeError, load_image

# --- the algorithm --------------------------------------------------------------------


@pytest.mark.parametrize("quality", [1, 50, 75, 90, 100])
def test_jpeg_matches_reference(photo, tmp_path, quality):
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(photo, "JPEG", quality=80))
    expected = reference_ela(Image.open(path).convert("RGB"), quality)
    result = ela(path, quality=quality)
    assert result.dtype == np.uint8 and result.shape == photo.shape
    np.testing.assert_array_equal(result, expected)


def test_forged_region_has_higher_error(photo):
    """A region never compressed before shows more error than one at its JPEG fixpoint."""
    camera = np.asarray(Image.open(io.BytesIO(encode(photo, "JPEG", quality=70))))
    forged = camera.copy()
    forged[32:96, 40:120] = photo[32:96, 40:120]
    ela_map = ela(encode(forged, "PNG"), quality=70).mean(axis=2)
    inside = ela_map[32:96, 40:120].mean()
    outside = np.concatenate([ela_map[:32].ravel(), ela_map[96:].ravel()]).mean()
    assert inside > 2 * outside


def test_scalings(photo):
    raw = ela(photo, scaling="raw").astype(int)
    fixed = ela(photo, scaling="fixed", multiplier=7)
    np.testing.assert_array_equal(fixed, np.minimum(raw * 7, 255))
    stretched = ela(photo, scaling="max")
    assert stretched.max() == 255
    np.testing.assert_array_equal(stretched, np.round(raw * (255 / raw.max())).astype(np.uint8))
    assert set(SCALINGS) == {"raw", "fixed", "max"}


def test_max_scaling_of_a_flat_image_is_zero():
    flat = np.full((16, 16, 3), 128, np.uint8)
    assert ela(flat, scaling="max").max() == ela(flat).max() == 0


# --- formats and modes ----------------------------------------------------------------


@pytest.mark.parametrize("format, options", [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})])
def test_lossless_formats(photo, format, options):
    result = ela_result(encode(photo, format, **options))
    assert result.format == format
    assert result.conversions == ()
    np.testing.assert_array_equal(result.ela, reference_ela(Image.fromarray(photo)))
    assert "Not a JPEG" in result.describe()


def test_lossy_webp(photo):
    data = encode(photo, "WEBP", quality=80)
    np.testing.assert_array_equal(ela(data), reference_ela(Image.open(io.BytesIO(data)).convert("RGB")))


def test_grayscale_runs_on_one_channel(photo):
    gray = Image.fromarray(photo).convert("L")
    result = ela_result(encode(gray, "JPEG", quality=85))
    assert result.ela.shape == photo.shape
    assert np.array_equal(result.ela[..., 0], result.ela[..., 2])
    np.testing.assert_array_equal(result.ela, reference_ela(Image.open(io.BytesIO(encode(gray, "JPEG", quality=85)))))


@pytest.mark.parametrize(
    "mode, expected_note",
    [("P", "palette image converted to RGB"), ("RGBA", "RGBA converted to RGB (alpha channel dropped)"),
     ("CMYK", "CMYK converted to RGB"), ("LA", "LA converted to L (alpha dropped)"), ("1", "1 converted to L")],
)
def test_modes_are_converted_and_reported(photo, mode, expected_note):
    source = Image.fromarray(photo).convert(mode)
    data = encode(source, "JPEG" if mode == "CMYK" else "PNG")
    decoded = Image.open(io.BytesIO(data))
    target = "L" if mode in {"LA", "1"} else "RGB"
    result = ela_result(data)
    assert expected_note in result.conversions
    np.testing.assert_array_equal(result.ela, reference_ela(decoded.convert(target)))


def test_palette_with_transparency(photo):
    source = Image.fromarray(photo).convert("P")
    data = encode(source, "PNG", transparency=0)
    assert "palette image converted to RGB (transparency dropped)" in ela_result(data).conversions


def test_16_bit_grayscale_tiff(photo, tmp_path):
    values = (photo[..., 0].astype(np.uint16) * 257 + 100).astype(np.uint16)
    path = tmp_path / "gray16.tif"
    tifffile.imwrite(path, values)
    result = ela_result(path)
    assert any("16-bit grayscale" in note for note in result.conversions)
    np.testing.assert_array_equal(result.ela, reference_ela(Image.fromarray((values >> 8).astype(np.uint8))))


def test_16_bit_rgb_tiff(photo, tmp_path):
    values = photo.astype(np.uint16) * 257
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, values, photometric="rgb")
    result = ela_result(path)
    assert any("16-bit RGB TIFF" in note for note in result.conversions)
    np.testing.assert_array_equal(result.ela, reference_ela(Image.fromarray((values >> 8).astype(np.uint8))))


@pytest.mark.parametrize("orientation, rotate", [(3, 2), (6, -1), (8, 1)])
def test_exif_rotation_analyses_stored_grid(photo, orientation, rotate):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(photo, "JPEG", quality=80, exif=exif)
    stored = Image.open(io.BytesIO(data)).convert("RGB")
    result = ela_result(data)
    np.testing.assert_array_equal(result.ela, np.rot90(reference_ela(stored), rotate))
    np.testing.assert_array_equal(result.image, np.rot90(np.asarray(stored), rotate))
    assert any(f"EXIF orientation {orientation}" in note for note in result.conversions)


def test_animated_gif_uses_first_frame(photo):
    frames = [Image.fromarray(photo).convert("P"), Image.fromarray(255 - photo).convert("P")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    result = ela_result(buffer.getvalue())
    assert "used the first of 2 frames" in result.conversions


@pytest.mark.parametrize(
    "array, note",
    [
        ("uint8", None),
        ("uint16", "uint16 array reduced to 8 bits (value >> 8)"),
        ("float", "float array in [0, 1] scaled to 0..255"),
        ("rgba", "RGBA array: alpha channel dropped"),
        ("int64", "int64 array cast to uint8"),
    ],
)
def test_numpy_arrays(photo, array, note):
    source = {
        "uint8": photo,
        "uint16": photo.astype(np.uint16) * 256,
        "float": photo / 255.0,
        "rgba": np.dstack([photo, np.full(photo.shape[:2], 7, np.uint8)]),
        "int64": photo.astype(np.int64),
    }[array]
    result = ela_result(source)
    assert result.conversions == (() if note is None else (note,))
    np.testing.assert_array_equal(result.ela, reference_ela(Image.fromarray(photo)))


def test_grayscale_arrays(photo):
    gray = photo[..., 1]
    np.testing.assert_array_equal(ela(gray), ela(gray[..., None]))
    np.testing.assert_array_equal(ela(gray), reference_ela(Image.fromarray(gray)))


def test_pil_image_and_file_object(photo, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(photo, "JPEG", quality=80))
    expected = ela(path)
    np.testing.assert_array_equal(ela(Image.open(path)), expected)
    with open(path, "rb") as stream:
        np.testing.assert_array_equal(ela(stream), expected)
    np.testing.assert_array_equal(ela(str(path)), expected)


# --- bad input ------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.jpg: no such file"):
        ela(tmp_path / "nowhere.jpg")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ImageReadError, match="is a folder"):
        ela(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty.jpg: the file is empty \(0 bytes\)"):
        ela(path)


def test_truncated_jpeg(photo, tmp_path):
    data = encode(photo, "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg: the image is truncated or corrupt"):
        ela(path)


def test_truncated_png(photo, tmp_path):
    data = encode(photo, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageReadError, match="cut.png: the image is truncated or corrupt"):
        ela(path)


@pytest.mark.parametrize(
    "content, hint",
    [(b"hello, this is a text file\n", "looks like text"), (b"<!DOCTYPE html><html>404</html>", "HTML page"),
     (b"%PDF-1.7\n\x00\x01\x02", "PDF"), (bytes(range(256)), "first bytes")],
)
def test_not_an_image(tmp_path, content, hint):
    path = tmp_path / "notes.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=f"notes.jpg: not an image Pillow can read.*{hint}"):
        ela(path)


def test_decompression_bomb_and_how_to_raise_the_limit(photo, tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(encode(photo, "PNG"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageTooLargeError, match="big.png: refused as a possible decompression bomb.*set_max_image_pixels"):
        ela(path)
    images.set_max_image_pixels(photo.shape[0] * photo.shape[1])
    assert ela(path).shape == photo.shape
    images.set_max_image_pixels(0)
    assert Image.MAX_IMAGE_PIXELS is None


def test_zero_size_inputs():
    with pytest.raises(ImageReadError, match="non-empty image array"):
        ela(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ImageReadError, match="zero size"):
        ela(Image.new("RGB", (0, 5)))


@pytest.mark.parametrize("quality", [0, 101, -5])
def test_quality_out_of_range(photo, quality):
    with pytest.raises(ValueError, match=f"quality must be from 1 to 100.*got {quality}"):
        ela(photo, quality=quality)


@pytest.mark.parametrize("quality", [90.5, "90", True, None])
def test_quality_of_wrong_type(photo, quality):
    with pytest.raises(TypeError, match="quality must be an integer"):
        ela(photo, quality=quality)


def test_bad_scaling_and_multiplier(photo):
    with pytest.raises(ValueError, match="scaling must be one of"):
        ela(photo, scaling="log")
    with pytest.raises(ValueError, match="multiplier must be positive"):
        ela(photo, scaling="fixed", multiplier=0)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((8, 8, 2), np.uint8), "has 2 channels"),
        (np.zeros((3, 8, 8), np.uint8), "has 8 channels"),
        (np.full((8, 8), 2.0), r"float arrays must hold values in \[0, 1\]"),
        (np.full((8, 8), np.nan), "NaN"),
        (np.full((8, 8), 300, np.int32), "values in"),
        (np.zeros((8, 8), bool), "unsupported array dtype"),
        (np.zeros((2, 8, 8, 3), np.uint8), "non-empty image array"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(ImageReadError, match=message):
        ela(array)


def test_float_image_mode_is_refused(photo):
    with pytest.raises(ImageReadError, match="floating-point"):
        ela(Image.fromarray(photo[..., 0].astype(np.float32)))


def test_unsupported_source_type():
    with pytest.raises(TypeError, match="Cannot read an image from int"):
        load_image(42)


# --- concurrency ----------------------------------------------------------------------


def test_thread_safe(photo):
    sources = [encode(np.roll(photo, shift, axis=1), "JPEG", quality=70 + shift) for shift in range(8)]
    expected = [ela(source) for source in sources]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(ela, sources * 3))
    for index, result in enumerate(results):
        np.testing.assert_array_equal(result, expected[index % len(sources)])


def test_process_safe(photo):
    sources = [encode(np.roll(photo, shift, axis=0), "JPEG", quality=75) for shift in range(4)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(ela, sources)
    for source, result in zip(sources, results):
        np.testing.assert_array_equal(result, ela(source))
