"""Reading the images users actually have, with clear errors and a record of every conversion.

ELA (section 3.1) and every later module read images through :func:`load_image`.
It accepts file paths, raw bytes, file objects, Pillow images and NumPy arrays;
JPEG, PNG, TIFF (8 and 16 bit), WebP, BMP and GIF; grayscale, palette, RGBA,
CMYK and the other Pillow modes. It returns pixels in the *stored* orientation
(where the JPEG block grid lives) plus the EXIF orientation, so ELA can run on
the grid and be rotated for display afterwards.

Bad input raises :class:`ImageReadError` (a ``ValueError``) or ``FileNotFoundError``
naming the file and what to do; nothing is guessed silently.

Large images: Pillow refuses files over twice ``PIL.Image.MAX_IMAGE_PIXELS``
(about 179 million pixels by default) as possible decompression bombs. Raise the
limit with :func:`set_max_image_pixels` or the ``PMSP_MAX_IMAGE_PIXELS``
environment variable (``0`` lifts it).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from .environment import native_stderr

#: What :func:`load_image` accepts.
ImageSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO, Image.Image, np.ndarray]

_EXIF_ORIENTATION = 0x0112
_TIFF_BITS_PER_SAMPLE = 258
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_DIRECT_MODES = {"RGB", "L"}
#: Pillow's names for files with a JPEG compression history.
JPEG_FORMATS = frozenset({"JPEG", "MPO"})


class ImageReadError(ValueError):
    """An image could not be read or used; the message names the source and what to do."""


class ImageTooLargeError(ImageReadError):
    """An image is over the decompression-bomb limit (see :func:`set_max_image_pixels`)."""


def set_max_image_pixels(limit: int | None) -> None:
    """Set the decompression-bomb limit for this process (``None`` or 0 lifts it): an image of more than ``limit``
    pixels is refused before it is decoded (Pillow's own check, which only warns up to twice its limit, is set to the
    same number)."""
    global _PIXEL_LIMIT
    Image.MAX_IMAGE_PIXELS = _PIXEL_LIMIT = int(limit) if limit else None


#: The limit set through :func:`set_max_image_pixels` (or ``PMSP_MAX_IMAGE_PIXELS``); None: Pillow's own default applies.
_PIXEL_LIMIT: int | None = None


def _apply_environment_limit() -> None:
    """Apply ``PMSP_MAX_IMAGE_PIXELS``; a malformed value is reported when an image is read, not at import."""
    global _ENVIRONMENT_ERROR
    from .environment import EnvironmentSettingError, max_image_pixels

    try:
        limit = max_image_pixels()
    except EnvironmentSettingError as error:
        _ENVIRONMENT_ERROR = error
        return
    _ENVIRONMENT_ERROR = None
    if limit is not None:
        set_max_image_pixels(limit)


_ENVIRONMENT_ERROR: Exception | None = None
_apply_environment_limit()


@dataclass(frozen=True)
class LoadedImage:
    """An image ready for analysis: mode ``RGB`` or ``L``, stored orientation, fully decoded."""

    image: Image.Image
    source: str
    format: str | None
    original_mode: str
    orientation: int
    conversions: tuple[str, ...]

    @property
    def is_jpeg(self) -> bool:
        """True when the file itself is a JPEG (so it has a compression history to analyse)."""
        return self.format in JPEG_FORMATS

    def to_display(self, image: Image.Image | None = None) -> Image.Image:
        """Apply the EXIF orientation to ``image`` (default: this image) for display."""
        return apply_orientation(self.image if image is None else image, self.orientation)


def describe_source(source: ImageSource) -> str:
    """A short human name for a source, used in messages."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, np.ndarray):
        return f"<array {source.shape} {source.dtype}>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.size[0]}x{source.size[1]}>"
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read a file's bytes with errors that say what is wrong with the path."""
    path = Path(path)
    if not path.exists() and path.is_symlink():  # a dangling link or a loop
        try:
            path.stat()
        except OSError as error:
            raise ImageReadError(f"{path}: cannot be read: a symbolic link that leads nowhere ({error.strerror or error}); "
                                 "fix or remove the link.") from None
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such file. Check the path (relative paths resolve from {Path.cwd()})."
        )
    if path.is_dir():
        raise ImageReadError(
            f"{path}: is a folder, not an image file. To process every image in a folder, "
            "pass its files to pmsp_utils.ela.ela_dataset."
        )
    import stat

    try:
        mode = path.stat().st_mode  # follows symlinks (a loop raises OSError "Too many levels of symbolic links")
    except OSError as error:
        raise ImageReadError(f"{path}: cannot be read ({error.strerror or error}); check the path and any links on it.") from None
    if not stat.S_ISREG(mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise ImageReadError(f"{path}: is {kind}, not an image file; only regular files are read (nothing was opened).")
    limit = max_file_bytes()
    if path.stat().st_size > limit:
        raise ImageReadError(f"{path}: the file is {path.stat().st_size / 1e6:.0f} MB, over the {limit / 1e6:.0f} MB this tool reads "
                             "(it follows PMSP_MAX_IMAGE_PIXELS, the pixel limit).")
    try:
        with open(path, "rb") as stream:  # bounded, whatever the file turns into while being read; in pieces, since one
            chunks, total = [], 0  # read(limit + 1) reserves the whole limit (16 GB with the pixel limit lifted) up front
            while total <= limit:
                chunk = stream.read(min(READ_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
    except OSError as error:  # no permission to read, an I/O error on the disk: this file's problem, not the batch's
        advice = "check its permissions (ls -l)" if isinstance(error, PermissionError) else "copy it again or check the disk"
        raise ImageReadError(f"{path}: cannot be read ({error.strerror or error}); {advice}.") from None
    data = b"".join(chunks)
    if len(data) > limit:
        raise ImageReadError(f"{path}: grew past {limit / 1e6:.0f} MB while being read; not an image file.")
    if not data:
        raise ImageReadError(f"{path}: the file is empty (0 bytes). Re-download or re-export it.")
    return data


READ_CHUNK = 8 << 20


def max_file_bytes() -> int:
    """The largest image file read: 8 bytes a pixel at twice the pixel limit (Pillow's own refusal point; a 16-bit RGBA
    TIFF), at least 64 MB: a bound on what one input may make this process read, never met by a real photo."""
    limit = Image.MAX_IMAGE_PIXELS or 10**9
    return max(64 * 2**20, 16 * int(limit) + 2**20)


#: A JPEG above SPARSE_CHECK_PIXELS must hold at least one byte per JPEG_PIXELS_PER_BYTE pixels: a 20 MP JPEG of one
#: flat colour (quality 75) is 314 KB, 64 pixels a byte, and any photo is denser; a header claiming 15x more pixels
#: than that is not a photo, and decoding it only fills memory with grey.
SPARSE_CHECK_PIXELS = 16_000_000
JPEG_PIXELS_PER_BYTE = 1000

#: Where :func:`open_image` keeps the warnings Pillow gave while decoding (each becomes one of the image's conversions).
PILLOW_WARNINGS = "pmsp_pillow_warnings"


def open_image(data: bytes, name: str) -> Image.Image:
    """Decode image bytes fully, turning Pillow's errors into :class:`ImageReadError`.

    Pillow's warnings (damaged EXIF, a TIFF tag it could not read ...) do not reach stderr as raw library lines: they
    are kept with the image and listed in its conversions, or, when the file cannot be read, the error says what it is.
    """
    native: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # libtiff writes its complaints to descriptor 2 from C, where no warning filter sees them: kept, for TIFFs only
            with native_stderr(native) if data[:4] in TIFF_MAGIC else contextlib.nullcontext():
                image = _open_image(data, name)
        except ImageReadError as error:
            if not native:
                raise
            raise type(error)(f"{error} libtiff said: {native[0].rstrip('.')}.") from None
    said = list(dict.fromkeys([str(warning.message).strip() for warning in caught if str(warning.message).strip()]
                              + [f"libtiff: {line}" for line in native]))
    if said:
        image.info[PILLOW_WARNINGS] = said
    return image



def _open_image(data: bytes, name: str) -> Image.Image:
    if not data:
        raise ImageReadError(f"{name}: the data is empty (0 bytes). Re-download or re-export it.")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise _too_large(name, error) from None
    except UnidentifiedImageError:
        if data[:4] in TIFF_MAGIC:  # a TIFF that Pillow could not open is damaged, not of an unknown kind
            raise ImageReadError(f"{name}: a TIFF whose structure is damaged (its image directory cannot be read; perhaps a "
                                 "truncated copy). Re-export or re-download it.") from None
        raise ImageReadError(
            f"{name}: not an image Pillow can read ({_sniff(data)}). Supported: JPEG, PNG, "
            "TIFF, WebP, BMP, GIF" + (", AVIF." if ".avif" in readable_suffixes() else ".")
        ) from None
    except MemoryError:
        raise
    except Exception as error:  # OSError, SyntaxError, ValueError, and for damaged GIF/TIFF also struct.error, IndexError, TypeError
        cut = "truncated" in str(error).lower()  # the file ends before its header does: a cut copy, not a bad header
        what = "the file is truncated, cut short inside its header" if cut else "the image header is corrupt"
        raise ImageReadError(f"{name}: {what} ({type(error).__name__}: {error}). Re-download or re-export it.") from None
    if 0 in image.size:
        raise ImageReadError(f"{name}: the image has zero size ({image.size[0]}x{image.size[1]} pixels).")
    pixels = image.size[0] * image.size[1]
    if image.format == "JPEG" and pixels > SPARSE_CHECK_PIXELS and len(data) * JPEG_PIXELS_PER_BYTE < pixels:
        # A header that claims far more pixels than the data could hold (a 72 KB file claiming 13000x13000 took 14 s
        # and 5.6 GB to decode into grey): refused before decoding.
        raise ImageReadError(f"{name}: its header claims {image.size[0]}x{image.size[1]} pixels, but the file holds only "
                             f"{len(data):,} bytes, too few for a JPEG of that size; it is damaged or crafted. Re-export it.")
    if _PIXEL_LIMIT and Image.MAX_IMAGE_PIXELS == _PIXEL_LIMIT and pixels > _PIXEL_LIMIT:  # a limit set is the limit (Pillow
        raise _too_large(name, f"{image.size[0]}x{image.size[1]} = {pixels:,} pixels, over the limit of "  # only warns up to
                               f"{_PIXEL_LIMIT:,}")  # twice its own)
    # Pillow decodes 48-bit RGB and 64-bit RGBA PNGs (raw modes RGB;16B, RGBA;16B) straight to 8 bits and forgets it:
    # note it before loading.
    if image.mode in ("RGB", "RGBA") and any(";16" in str(getattr(tile, "args", "")) for tile in getattr(image, "tile", None) or ()):
        image.info[SIXTEEN_BIT_RGB] = True
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise _too_large(name, error) from None
    except MemoryError:
        raise
    except Exception as error:  # OSError, EOFError ... and whatever a damaged frame table raises
        raise ImageReadError(
            f"{name}: the image is truncated or corrupt ({type(error).__name__}: {error}). Re-download or re-export it; "
            "partial images are refused because their grey fill would look like tampering."
        ) from None
    if image.format == "JPEG":
        _refuse_zeroed_scan(data, image, name)
    return image


#: Zero bytes in a row, inside a JPEG's scan data, from which on :func:`_refuse_zeroed_scan` looks at the pixels. A
#: photo's entropy-coded data is close to random (CASIA's: 0.8% zero bytes, never long runs); only flat areas under
#: optimised Huffman tables give runs, and they decode flat.
ZERO_RUN_BYTES = 256


def _longest_zero_run(data: bytes) -> int:
    zero = np.frombuffer(data, np.uint8) == 0
    if not zero.any():
        return 0
    edges = np.diff(np.concatenate([[0], zero.astype(np.int8), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def _refuse_zeroed_scan(data: bytes, image: Image.Image, name: str) -> None:
    """Refuse a JPEG whose scan data was wiped with zero bytes (a zero-filled download, a disk error): libjpeg decodes
    the zeros without a word into the same 8x8 block over and over, a texture that no photo has and that a localizer
    would mark. Flagged when the scan holds a long run of zero bytes and a full-width band of 16 rows repeats exactly
    every 8 pixels without being flat (a flat band is what zeros give under optimised tables, and it is fine)."""
    start = data.find(b"\xff\xda")
    run = _longest_zero_run(data[start:]) if start >= 0 else 0
    if run < ZERO_RUN_BYTES:
        return
    grey = np.asarray(image.convert("L") if image.mode != "L" else image)
    for top in range(0, grey.shape[0] - 15, 16):
        band = grey[top : top + 16]
        if band.shape[1] > 16 and np.array_equal(band[:, 8:], band[:, :-8]) and band.min() != band.max():
            raise ImageReadError(f"{name}: {run:,} zero bytes in a row inside its JPEG data decode to one 8x8 block repeated "
                                 f"(from row {top}), not a photo: the file is damaged (zero-filled). Re-download or re-export it.")


def load_image(source: ImageSource, *, name: str | None = None) -> LoadedImage:
    """Read any supported source into a :class:`LoadedImage` (mode ``RGB`` or ``L``).

    Every change made on the way (mode, bit depth, dropped alpha, frames) is
    listed in ``.conversions``. The pixels stay in the stored orientation; the
    EXIF orientation is kept in ``.orientation``. ``name`` replaces the source's
    own description in messages (useful for bytes read from a file).
    """
    if _ENVIRONMENT_ERROR is not None:
        raise _ENVIRONMENT_ERROR
    return _load_image(source, name=name)


def _load_image(source: ImageSource, *, name: str | None = None) -> LoadedImage:
    name = name or describe_source(source)
    if isinstance(source, np.ndarray):
        return _from_array(source, name)
    if isinstance(source, Image.Image):
        image, fmt = source, getattr(source, "format", None)
        if 0 in image.size:
            raise ImageReadError(f"{name}: the image has zero size.")
        image.load()
    else:
        if isinstance(source, (str, os.PathLike)):
            data = read_bytes(source)
        elif isinstance(source, (bytes, bytearray)):
            data = bytes(source)
        elif hasattr(source, "read"):
            data = source.read()
        else:
            raise TypeError(
                f"Cannot read an image from {type(source).__name__}: pass a path, bytes, a file "
                "object, a PIL image or a NumPy array."
            )
        image = open_image(data, name)
        fmt = image.format
    try:
        return _normalise(image, name, fmt)
    except (ImageReadError, MemoryError):
        raise
    except Exception as error:  # damaged files make Pillow raise TypeError, IndexError, struct.error ... while converting
        raise ImageReadError(f"{name}: the image is corrupt ({type(error).__name__}: {error}). Re-download or re-export it.") from None


SIXTEEN_BIT_RGB = "pmsp_sixteen_bit_rgb"  # set in image.info by open_image


def _normalise(image: Image.Image, name: str, fmt: str | None) -> LoadedImage:
    conversions: list[str] = []
    orientation = _orientation(image)
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        conversions.append(f"used the first of {frames} frames")
    original_mode = image.mode
    if image.mode in ("RGB", "RGBA") and ((fmt == "TIFF" and _tiff_bits(image) == 16) or image.info.get(SIXTEEN_BIT_RGB)):
        conversions.append(f"16-bit {image.mode} {fmt or 'image'} reduced to 8 bits per channel (value >> 8)")
    if image.mode in _DIRECT_MODES:
        converted = image
    elif image.mode in _SIXTEEN_BIT_MODES or image.mode == "I":
        converted, note = _sixteen_to_eight(image, name)
        conversions.append(note)
    elif image.mode == "F":
        raise ImageReadError(
            f"{name}: a 32-bit floating-point image has no defined 0..255 range. Convert it "
            "to 8 or 16 bit first (e.g. scale to 0..255 and save as PNG)."
        )
    elif image.mode in {"1", "LA", "La"}:
        converted = image.convert("L")
        conversions.append(f"{image.mode} converted to L" + (" (alpha dropped)" if "A" in image.mode or "a" in image.mode else ""))
    elif image.mode in {"P", "PA"}:
        has_alpha = image.mode == "PA" or "transparency" in image.info
        converted = image.convert("RGBA" if has_alpha else "RGB").convert("RGB")
        conversions.append("palette image converted to RGB" + (" (transparency dropped)" if has_alpha else ""))
    elif image.mode in {"RGBA", "RGBa", "RGBX"}:
        converted = image.convert("RGB")
        conversions.append(f"{image.mode} converted to RGB (alpha channel dropped)")
    else:  # CMYK, YCbCr, LAB, HSV, ...
        converted = image.convert("RGB")
        conversions.append(f"{image.mode} converted to RGB")
    if orientation != 1:
        conversions.append(f"EXIF orientation {orientation}: analysed as stored, rotated for display")
    conversions += [message if message.startswith("libtiff: ") else f"Pillow warned: {message}" for message in image.info.get(PILLOW_WARNINGS, ())]
    return LoadedImage(converted, name, fmt, original_mode, orientation, tuple(conversions))


def _from_array(array: np.ndarray, name: str) -> LoadedImage:
    conversions: list[str] = []
    if array.size == 0 or array.ndim not in (2, 3) or 0 in array.shape:
        raise ImageReadError(
            f"{name}: expected a non-empty image array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)."
        )
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise ImageReadError(
            f"{name}: the last axis has {array.shape[2]} channels; expected 1, 3 or 4 "
            "(channels-last). For a channels-first array use np.moveaxis(array, 0, -1)."
        )
    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.uint16 and array.max() <= 255:  # 8-bit values in a wider type: a shift would make them black
        pixels = array.astype(np.uint8)
        conversions.append("uint16 array holding 0..255: kept as 8 bits")
    elif array.dtype == np.uint16:
        pixels = (array >> 8).astype(np.uint8)
        conversions.append("uint16 array reduced to 8 bits (value >> 8)")
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageReadError(f"{name}: the float array contains NaN or infinity.")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ImageReadError(
                f"{name}: float arrays must hold values in [0, 1], found [{low:.10g}, {high:.10g}]. "
                "If it holds 0..255 values, pass array.astype(np.uint8) instead."
            )
        pixels = np.round(array * 255.0).astype(np.uint8)
        conversions.append("float array in [0, 1] scaled to 0..255")
    elif np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.bool_):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ImageReadError(
                f"{name}: integer array with values in [{low}, {high}]; expected 0..255 "
                "(or pass uint16 for 16-bit data)."
            )
        pixels = array.astype(np.uint8)
        conversions.append(f"{array.dtype} array cast to uint8")
    else:
        raise ImageReadError(f"{name}: unsupported array dtype {array.dtype}; use uint8, uint16 or float in [0, 1].")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
        conversions.append("RGBA array: alpha channel dropped")
    mode = "L" if pixels.ndim == 2 else "RGB"
    image = Image.fromarray(np.ascontiguousarray(pixels), mode=mode)
    return LoadedImage(image, name, None, mode, 1, tuple(conversions))


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not stop the analysis of the pixels
        return 1
    return value if value in range(1, 9) else 1


def apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    """Rotate or flip ``image`` as EXIF ``orientation`` (1..8) says, like ImageOps.exif_transpose."""
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    return image if method is None else image.transpose(method)


def _tiff_bits(image: Image.Image) -> int:
    tags = getattr(image, "tag_v2", None)
    if not tags:
        return 8
    bits = tags.get(_TIFF_BITS_PER_SAMPLE, 8)
    return int(bits[0] if isinstance(bits, tuple) else bits)


def lossy_conversions(conversions: tuple[str, ...] | list[str]) -> list[str]:
    """The conversions a person should hear about on the command line: what was dropped or cut (frames, alpha, bits) and
    what Pillow warned of; a mode change that keeps every value (palette or CMYK to RGB, EXIF orientation) is left out."""
    lossy = ("frames", "reduced to 8 bits", "alpha", "transparency", "Pillow warned", "kept as 8 bits")
    return [conversion for conversion in conversions if any(word in conversion for word in lossy)]


def _sixteen_to_eight(image: Image.Image, name: str) -> tuple[Image.Image, str]:
    """A 16-bit or 32-bit integer (mode ``I``) grayscale image in 8 bits, by the range its values use: 0..255 kept as they
    are (8-bit pictures saved in a wider container; a shift would make them black), 0..65535 reduced to 8 bits
    (value >> 8), anything else refused."""
    values = np.asarray(image).astype(np.int64)
    if values.min() < 0 or values.max() > 65535:
        raise ImageReadError(f"{name}: 32-bit integer samples outside 0..65535; convert to 8 or 16 bit first.")
    bits = "32-bit integer" if image.mode == "I" else "16-bit"
    if values.max() <= 255:
        return Image.fromarray(values.astype(np.uint8), mode="L"), f"{image.mode} ({bits} grayscale) holding 0..255: kept as 8 bits"
    return Image.fromarray((values >> 8).astype(np.uint8), mode="L"), f"{image.mode} ({bits} grayscale) reduced to 8 bits (value >> 8)"


def _too_large(name: str, error: Exception | str) -> ImageTooLargeError:
    if isinstance(error, Image.DecompressionBombError) and Image.MAX_IMAGE_PIXELS:  # Pillow quotes twice the limit set
        import re

        found = re.search(r"\((\d+) pixels\)", str(error))
        error = (f"{int(found.group(1)):,} pixels" if found else "its size") + f", over the limit of {Image.MAX_IMAGE_PIXELS:,}"
    return ImageTooLargeError(
        f"{name}: refused as a possible decompression bomb ({error}). If you trust the file, raise "
        "the limit with pmsp_utils.images.set_max_image_pixels(n) or the PMSP_MAX_IMAGE_PIXELS "
        "environment variable (0 lifts it)."
    )


def readable_suffixes() -> frozenset[str]:
    """File endings of every format this Pillow can open (its own registry: .jfif, .jpe, .gif, .avif ... included)."""
    Image.init()
    needs_ghostscript = {".eps", ".ps"}  # Pillow opens these only through an outside program
    return frozenset(ending.lower() for ending, format in Image.registered_extensions().items()
                     if format in Image.OPEN and ending.lower() not in needs_ghostscript)


HEIC_ADVICE = ("a HEIC/HEIF photo (as iPhones save them), which Pillow cannot read without a plug-in: convert it to JPEG or "
               "PNG first (for example with `heif-convert` or an image editor), or pip install pillow-heif")
_RAW_ADVICE = "a camera raw file, which Pillow cannot read: export it as JPEG, PNG or TIFF first (for example with darktable or dcraw)"
#: Endings of pictures that Pillow cannot open (where this Pillow's own registry lacks them), and what to do: in a
#: folder they are named, not passed over in silence.
UNREADABLE_ENDINGS = {
    ".heic": HEIC_ADVICE, ".heif": HEIC_ADVICE, ".hif": HEIC_ADVICE,
    ".avif": "an AVIF image, which this Pillow cannot read: upgrade Pillow (11.3 reads AVIF), or convert it to PNG first",
    ".jxl": "a JPEG XL image, which Pillow cannot read without a plug-in: convert it to PNG first, or pip install pillow-jxl-plugin",
    ".svg": "a vector drawing, not a photo: export it to PNG first if you mean to analyse it",
    **dict.fromkeys((".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".raw"), _RAW_ADVICE),
}


#: The first bytes of a TIFF (and a BigTIFF), little- and big-endian.
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _sniff(data: bytes) -> str:
    head = data[:64]
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return "it is an HTML page, perhaps a failed download"
    if head.startswith(b"%PDF"):
        return "it is a PDF"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        return f"it is {HEIC_ADVICE}"
    if all(32 <= byte < 127 or byte in (9, 10, 13) for byte in head):
        return f"it looks like text: {head[:24]!r}"
    return f"first bytes {head[:8].hex(' ')}"


#: Rows converted at a time by :func:`pillow_to_numpy`: NumPy's own conversion goes through a full-size byte string,
#: which doubles a large photo's memory for a moment.
CONVERT_BAND_ROWS = 512


def pillow_to_numpy(image: Image.Image, dtype=None) -> np.ndarray:
    """``np.array(image)``, a band of rows at a time (the same values; at most one band held twice)."""
    width, height = image.size
    # Pillow applies its decompression-bomb limit to crops too: a band stays under it, so a limit meant for input files
    # (PMSP_MAX_IMAGE_PIXELS) never stops the conversion of an image already read and checked.
    band = CONVERT_BAND_ROWS if not Image.MAX_IMAGE_PIXELS else min(CONVERT_BAND_ROWS, int(Image.MAX_IMAGE_PIXELS) // max(1, width))
    if height <= band or band < 1:  # small enough, or a limit so low that not even one row may be cropped: whole
        return np.array(image, dtype=dtype)
    first = np.asarray(image.crop((0, 0, width, band)))
    out = np.empty((height, *first.shape[1:]), dtype or first.dtype)
    out[:band] = first
    for top in range(band, height, band):
        out[top : top + band] = np.asarray(image.crop((0, top, width, min(height, top + band))))
    return out


def to_array(image: Image.Image) -> np.ndarray:
    """A writable uint8 array of shape (H, W, 3) from an ``L`` or ``RGB`` image."""
    array = pillow_to_numpy(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return array

