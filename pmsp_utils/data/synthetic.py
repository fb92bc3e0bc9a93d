"""Forgeries made from packaged photos, with exact masks. Defined in 01_error_level_analysis.

A forgery here is a host photo with a compression history (a "camera" JPEG),
a region pasted from a donor with another history, and a final save. The mask
is exact: 1 where the pasted pixels are, 0 elsewhere.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class Forgery:
    """A forged image (decoded from its final file), its exact mask and how it was made."""

    image: np.ndarray
    mask: np.ndarray
    data: bytes
    format: str
    provenance: dict = field(default_factory=dict)

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
    provenance = {
        "host_quality": host_quality,
        "donor_quality": donor_quality,
        "donor_offset": donor_offset,
        "final_quality": final_quality,
    }
    return Forgery(decode(data), mask.astype(np.uint8), data, "PNG" if final_quality is None else "JPEG", provenance)


def centered_ellipse(shape: tuple[int, int], *, row: float = 0.45, col: float = 0.6, height: float = 0.2, width: float = 0.14) -> np.ndarray:
    """An ellipse mask placed and sized as fractions of ``shape`` (row, col centre; half-axes)."""
    return ellipse_mask(shape, (shape[0] * row, shape[1] * col), (shape[0] * height, shape[1] * width))


def tutorial_forgeries() -> dict[str, Forgery]:
    """The fixed forged examples of notebook 01, each with a different compression history.

    Deterministic (no randomness): the same photos, regions and qualities every run.
    """
    from .photos import load_photo

    def make(host: str, donor: str | None, **provenance) -> Forgery:
        host_pixels = load_photo(host)
        donor_pixels = host_pixels if donor is None else load_photo(donor)
        if donor is None:  # copy-move: the same photo, before its camera JPEG, shifted
            provenance.setdefault("donor_offset", (host_pixels.shape[0] // 3 + 3, host_pixels.shape[1] // 4 + 5))
        forgery = splice(host_pixels, donor_pixels, centered_ellipse(host_pixels.shape[:2]), **provenance)
        return Forgery(forgery.image, forgery.mask, forgery.data, forgery.format, {"host": host, "donor": donor or host, **forgery.provenance})

    return {
        "hopper + flower, PNG": make("grace_hopper", "flower", host_quality=75, final_quality=None),
        "coffee + cat, q95": make("coffee", "chelsea", host_quality=75, final_quality=95),
        "palace copy, q85": make("china", None, host_quality=70, final_quality=85),
        "motorcycle + rocket, PNG": make("motorcycle", "rocket", host_quality=75, final_quality=None),
    }


def recompress(forgery: Forgery, quality: int) -> Forgery:
    """The same forgery saved once more as JPEG at ``quality`` (an upload, a messenger); same mask."""
    data = jpeg_bytes(forgery.image, quality)
    return Forgery(decode(data), forgery.mask, data, "JPEG", {**forgery.provenance, "recompressed_quality": quality})


# --- the embedded synthetic forgery set -----------------------------------------------

SHAPES = ("ellipse", "polygon", "rectangle", "blob")


@dataclass(frozen=True)
class SyntheticConfig:
    """The generator's knobs. Probabilities are per image; ranges are sampled uniformly."""

    size: int = 576
    splicing: float = 0.45
    copy_move: float = 0.35  # the rest is authentic
    area: tuple[float, float] = (0.005, 0.40)  # tampered fraction, sampled log-uniformly
    shapes: tuple[str, ...] = SHAPES
    uncompressed_host: float = 0.15  # hosts that never went through a camera JPEG
    host_quality: tuple[int, int] = (65, 95)
    donor_double_jpeg: float = 0.6  # donor saved twice, at two other qualities
    donor_quality: tuple[int, int] = (50, 95)
    resample: float = 0.5  # donor scaled by a factor in resample_scale
    resample_scale: tuple[float, float] = (0.6, 1.5)
    rotate: float = 0.3  # donor rotated by up to rotate_degrees
    rotate_degrees: float = 45.0
    feather: float = 0.4  # soft edges (the mask marks where the donor weighs over half)
    blur: float = 0.2
    noise: float = 0.2
    color_match: float = 0.5  # donor's mean and spread matched to the host under the mask
    final_quality: tuple[int, int] | None = (70, 98)  # None: save as PNG (lossless; for tests and lessons)


class SyntheticForgerySet:
    """Reproducible forgeries made from packaged photos: item ``i`` depends only on (seed, i).

    Splicing from another photo and copy-move within the same photo, regions of
    varied shapes covering 0.5% to 40% of the image, donors with another
    compression history (double JPEG, resampling, rotation), optional
    post-processing (feathered edges, blur, noise, colour matching), and a final
    JPEG save at a random quality; authentic images go through the same camera
    and final saves. Masks are exact. Defined in 02_forgery_datasets.
    """

    def __init__(self, count: int = 200, seed: int = 0, config: SyntheticConfig | None = None) -> None:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}.")
        self.count, self.seed, self.config = count, seed, config or SyntheticConfig()

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Forgery:
        if not -self.count <= index < self.count:
            raise IndexError(f"index {index} is out of range for {self.count} images.")
        return generate(np.random.default_rng([self.seed, index % self.count]), self.config, name=self.name(index % self.count))

    def __iter__(self):
        return (self[index] for index in range(self.count))

    def kind(self, index: int) -> str:
        """The manipulation type of item ``index``, without generating it."""
        return _kind(np.random.default_rng([self.seed, index % self.count]).random(), self.config)

    def name(self, index: int) -> str:
        return f"synthetic_s{self.seed}_{index:05d}"

    def write(self, folder, *, show_progress: bool | None = None):
        """Write images (JPEG) and masks (PNG) in the generic layout; returns the Dataset."""
        from pathlib import Path

        from ..progress import progress
        from .records import Dataset, Record

        folder = Path(folder)
        dataset = Dataset(name="synthetic", root=folder)
        for index in progress(range(self.count), total=self.count, description="synthetic set", show=show_progress):
            kind, image_path, mask_path = write_forgery(folder, self.name(index), self[index])
            dataset.records.append(Record("synthetic", self.name(index), kind, image_path, mask_path))
        return dataset


def write_forgery(folder, name: str, forgery: Forgery):
    """Write one forgery in the generic layout: ``images/NAME.jpg`` (or ``.png``) with ``masks/NAME.png`` (0/255), or
    ``authentic/NAME.*`` when it holds no edit; returns (kind, image path, mask path or None). Each file whole or not at
    all: two processes may write the same set into a shared cache at once (pmsp notebooks --jobs 2), and a reader must
    never see half an image."""
    from pathlib import Path

    from ..safe_write import save_png_atomic, write_bytes_atomic

    kind = forgery.provenance["kind"]
    suffix = ".png" if forgery.format == "PNG" else ".jpg"
    image_path = Path(folder) / ("authentic" if kind == "authentic" else "images") / f"{name}{suffix}"
    write_bytes_atomic(image_path, forgery.data)
    mask_path = None
    if kind != "authentic":
        mask_path = Path(folder) / "masks" / f"{name}.png"
        save_png_atomic(mask_path, forgery.mask * 255)
    return kind, image_path, mask_path


def _kind(draw: float, config: SyntheticConfig) -> str:
    """The manipulation type that the generator's first random draw selects."""
    if draw < config.splicing:
        return "splicing"
    return "copy-move" if draw < config.splicing + config.copy_move else "authentic"


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    """A packaged photo, decoded once per process."""
    from .photos import load_photo

    return load_photo(name)


def random_view(photo: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop of ``photo`` scaled to ``size`` (zoom 1 to 1.5, random flip)."""
    height, width = photo.shape[:2]
    crop = int(min(height, width) / rng.uniform(1.0, 1.5))
    top, left = rng.integers(0, height - crop + 1), rng.integers(0, width - crop + 1)
    view = Image.fromarray(photo[top : top + crop, left : left + crop]).resize((size, size), Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(view)


def random_region(size: int, fraction: float, shape: str, rng: np.random.Generator) -> np.ndarray:
    """A uint8 mask of about ``fraction`` of a size x size image, of the given shape, placed at random."""
    area = fraction * size * size
    aspect = rng.uniform(0.5, 2.0)
    height = min(size - 2, max(4, np.sqrt(area / aspect * (4 / np.pi if shape in ("ellipse", "blob", "polygon") else 1.0))))
    width = min(size - 2, max(4, height * aspect))
    center = (rng.uniform(height / 2, size - height / 2), rng.uniform(width / 2, size - width / 2))
    if shape == "rectangle":
        top, left = int(center[0] - height / 2), int(center[1] - width / 2)
        mask = np.zeros((size, size), np.uint8)
        mask[top : top + int(height), left : left + int(width)] = 1
        return mask
    if shape == "ellipse":
        return ellipse_mask((size, size), center, (height / 2, width / 2))
    if shape == "polygon":
        corners = rng.integers(5, 10)
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
        radii = rng.uniform(0.6, 1.0, corners)
        points = [(center[1] + r * width / 2 * np.cos(a), center[0] + r * height / 2 * np.sin(a)) for a, r in zip(angles, radii)]
        return polygon_mask((size, size), points)
    if shape == "blob":  # a smooth random outline: an ellipse with a wobbling radius
        rows, cols = np.ogrid[:size, :size]
        dy, dx = (rows - center[0]) / (height / 2), (cols - center[1]) / (width / 2)
        angle = np.arctan2(dy, dx)
        wobble = 1.0 + sum(rng.uniform(-0.15, 0.15) * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
        return (np.hypot(dy, dx) <= wobble).astype(np.uint8)
    raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}.")


def _bounding_box(mask: np.ndarray, margin: int = 4) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom = max(0, rows[0] - margin), min(mask.shape[0], rows[-1] + 1 + margin)
    left, right = max(0, cols[0] - margin), min(mask.shape[1], cols[-1] + 1 + margin)
    return int(top), int(left), int(bottom), int(right)


def _donor_patch(source: np.ndarray, height: int, width: int, config: SyntheticConfig, rng: np.random.Generator, provenance: dict) -> np.ndarray:
    """A height x width patch cut from ``source`` with its own history: resampled, rotated, recompressed."""
    scale = rng.uniform(*config.resample_scale) if rng.random() < config.resample else 1.0
    angle = rng.uniform(-config.rotate_degrees, config.rotate_degrees) if rng.random() < config.rotate else 0.0
    grow = 1.5 if angle else 1.0  # cut more, so the rotation leaves no empty corners
    cut_h = min(source.shape[0], max(2, int(height * grow / scale)))
    cut_w = min(source.shape[1], max(2, int(width * grow / scale)))
    top, left = rng.integers(0, source.shape[0] - cut_h + 1), rng.integers(0, source.shape[1] - cut_w + 1)
    patch = Image.fromarray(source[top : top + cut_h, left : left + cut_w])
    if scale != 1.0 or grow != 1.0:
        patch = patch.resize((max(2, int(cut_w * scale)), max(2, int(cut_h * scale))), Image.Resampling.BICUBIC)
    if angle:
        # Rotation leaves empty corners; they are filled from the donor itself (the unrotated cut), never black,
        # which a network could learn as a shortcut: real forgeries have no such border.
        rotated = patch.convert("RGBA").rotate(angle, resample=Image.Resampling.BICUBIC)
        patch = Image.composite(rotated.convert("RGB"), patch, rotated.getchannel("A"))
    patch = patch.resize((width, height), Image.Resampling.BICUBIC) if patch.size != (width, height) else patch
    pixels = np.asarray(patch)
    if rng.random() < config.donor_double_jpeg:
        first, second = rng.integers(*config.donor_quality, endpoint=True, size=2)
        pixels = jpeg_roundtrip(jpeg_roundtrip(pixels, int(first)), int(second))
        provenance["donor_qualities"] = (int(first), int(second))
    provenance.update(donor_scale=round(float(scale), 3), donor_angle=round(float(angle), 1), donor_offset=(int(top), int(left)))
    return pixels


def generate(rng: np.random.Generator, config: SyntheticConfig = SyntheticConfig(), name: str = "") -> Forgery:
    """One synthetic image from a random generator: a forgery (or an authentic image) and its exact mask."""
    from .photos import photo_names

    names, photo = photo_names(), _photo
    size = config.size
    kind = _kind(rng.random(), config)
    host_name = names[rng.integers(len(names))]
    host = random_view(photo(host_name), size, rng)
    host_quality = None if rng.random() < config.uncompressed_host else int(rng.integers(*config.host_quality, endpoint=True))
    host = jpeg_roundtrip(host, host_quality)
    provenance: dict = {"name": name, "kind": kind, "host": host_name, "host_quality": host_quality}
    mask = np.zeros((size, size), np.uint8)
    image = host
    if kind != "authentic":
        low, high = np.log(config.area[0]), np.log(config.area[1])
        shape = config.shapes[rng.integers(len(config.shapes))]
        for _ in range(20):  # the shapes' areas only approximate the request: keep to the range
            mask = random_region(size, float(np.exp(rng.uniform(low, high))), shape, rng)
            if config.area[0] <= mask.mean() <= config.area[1]:
                break
        top, left, bottom, right = _bounding_box(mask)
        if kind == "splicing":
            donor_name = names[(names.index(host_name) + 1 + rng.integers(len(names) - 1)) % len(names)]
            source = photo(donor_name)
        else:
            donor_name, source = host_name, host
        patch = _donor_patch(source, bottom - top, right - left, config, rng, provenance).astype(np.float32)
        region = host[top:bottom, left:right].astype(np.float32)
        weight = mask[top:bottom, left:right].astype(np.float32)
        if rng.random() < config.color_match:
            inside = weight > 0
            patch = (patch - patch[inside].mean(0)) / (patch[inside].std(0) + 1e-3) * region[inside].std(0) + region[inside].mean(0)
            provenance["color_match"] = True
        if rng.random() < config.blur:
            radius = float(rng.uniform(0.5, 1.5))
            patch = np.asarray(Image.fromarray(np.clip(patch, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius)), np.float32)
            provenance["blur"] = round(radius, 2)
        if rng.random() < config.noise:
            sigma = float(rng.uniform(1.0, 5.0))
            patch = patch + rng.normal(0.0, sigma, patch.shape)
            provenance["noise"] = round(sigma, 2)
        if rng.random() < config.feather:
            radius = float(rng.uniform(1.0, 3.0))
            soft = np.asarray(Image.fromarray((weight * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255.0
            if (soft > 0.5).sum() >= config.area[0] * size * size:  # feathering must not shrink a region below the range
                weight = soft
                provenance["feather"] = round(radius, 2)
        blended = weight[..., None] * patch + (1.0 - weight[..., None]) * region
        image = host.copy()
        image[top:bottom, left:right] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
        mask = np.zeros_like(mask)
        mask[top:bottom, left:right] = (weight > 0.5).astype(np.uint8)
        provenance.update(donor=donor_name, shape=shape)
    if config.final_quality is None:
        provenance["final_quality"] = None
        return Forgery(image, mask, png_bytes(image), "PNG", provenance)
    final_quality = int(rng.integers(*config.final_quality, endpoint=True))
    data = jpeg_bytes(image, final_quality)
    provenance["final_quality"] = final_quality
    return Forgery(decode(data), mask, data, "JPEG", provenance)
