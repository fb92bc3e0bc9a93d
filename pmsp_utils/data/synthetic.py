"""Forgeries made from packaged photos, with exact masks. Defined in 01_error_level_analysis.

A forgery here is a host photo with a compression history (a "camera" JPEG),
a region pasted from a donor with another history, and a final save. The mask
is exact: 1 where the pasted pixels are, 0 elsewhere.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw


@dataclass(frozen=True)
class Forgery:
    """A forged image (decoded from its final file), its exact mask and how it was made."""

    image: np.ndarray
    mask: np.ndarray
    data: bytes
    format: str
    recipe: dict = field(default_factory=dict)

    @property
    def tampered_fraction(self) -> float:
        """The share of pixels inside the mask."""
        return float(self.mask.mean())


def jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    """Encode a uint8 RGB array as a JPEG file in memory."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a uint8 array as a PNG file in memory (lossless: no compression history)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Decode image bytes to a uint8 RGB array."""
    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


def jpeg_roundtrip(image: np.ndarray, quality: int | None) -> np.ndarray:
    """Compress and decompress at ``quality``; None leaves the image untouched."""
    return image if quality is None else decode(jpeg_bytes(image, quality))


def ellipse_mask(shape: tuple[int, int], center: tuple[float, float], radii: tuple[float, float]) -> np.ndarray:
    """A uint8 mask (1 inside) of an axis-aligned ellipse; center and radii as (row, col) in pixels."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    inside = ((rows - center[0]) / radii[0]) ** 2 + ((cols - center[1]) / radii[1]) ** 2 <= 1.0
    return inside.astype(np.uint8)


def polygon_mask(shape: tuple[int, int], points: list[tuple[float, float]]) -> np.ndarray:
    """A uint8 mask (1 inside) of a polygon given as (x, y) points."""
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon(points, fill=1)
    return np.array(canvas)


def crop_to(image: np.ndarray, shape: tuple[int, int], offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """``image`` cropped (or tiled by reflection) to ``shape`` starting at ``offset`` (row, col)."""
    rows = np.arange(offset[0], offset[0] + shape[0]) % (2 * image.shape[0])
    cols = np.arange(offset[1], offset[1] + shape[1]) % (2 * image.shape[1])
    rows = np.where(rows < image.shape[0], rows, 2 * image.shape[0] - 1 - rows)
    cols = np.where(cols < image.shape[1], cols, 2 * image.shape[1] - 1 - cols)
    return image[np.ix_(rows, cols)]


def splice(
    host: np.ndarray,
    donor: np.ndarray,
    mask: np.ndarray,
    *,
    host_quality: int | None = 75,
    donor_quality: int | None = None,
    donor_offset: tuple[int, int] = (0, 0),
    final_quality: int | None = 75,
) -> Forgery:
    """Paste ``donor`` into ``host`` where ``mask`` is 1, each with its own compression history.

    ``host_quality``: the host's earlier JPEG save (a camera), None for none.
    ``donor_quality``: the donor's earlier JPEG save, None for none (uncompressed).
    ``donor_offset``: where in the donor the pasted pixels come from (row, col);
    an offset that is not a multiple of 8 moves the donor's JPEG grid.
    ``final_quality``: the forger's final JPEG save, None to save as PNG.
    """
    if mask.shape != host.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} differs from the host's {host.shape[:2]}.")
    host_pixels = jpeg_roundtrip(host, host_quality)
    donor_pixels = crop_to(jpeg_roundtrip(donor, donor_quality), host.shape[:2], donor_offset)
    composite = np.where(mask[:, :, None].astype(bool), donor_pixels, host_pixels)
    data = png_bytes(composite) if final_quality is None else jpeg_bytes(composite, final_quality)
    recipe = {
        "host_quality": host_quality,
        "donor_quality": donor_quality,
        "donor_offset": donor_offset,
        "final_quality": final_quality,
    }
    return Forgery(decode(data), mask.astype(np.uint8), data, "PNG" if final_quality is None else "JPEG", recipe)


def centered_ellipse(shape: tuple[int, int], *, row: float = 0.45, col: float = 0.6, height: float = 0.2, width: float = 0.14) -> np.ndarray:
    """An ellipse mask placed and sized as fractions of ``shape`` (row, col centre; half-axes)."""
    return ellipse_mask(shape, (shape[0] * row, shape[1] * col), (shape[0] * height, shape[1] * width))


def tutorial_forgeries() -> dict[str, Forgery]:
    """The fixed forged examples of notebook 01, each with a different compression history.

    Deterministic (no randomness): the same photos, regions and qualities every run.
    """
    from .photos import load_photo

    def make(host: str, donor: str | None, **recipe) -> Forgery:
        host_pixels = load_photo(host)
        donor_pixels = host_pixels if donor is None else load_photo(donor)
        if donor is None:  # copy-move: the same photo, before its camera JPEG, shifted
            recipe.setdefault("donor_offset", (host_pixels.shape[0] // 3 + 3, host_pixels.shape[1] // 4 + 5))
        forgery = splice(host_pixels, donor_pixels, centered_ellipse(host_pixels.shape[:2]), **recipe)
        return Forgery(forgery.image, forgery.mask, forgery.data, forgery.format, {"host": host, "donor": donor or host, **forgery.recipe})

    return {
        "hopper + flower, PNG": make("grace_hopper", "flower", host_quality=75, final_quality=None),
        "coffee + cat, q95": make("coffee", "chelsea", host_quality=75, final_quality=95),
        "palace copy, q85": make("china", None, host_quality=70, final_quality=85),
        "motorcycle + rocket, PNG": make("motorcycle", "rocket", host_quality=75, final_quality=None),
    }


def recompress(forgery: Forgery, quality: int) -> Forgery:
    """The same forgery saved once more as JPEG at ``quality`` (an upload, a messenger); same mask."""
    data = jpeg_bytes(forgery.image, quality)
    return Forgery(decode(data), forgery.mask, data, "JPEG", {**forgery.recipe, "recompressed_quality": quality})
