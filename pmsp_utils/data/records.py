"""One record per image, with a uniform mask convention: uint8, 1 = tampered, 0 = authentic.

Defined in 02_forgery_datasets. Every loader (CASIA v1/v2, generic folders,
the synthetic set) yields :class:`Record` objects; a :class:`Dataset` holds
them with the loader's report of what it found and fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..images import load_image, open_image, read_bytes

KINDS = ("splicing", "copy-move", "authentic")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".tif", ".tiff", ".png", ".bmp", ".webp"}
MASK_THRESHOLD = 127
#: A mask pixel is coloured when its red, green and blue differ by more than this (of 255). A grey mask stays far
#: below, even saved as a colour JPEG; a red, green or blue region is far above.
COLOUR_SPREAD = 32
#: A mask with more than this share of coloured (visible) pixels is a colour mask: refused, never read by luminance.
COLOUR_SHARE = 0.001
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class MaskError(ValueError):
    """A mask file that is readable but not a mask (a colour picture): ``str()`` names the file, ``problem`` says why."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = Path(path), problem


@dataclass(frozen=True)
class Record:
    """One image of a dataset, its mask file (None when authentic) and its metadata."""

    dataset: str
    name: str
    kind: str
    image_path: Path
    mask_path: Path | None = None
    source_ids: tuple[str, ...] = ()
    codes: str = ""
    mask_rotation: int = 0  # quarter turns (np.rot90) that align the stored mask with the image
    invert_mask: bool = False
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}.")

    @property
    def is_tampered(self) -> bool:
        return self.kind != "authentic"

    def load_image(self) -> np.ndarray:
        """The image as uint8 RGB (H, W, 3), EXIF orientation applied."""
        loaded = load_image(self.image_path)
        return np.array(loaded.to_display().convert("RGB"))

    def load_mask(self, shape: tuple[int, int] | None = None) -> np.ndarray:
        """The mask as uint8 (H, W) with 1 = tampered; all zeros for an authentic image.

        ``shape`` is the image's (H, W), needed only for authentic images (read from
        the file when not given).
        """
        if self.mask_path is None:
            if shape is None:
                with Image.open(self.image_path) as image:
                    shape = (image.height, image.width)
            return np.zeros(shape, np.uint8)
        mask = read_mask(self.mask_path)
        if self.mask_rotation:
            mask = np.ascontiguousarray(np.rot90(mask, self.mask_rotation))
        if self.invert_mask:
            mask = 1 - mask
        return mask


def read_mask(path: str | Path) -> np.ndarray:
    """A mask file (L, RGB, RGBA, palette or 1-bit) as uint8 0/1, thresholded at 127: white (tampered) on black.

    Grey edges (anti-aliasing, resampling) are thresholded. RGB and palette
    masks are read by their luminance only while they are grey (red, green and
    blue within :data:`COLOUR_SPREAD` of each other): a colour mask (a red region
    on white) raises :class:`MaskError`, since its luminance does not say which
    region is meant. An RGBA mask whose colour is flat but whose alpha varies
    uses the alpha channel; otherwise the alpha is ignored, and so is the colour
    of fully transparent pixels.
    """
    image = open_image(read_bytes(path), str(path))  # clear errors for missing, empty, corrupt files
    rgba = None
    if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
        rgba = np.array(image.convert("RGBA"))
        if np.ptp(rgba[..., :3]) == 0 and np.ptp(rgba[..., 3]) > 0:
            return (rgba[..., 3] > MASK_THRESHOLD).astype(np.uint8)
    if image.mode not in _GREY_MODES:
        _refuse_colour(path, rgba if rgba is not None else np.array(image.convert("RGB")))
    values = np.array(image.convert("L"))
    levels = two_low_levels(values)
    if levels is not None:  # 0/1 masks (a common convention) and any two levels under the threshold: the higher is tampered
        return (values == levels[1]).astype(np.uint8)
    return (values > MASK_THRESHOLD).astype(np.uint8)


def _refuse_colour(path: str | Path, pixels: np.ndarray) -> None:
    """Raise :class:`MaskError` when more than :data:`COLOUR_SHARE` of the visible pixels are coloured."""
    rgb = pixels[..., :3].astype(np.int16)
    coloured = rgb.max(axis=-1) - rgb.min(axis=-1) > COLOUR_SPREAD
    if pixels.shape[-1] == 4:
        coloured &= pixels[..., 3] > 0  # a transparent pixel's colour is not seen
    share = float(coloured.mean())
    if share > COLOUR_SHARE:
        example = tuple(int(value) for value in rgb[coloured][0])
        raise MaskError(path, f"a colour mask ({share:.0%} of its pixels coloured, e.g. RGB {example}): masks must be white "
                              "(tampered) on black (authentic)")


def two_low_levels(values: np.ndarray) -> tuple[int, int] | None:
    """(low, high) when a mask's grey values take exactly two levels that the 127 threshold would not tell apart
    (0/1 masks), else None."""
    present = np.flatnonzero(np.bincount(np.asarray(values, np.uint8).ravel(), minlength=256))
    if len(present) == 2 and present[1] <= MASK_THRESHOLD:
        return int(present[0]), int(present[1])
    return None


def looks_inverted(mask: np.ndarray) -> bool:
    """True when a 0/1 mask is probably inverted: at least half tampered and its border almost all tampered.

    On real CASIA v1 masks the tampered share of the border is at most 0.58,
    even for the largest region (69.5% of its image); an inverted mask has
    nearly its whole border marked.
    """
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    return bool(mask.mean() >= 0.5 and border.mean() >= 0.95)


def grey_share(mask_path: Path) -> tuple[float, tuple[int, int] | None]:
    """(the share of a mask file's pixels that are neither black nor white, i.e. anti-aliased or resampled edges;
    its two levels when it is a two-level mask under the threshold, such as 0/1, which has no grey edges)."""
    image = open_image(read_bytes(mask_path), str(mask_path))
    values = np.asarray(image.convert("L"))
    levels = two_low_levels(values)
    if levels is not None:
        return 0.0, levels  # read by its levels
    return float(np.mean((values > 0) & (values < 255))), None


def read_pair(path: Path, mask_path: Path, dataset: "Dataset", notes: list[str] | None = None) -> tuple[np.ndarray, int, int] | None:
    """(mask, image height, image width) of a pair, or None after noting why it cannot be read.

    A mask with grey levels is thresholded at 127; that is noted in ``notes``, and so is an image with an EXIF
    orientation whose mask fits it either way (square, or turned 180 degrees or mirrored): the image is scored as
    displayed, so its mask must be drawn on the displayed image. A colour mask is refused.
    """
    from ..images import ImageReadError

    try:
        mask, (height, width, orientation) = read_mask(mask_path), image_header(path)
        share, levels = grey_share(mask_path) if notes is not None else (0.0, None)
    except MaskError as error:
        dataset.inconsistent.append((path, f"mask {mask_path.name} is {error.problem}; not used"))
        return None
    except (ImageReadError, OSError) as error:
        dataset.inconsistent.append((path, f"cannot read the pair: {error}"))
        return None
    except Exception as error:  # a damaged header that Pillow reports with another type
        dataset.inconsistent.append((path, f"cannot read the pair: {type(error).__name__}: {error}"))
        return None
    if share > 0:
        notes.append(f"grey mask: {share:.1%} of its pixels between black and white, thresholded at {MASK_THRESHOLD}")
    if levels is not None:
        notes.append(f"two-level mask (values {levels[0]} and {levels[1]}): {levels[1]} read as tampered")
    if notes is not None and orientation not in (0, 1) and mask.shape == (height, width) == _stored(height, width, orientation):
        notes.append(f"EXIF orientation {orientation}: the image is scored as displayed, so its mask must be drawn on the displayed "
                     "image, not on the stored pixels")
    return mask, height, width


def size_mismatch(mask: np.ndarray, height: int, width: int, image_path: Path | None = None) -> str:
    """The message for a mask whose size is not its image's (it is never resized); with ``image_path``, it says when
    the image's EXIF orientation turns the stored pixels into the displayed size that the mask was compared with."""
    text = f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {width}x{height}"
    orientation = image_header(image_path)[2] if image_path is not None else 1
    if orientation not in (0, 1) and mask.shape == _stored(height, width, orientation):
        text += (f" as displayed (EXIF orientation {orientation}; stored {mask.shape[1]}x{mask.shape[0]}): the image is scored as "
                 "displayed, so turn the mask the same way or remove the tag")
    return text + "; not resized, not used"


def finish_mask(path: Path, mask: np.ndarray, dataset: "Dataset", fix_inverted: bool, notes: list[str]) -> bool | None:
    """Say whether a mask looks inverted (noting it) and must be flipped; refuse (None) a mask that would be
    empty or all tampered once any flip is made: such a pair teaches nothing and scores as nonsense."""
    if mask.all():
        dataset.inconsistent.append((path, "mask marks every pixel tampered (all white): blank or inverted; flipped it would be "
                                           "empty; not used"))
        return None
    if not mask.any():
        dataset.inconsistent.append((path, "mask is empty (no tampered pixel); not used"))
        return None
    inverted = looks_inverted(mask)
    if inverted:
        notes.append("mask looks inverted (over half tampered, border all tampered)" + ("; flipped" if fix_inverted else "; kept as stored"))
    return inverted and fix_inverted


@dataclass
class Dataset:
    """Records of one dataset with what the loader found: unmatched files and problems."""

    name: str
    root: Path
    records: list[Record] = field(default_factory=list)
    missing_masks: list[Path] = field(default_factory=list)  # tampered images without a mask
    unmatched_masks: list[Path] = field(default_factory=list)  # masks without an image
    inconsistent: list[tuple[Path, str]] = field(default_factory=list)  # refused pairs and why
    fixes: list[tuple[str, str]] = field(default_factory=list)  # (record name, what was fixed)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def counts(self) -> dict[str, int]:
        """How many records of each kind."""
        return {kind: sum(record.kind == kind for record in self.records) for kind in KINDS}

    def by_kind(self, kind: str) -> list[Record]:
        return [record for record in self.records if record.kind == kind]

    def loading_report(self, examples: int = 5) -> list[str]:
        """Lines saying what loading refused and what it changed (empty when nothing), for commands to print."""
        lines = []
        if self.inconsistent:
            lines.append(f"{self.name}: {len(self.inconsistent)} pairs refused (not used):")
            lines += [f"  {Path(path).name}: {why}" for path, why in self.inconsistent[:examples]]
            if len(self.inconsistent) > examples:
                lines.append(f"  ... and {len(self.inconsistent) - examples} more (pmsp_utils.data.verify lists them all)")
        if self.missing_masks:
            lines.append(f"{self.name}: {len(self.missing_masks)} tampered images without a mask (not used), e.g. {self.missing_masks[0].name}")
        if self.unmatched_masks:
            lines.append(f"{self.name}: {len(self.unmatched_masks)} masks without an image (not used), e.g. {Path(self.unmatched_masks[0]).name}")
        if self.fixes:
            first: dict[str, tuple[str, str]] = {}  # kind -> its first (record, what), so that each kind is said once in full
            for record, what in self.fixes:
                first.setdefault(what.split(":")[0].split(" (")[0], (record, what))
            kinds = sorted(first)
            lines.append(f"{self.name}: {len(self.fixes)} changes made while loading ({'; '.join(kinds[:4])}"
                         f"{' ...' if len(kinds) > 4 else ''}); one of each kind (all: dataset.fixes or verify()):")
            lines += [f"  {record}: {what}" for record, what in (first[kind] for kind in kinds[:examples])]
        return lines


def image_files(folder: Path) -> list[Path]:
    """Image files below ``folder`` (any depth), by name; extensions in any case (.jpg, .JPG, .tif)."""
    return sorted(
        (path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()),
        key=lambda path: (path.name, str(path)),
    )


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) read from the header only, EXIF orientation applied."""
    return image_header(path)[:2]


def image_header(path: Path) -> tuple[int, int, int]:
    """(height, width, EXIF orientation) read from the header only; height and width as displayed (orientation
    applied), which is how the image is scored."""
    from ..images import _orientation  # the reading pmsp_utils.images scores by: 1 for a broken or odd tag

    with Image.open(path) as image:
        width, height = image.size
        orientation = _orientation(image)
    return ((width, height) if orientation in (5, 6, 7, 8) else (height, width)) + (orientation,)


def _stored(height: int, width: int, orientation: int) -> tuple[int, int]:
    """The stored (height, width) of an image displayed at ``height`` x ``width`` under EXIF ``orientation``."""
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)
