"""Forgeries made on real photos, with exact masks: any folder of authentic photos becomes training data.

Defined in 02_forgery_datasets. Where :mod:`.synthetic` pastes ellipses and
polygons between a handful of packaged photos, this module follows what a
forger does to real photos:

* **regions that follow the picture**: a connected union of superpixels
  (scikit-image's SLIC or Felzenszwalb segments), so an edge of the mask runs
  along an edge in the photo, as an object cut out by hand would;
* **copy-move** within one photo (translated, and sometimes rotated, scaled or
  mirrored) and **splicing** between two photos;
* **small colour and brightness changes** and **feathered or hard edges** on the
  pasted region;
* **compression histories**: every host keeps its own camera JPEG history; the
  forgery is then saved once more as a single or double JPEG, aligned with the
  8x8 grid or shifted off it by a crop, or as a lossless PNG (no JPEG history,
  like uncompressed benchmarks), sometimes after a resize;
* **untouched photos** as negatives, through the same final saves.

Masks are exact: 1 where pasted pixels are, 0 elsewhere, and outside the mask
the image equals the host up to the final save (feathering softens the edge
*inside* the mask only). A rotated or scaled paste never carries fill pixels:
only pixels whose every source sample lies in the photo are pasted.

Every forgery depends only on (seed, index, the photos of its part): item ``i``
is made again bit for bit. The photos are split into parts first (by photo id,
so that no photo, as host or donor, appears in two parts; CASIA's grouped split
can reserve its own photos for its validation and test parts), and each part's
forgeries are made from its own photos only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from ..safe_write import write_text_atomic
from .records import IMAGE_SUFFIXES, Dataset, Record
from .splits import SPLIT_NAMES, name_hash
from .synthetic import Forgery, decode, jpeg_bytes, png_bytes

FINAL_SAVES = ("jpeg", "double_jpeg", "png")
SEGMENTERS = ("slic", "felzenszwalb")
FORGED_KINDS = ("splicing", "copy-move", "authentic")


@dataclass(frozen=True)
class PhotoForgeryConfig:
    """The generator's knobs: probabilities per image, ranges sampled uniformly."""

    splicing: float = 0.42
    copy_move: float = 0.42  # the rest (0.16) are untouched photos, through the same final saves
    area: tuple[float, float] = (0.01, 0.25)  # tampered fraction of the host, log-uniform
    segmenters: tuple[str, ...] = SEGMENTERS
    rotate: float = 0.35
    rotate_degrees: float = 60.0
    scale: float = 0.35
    scale_range: tuple[float, float] = (0.6, 1.5)
    mirror: float = 0.2
    feather: float = 0.5  # soft edge inside the mask (Gaussian, radius 1..3 px)
    adjust: float = 0.5  # brightness and contrast of the pasted pixels changed a little
    final_saves: tuple[float, float, float] = (0.45, 0.30, 0.25)  # jpeg, double_jpeg, png
    jpeg_quality: tuple[int, int] = (60, 98)
    shifted_grid: float = 0.5  # crop 1..7 px off the top-left first, so the final JPEG's grid moves
    resize: float = 0.2  # resize by resize_range before the final save
    resize_range: tuple[float, float] = (0.6, 0.95)

    def check(self) -> None:
        if not 0 <= self.splicing + self.copy_move <= 1 or min(self.splicing, self.copy_move) < 0:
            raise ValueError(f"splicing ({self.splicing}) and copy_move ({self.copy_move}) are shares summing to at most 1.")
        if not 0 < self.area[0] <= self.area[1] < 1:
            raise ValueError(f"area must be 0 < low <= high < 1, got {self.area}.")
        if len(self.final_saves) != len(FINAL_SAVES) or min(self.final_saves) < 0 or not sum(self.final_saves) > 0:
            raise ValueError(f"final_saves are {len(FINAL_SAVES)} weights for {FINAL_SAVES}, got {self.final_saves}.")
        unknown = set(self.segmenters) - set(SEGMENTERS)
        if unknown or not self.segmenters:
            raise ValueError(f"segmenters must be taken from {SEGMENTERS}, got {self.segmenters}.")

    def kind(self, draw: float) -> str:
        if draw < self.splicing:
            return "splicing"
        return "copy-move" if draw < self.splicing + self.copy_move else "authentic"


# --- regions that follow the picture ---------------------------------------------------


def segments(image: np.ndarray, method: str, rng: np.random.Generator) -> np.ndarray:
    """int label map of ``image``: SLIC superpixels or Felzenszwalb's graph segments, at a random coarseness."""
    from skimage.segmentation import felzenszwalb, slic

    if method == "slic":
        return slic(image, n_segments=int(rng.integers(80, 300)), compactness=float(rng.uniform(5, 20)), start_label=0)
    if method == "felzenszwalb":
        return felzenszwalb(image, scale=float(rng.uniform(50, 300)), sigma=0.8, min_size=int(rng.integers(20, 80)))
    raise ValueError(f"segmenter must be one of {SEGMENTERS}, got {method!r}.")


def _neighbours(labels: np.ndarray) -> dict[int, set[int]]:
    """Which segments touch which (4-connectivity)."""
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        different = a != b
        pairs |= set(zip(a[different].tolist(), b[different].tolist()))
    touching: dict[int, set[int]] = {}
    for a, b in pairs:
        touching.setdefault(a, set()).add(b)
        touching.setdefault(b, set()).add(a)
    return touching


def segment_region(labels: np.ndarray, fraction: float, rng: np.random.Generator, *, margin: int = 6) -> np.ndarray:
    """A uint8 mask of connected segments grown from a random one until it covers about ``fraction`` of the image.

    The region keeps ``margin`` pixels from the border (a rotated paste needs real pixels around it).
    """
    height, width = labels.shape
    inner = labels[margin : height - margin, margin : width - margin]
    border = set(np.unique(np.concatenate([labels[:margin].ravel(), labels[-margin:].ravel(),
                                           labels[:, :margin].ravel(), labels[:, -margin:].ravel()])).tolist())
    candidates = [label for label in np.unique(inner).tolist() if label not in border] or np.unique(inner).tolist()
    sizes = np.bincount(labels.ravel())
    touching = _neighbours(labels)
    target = fraction * labels.size
    chosen = {int(candidates[rng.integers(len(candidates))])}
    area = sizes[next(iter(chosen))]
    frontier = set(touching.get(next(iter(chosen)), ())) - border
    while area < target and frontier:
        ordered = sorted(frontier)
        pick = ordered[rng.integers(len(ordered))]
        if area + sizes[pick] > 1.6 * target:  # a huge segment would overshoot: try the others first
            frontier.discard(pick)
            continue
        chosen.add(pick)
        area += sizes[pick]
        frontier = (frontier | touching.get(pick, set())) - chosen - border
    mask = np.isin(labels, list(chosen)).astype(np.uint8)
    mask[:margin], mask[-margin:], mask[:, :margin], mask[:, -margin:] = 0, 0, 0, 0
    return mask


# --- pasting ---------------------------------------------------------------------------


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the mask's pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def transform_patch(source: np.ndarray, region: np.ndarray, *, angle: float = 0.0, scale: float = 1.0, mirror: bool = False,
                    margin: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of ``source`` under ``region``, rotated by ``angle`` degrees, scaled and mirrored: (patch, alpha).

    ``patch`` is float32 (h, w, 3); ``alpha`` is 1 where the transformed region is, and 0 wherever any source
    sample would fall outside the photo (fill), so pasting where ``alpha`` is 1 never pastes fill.
    """
    top, left, bottom, right = bounding_box(region)
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(source.shape[0], bottom + margin), min(source.shape[1], right + margin)
    pixels = Image.fromarray(np.ascontiguousarray(source[top:bottom, left:right]))
    shape = Image.fromarray((region[top:bottom, left:right] * 255).astype(np.uint8))
    valid = Image.new("L", pixels.size, 255)
    if mirror:
        pixels, shape, valid = (item.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for item in (pixels, shape, valid))
    if scale != 1.0:
        size = (max(2, round(pixels.width * scale)), max(2, round(pixels.height * scale)))
        pixels = pixels.resize(size, Image.Resampling.BICUBIC)
        shape = shape.resize(size, Image.Resampling.BILINEAR)
        valid = valid.resize(size, Image.Resampling.BILINEAR)
    if angle:
        pixels = pixels.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        shape = shape.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
        valid = valid.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    inside = (np.asarray(shape) >= 128) & (np.asarray(_eroded(valid)) == 255)  # every bicubic tap inside the photo
    return np.asarray(pixels, np.float32), inside.astype(np.uint8)


def _eroded(valid: Image.Image) -> Image.Image:
    """``valid`` shrunk by 2 px: bicubic sampling reaches 2 px around a pixel."""
    return valid.filter(ImageFilter.MinFilter(5))


def paste(host: np.ndarray, patch: np.ndarray, alpha: np.ndarray, at: tuple[int, int], *, feather: float = 0.0,
          gain: float = 1.0, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``patch`` pasted into ``host`` with its top-left corner at ``at`` where ``alpha`` is 1: (image, exact mask).

    ``feather``: the edge is softened over about that many pixels *inside* the mask (outside it the host is
    untouched); ``gain`` and ``offset``: a brightness and contrast change of the pasted pixels.
    """
    height, width = alpha.shape
    row, col = at
    mask = np.zeros(host.shape[:2], np.uint8)
    mask[row : row + height, col : col + width] = alpha
    weight = alpha.astype(np.float32)
    if feather > 0:
        blurred = np.asarray(Image.fromarray((weight * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(feather)), np.float32) / 255
        weight = weight * np.clip(2.0 * blurred, 0.0, 1.0)  # 1 in the middle, about 1/2..1 at the edge, 0 outside
    pasted = np.clip(patch * gain + offset, 0, 255)
    image = host.astype(np.float32)
    window = image[row : row + height, col : col + width]
    image[row : row + height, col : col + width] = weight[..., None] * pasted + (1 - weight[..., None]) * window
    image = np.where(mask[..., None].astype(bool), np.clip(np.round(image), 0, 255), host).astype(np.uint8)
    return image, mask


# --- the final save --------------------------------------------------------------------


def final_save(image: np.ndarray, mask: np.ndarray, provenance: dict) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The forger's last steps as ``provenance`` says: crop (``crop``: rows, cols off the top-left), resize (``resize``),
    then save (``final``: jpeg, double_jpeg or png at ``qualities``). Returns (file bytes, decoded image, mask)."""
    rows, cols = provenance.get("crop", (0, 0))
    image, mask = image[rows:, cols:], mask[rows:, cols:]
    factor = provenance.get("resize")
    if factor:
        size = (max(8, round(image.shape[1] * factor)), max(8, round(image.shape[0] * factor)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
        mask = np.asarray(Image.fromarray(mask * 255).resize(size, Image.Resampling.BILINEAR)) >= 128
    if provenance["final"] == "png":
        data = png_bytes(np.ascontiguousarray(image))
    else:
        data = b""
        for quality in provenance["qualities"]:
            data = jpeg_bytes(np.ascontiguousarray(image if not data else decode(data)), int(quality))
    return data, decode(data), np.ascontiguousarray(mask, dtype=np.uint8)


def draw_final_save(rng: np.random.Generator, config: PhotoForgeryConfig) -> dict:
    """A random final save: kind, qualities, grid shift and resize."""
    weights = np.asarray(config.final_saves, float) / sum(config.final_saves)
    final = FINAL_SAVES[int(rng.choice(len(FINAL_SAVES), p=weights))]
    provenance: dict = {"final": final}
    if final != "png":
        count = 2 if final == "double_jpeg" else 1
        provenance["qualities"] = [int(q) for q in rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1, size=count)]
        if rng.random() < config.shifted_grid:
            provenance["crop"] = [int(rng.integers(0, 8)), int(rng.integers(1, 8))]  # the grid moves at least one column
    if rng.random() < config.resize:
        provenance["resize"] = round(float(rng.uniform(*config.resize_range)), 3)
    return provenance


# --- photos and their parts ------------------------------------------------------------


def photo_id(path: str | Path) -> str:
    """The id of a photo: CASIA's ``Au_ani_0097.jpg`` is ``ani0097`` (the id its forgeries' names carry); other
    files are their stem."""
    stem = Path(path).stem
    fields = stem.split("_")
    if len(fields) == 3 and fields[0].lower() == "au":
        return fields[1] + fields[2]
    return stem


def list_photos(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name; a clear error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of photos; name a folder of authentic photos.")
    photos = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
    if len(photos) < 2:
        raise ValueError(f"{folder}: {len(photos)} photos found; forgeries need at least two (a host and a donor).")
    return photos


PHOTO_FRACTIONS = (0.86, 0.07, 0.07)


def split_photos(photos: Iterable[Path], *, reserved: dict[str, set[str]] | None = None,
                 fractions: tuple[float, float, float] = PHOTO_FRACTIONS, salt: str = "forgeries") -> dict[str, list[Path]]:
    """{part: photos}: each photo in one part. A photo whose id is ``reserved`` for a part goes there (CASIA's
    grouped split reserves the photos behind its validation and test forgeries); the rest are dealt by a hash of
    the id at ``fractions``, so the parts are the same on every machine."""
    reserved = reserved or {}
    parts: dict[str, list[Path]] = {part: [] for part in SPLIT_NAMES}
    for path in sorted(photos, key=lambda p: p.name):
        key = photo_id(path)
        part = next((name for name in ("test", "validation", "train") if key in reserved.get(name, ())), None)
        if part is None:
            position = name_hash(key, salt) / 2**64
            part = "validation" if position < fractions[1] else "test" if position < fractions[1] + fractions[2] else "train"
        parts[part].append(path)
    return parts


def reserved_ids(split) -> dict[str, set[str]]:
    """{part: the source photo ids of that part's forgeries} of a :class:`~.splits.Split` (CASIA names carry them)."""
    return {part: {source for record in records for source in record.source_ids} for part, records in split.parts().items()}


# --- the set ---------------------------------------------------------------------------


class PhotoForgerySet:
    """``count`` forgeries (and untouched photos) made from ``photos``; item ``i`` depends only on (seed, i, photos)."""

    def __init__(self, photos: Sequence[str | Path], count: int, *, seed: int = 0, config: PhotoForgeryConfig | None = None,
                 part: str = "train") -> None:
        self.photos = [Path(path) for path in photos]
        if len(self.photos) < 2:
            raise ValueError(f"forgeries need at least two photos, got {len(self.photos)}.")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}.")
        self.count, self.seed, self.part = count, seed, part
        self.config = config or PhotoForgeryConfig()
        self.config.check()
        self._decoded: dict[Path, np.ndarray] = {}

    def __len__(self) -> int:
        return self.count

    def name(self, index: int) -> str:
        return f"forged_{self.part}_s{self.seed}_{index:05d}"

    def photo(self, path: Path) -> np.ndarray:
        if path not in self._decoded:
            from ..images import load_image

            if len(self._decoded) >= 4:  # a few recent photos only: memory stays flat
                self._decoded.pop(next(iter(self._decoded)))
            self._decoded[path] = np.array(load_image(path).to_display().convert("RGB"))
        return self._decoded[path]

    def key(self) -> str:
        """A digest of what the set depends on (photos by content, count, seed, part, settings)."""
        digest = hashlib.blake2b(digest_size=10)
        digest.update(json.dumps([self.count, self.seed, self.part, asdict(self.config), "forgeries-1"]).encode())
        for path in self.photos:
            digest.update(path.name.encode() + hashlib.blake2b(path.read_bytes(), digest_size=8).digest())
        return digest.hexdigest()

    def __getitem__(self, index: int) -> Forgery:
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} is out of range for {self.count} images.")
        return make_forgery(self, np.random.default_rng([self.seed, index, name_hash(self.part)]), self.name(index))

    def write(self, folder: str | Path, *, show_progress: bool | None = None) -> Dataset:
        """Write images and masks (and ``provenance.jsonl``) into ``folder``; returns the Dataset."""
        from ..progress import progress
        from ..safe_write import write_bytes_atomic
        from .synthetic import write_forgery

        folder = Path(folder)
        dataset = Dataset(name="forged", root=folder)
        provenances = []
        for index in progress(range(self.count), total=self.count, description=f"forgeries ({self.part})", show=show_progress):
            forgery = self[index]
            kind, image_path, mask_path = write_forgery(folder, self.name(index), forgery)
            sources = tuple(dict.fromkeys((forgery.provenance["host"], forgery.provenance.get("donor", forgery.provenance["host"]))))
            dataset.records.append(Record("forged", self.name(index), kind, image_path, mask_path, source_ids=sources,
                                          notes=(describe(forgery.provenance),)))
            provenances.append(forgery.provenance)
        dataset.records.sort(key=lambda record: (record.kind, record.name))  # as the folder loader reads them back
        write_bytes_atomic(folder / "provenance.jsonl", "".join(json.dumps(provenance) + "\n" for provenance in provenances).encode())
        return dataset


def describe(provenance: dict) -> str:
    """A short label of a forgery's final save: ``jpeg q83``, ``double_jpeg q70/q91 shifted``, ``png resized``."""
    label = provenance["final"] + ("" if provenance["final"] == "png" else " q" + "/q".join(map(str, provenance["qualities"])))
    return label + (" shifted" if provenance.get("crop") else "") + (" resized" if provenance.get("resize") else "")


def make_forgery(generator: PhotoForgerySet, rng: np.random.Generator, name: str) -> Forgery:
    """One forgery of ``generator``'s photos, drawn from ``rng``."""
    config = generator.config
    kind = config.kind(rng.random())
    photos = generator.photos
    host_path = photos[int(rng.integers(len(photos)))]
    host = generator.photo(host_path)
    provenance: dict = {"name": name, "kind": kind, "host": photo_id(host_path), "host_file": host_path.name,
                    "host_history": "camera JPEG" if host_path.suffix.lower() in {".jpg", ".jpeg"} else host_path.suffix.lower()[1:]}
    image, mask = host, np.zeros(host.shape[:2], np.uint8)
    if kind != "authentic":
        fraction = float(np.exp(rng.uniform(np.log(config.area[0]), np.log(config.area[1]))))
        if kind == "splicing":
            donor_path = photos[int(rng.integers(len(photos) - 1))]
            donor_path = photos[-1] if donor_path == host_path else donor_path
            donor = generator.photo(donor_path)
            provenance.update(donor=photo_id(donor_path), donor_file=donor_path.name)
        else:
            donor = host
        method = config.segmenters[int(rng.integers(len(config.segmenters)))]
        # The region is sized relative to the host; a splice's region comes from the donor's own segments.
        share = min(0.5, fraction * host.size / donor.size)
        labels = segments(donor, method, rng)
        angle = float(rng.uniform(-config.rotate_degrees, config.rotate_degrees)) if rng.random() < config.rotate else 0.0
        scale = float(rng.uniform(*config.scale_range)) if rng.random() < config.scale else 1.0
        mirror = bool(rng.random() < config.mirror)
        for _ in range(4):  # a region grown from a tiny or cornered segment may come out too small: grow another
            region = segment_region(labels, share, rng)
            patch, alpha = transform_patch(donor, region, angle=angle, scale=scale, mirror=mirror)
            alpha = _fit(alpha, host.shape[:2])
            if alpha.sum() >= config.area[0] / 2 * host.shape[0] * host.shape[1]:
                break
        patch = patch[: alpha.shape[0], : alpha.shape[1]]
        if alpha.sum() < 16:  # nothing pasteable survived: an untouched photo instead, said so in the provenance
            kind = provenance["kind"] = "authentic"
            provenance["note"] = "the region did not survive its transform"
        else:
            at = _place(alpha, region if kind == "copy-move" else None, host.shape[:2], rng)
            feather = float(rng.uniform(1.0, 3.0)) if rng.random() < config.feather else 0.0
            gain, offset = (float(rng.uniform(0.9, 1.1)), float(rng.uniform(-10, 10))) if rng.random() < config.adjust else (1.0, 0.0)
            image, mask = paste(host, patch, alpha, at, feather=feather, gain=gain, offset=offset)
            provenance.update(segmenter=method, angle=round(angle, 1), scale=round(scale, 3), mirror=mirror, at=list(at),
                          feather=round(feather, 2), gain=round(gain, 3), offset=round(offset, 1),
                          tampered_fraction=round(float(mask.mean()), 4))
    provenance.update(draw_final_save(rng, config))
    data, decoded, mask = final_save(image, mask, provenance)
    if kind != "authentic" and not mask.any():  # a resize can erase a sliver: keep the record honest
        kind = provenance["kind"] = "authentic"
        provenance["note"] = "the region vanished in the resize"
    return Forgery(decoded, mask if kind != "authentic" else np.zeros_like(mask), data, "PNG" if provenance["final"] == "png" else "JPEG", provenance)


def _fit(alpha: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``alpha`` cut to fit inside an image of ``shape`` with a pixel to spare."""
    return alpha[: shape[0] - 1, : shape[1] - 1]


def _place(alpha: np.ndarray, source: np.ndarray | None, shape: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
    """Where the patch's top-left corner goes: at random, and for a copy-move preferably not over its own source."""
    rows, cols = shape[0] - alpha.shape[0], shape[1] - alpha.shape[1]
    best, best_overlap = (0, 0), None
    for _ in range(12):
        at = (int(rng.integers(0, rows + 1)), int(rng.integers(0, cols + 1)))
        if source is None:
            return at
        overlap = int((source[at[0] : at[0] + alpha.shape[0], at[1] : at[1] + alpha.shape[1]] & alpha).sum())
        if best_overlap is None or overlap < best_overlap:
            best, best_overlap = at, overlap
        if overlap == 0:
            break
    return best


# --- cached sets for training ----------------------------------------------------------


def forged_parts(photos: Sequence[Path], counts: dict[str, int], *, seed: int = 0, reserved: dict[str, set[str]] | None = None,
                 config: PhotoForgeryConfig | None = None, cache: str | Path | None = None,
                 show_progress: bool | None = None) -> dict[str, Dataset]:
    """{part: Dataset} of forgeries made from each part's own photos (:func:`split_photos`), written once under
    ``cache`` (default ``PMSP_CACHE_DIR/forgeries``) and read back after that."""
    from ..environment import cache_dir
    from .folder import load_folder

    split = split_photos(photos, reserved=reserved)
    result = {}
    for part, count in counts.items():
        if count < 1:
            continue
        generator = PhotoForgerySet(split[part], count, seed=seed, config=config, part=part)
        folder = Path(cache or cache_dir() / "forgeries") / f"{part}_{generator.key()}"
        if (folder / "complete").exists():
            dataset = load_folder(folder, "forged", fix_inverted=False)
            written = folder / "provenance.jsonl"
            written = written if written.exists() else folder / "recipes.jsonl"  # its name in sets written before 2026-12-07
            provenances = {json.loads(line)["name"]: json.loads(line) for line in written.read_text().splitlines()}
            dataset.records = sorted((_restored(record, provenances.get(record.name)) for record in dataset.records),
                                     key=lambda record: (record.kind, record.name))
        else:
            dataset = generator.write(folder, show_progress=show_progress)
            write_text_atomic(folder / "complete", "written\n")
        dataset.name = f"forged ({part}, {len(split[part])} photos)"
        result[part] = dataset
    return result


def _restored(record: Record, provenance: dict | None) -> Record:
    """A record read back from disk with the kind, sources and description its provenance holds."""
    from dataclasses import replace

    if provenance is None:
        return record
    sources = tuple(dict.fromkeys((provenance["host"], provenance.get("donor", provenance["host"]))))
    return replace(record, dataset="forged", kind=provenance["kind"], source_ids=sources, notes=(describe(provenance),))
