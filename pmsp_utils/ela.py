"""Error Level Analysis, the paper's section 3.1. Defined in 01_error_level_analysis.

The four steps: (1) read the image (a JPEG, with its compression history);
(2) re-save it as JPEG at a known quality (default 90); (3) decode the re-saved
copy; (4) take the per-pixel absolute difference. Regions whose compression
history differs from the rest of the image change by a different amount.

Everything runs in memory (no temporary files), so it is safe from threads and
processes. The scaling applied to the difference is named explicitly:

- ``"raw"``: the absolute difference itself, 0..255 (mostly small values);
  what the paper feeds its ELA stream.
- ``"fixed"``: the difference times ``multiplier`` (default 20), clipped at 255,
  as in Krawetz's ELA and FotoForensics.
- ``"max"``: stretched per image so its largest value becomes 255, as in many
  CASIA ELA scripts; images become comparable in look but not in value.

The output is always uint8 of shape (H, W, 3) in display orientation (EXIF
applied after the analysis, which runs on the stored JPEG block grid).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections import deque
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageChops, JpegImagePlugin, features

from .model_settings import DEFAULT_ELA_QUALITY, ModelSettings
from .environment import cache_dir as default_cache_dir
from .images import JPEG_FORMATS, ImageReadError, ImageSource, LoadedImage, load_image, read_bytes, to_array
from .progress import progress
from .safe_write import write_atomic

logger = logging.getLogger(__name__)

DEFAULT_QUALITY = DEFAULT_ELA_QUALITY  # the paper's; typed once, in pmsp_utils.model_settings
DEFAULT_MULTIPLIER = 20
DEFAULT_SUBSAMPLING = "4:2:0"
SCALINGS = ("raw", "fixed", "max")
_SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
#: Bump when the algorithm's output changes, so old cache entries are not reused.
ALGORITHM_VERSION = 1


@dataclass(frozen=True)
class ElaSettings:
    """The settings an ELA map depends on; validated on construction."""

    quality: int = DEFAULT_QUALITY
    scaling: str = "raw"
    multiplier: float = DEFAULT_MULTIPLIER
    subsampling: str = DEFAULT_SUBSAMPLING

    @classmethod
    def of_model(cls, settings: ModelSettings) -> "ElaSettings":
        """The settings a model's ELA input is made with: the one place they are built from a model's
        :class:`~pmsp_utils.model_settings.ModelSettings` (inference, training, the input cache and the ship scripts ask here)."""
        return cls(quality=settings.ela_quality, scaling=settings.ela_scaling)

    def __post_init__(self) -> None:
        if isinstance(self.quality, bool) or not isinstance(self.quality, (int, np.integer)):
            raise TypeError(f"quality must be an integer from 1 to 100, got {self.quality!r}.")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be from 1 to 100 (the JPEG quality of the re-save), got {self.quality}.")
        object.__setattr__(self, "quality", int(self.quality))  # NumPy integers too: Pillow takes only Python ints
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {self.scaling!r}.")
        if self.scaling == "fixed" and not self.multiplier > 0:
            raise ValueError(f"multiplier must be positive, got {self.multiplier!r}.")
        if self.subsampling not in _SUBSAMPLINGS:
            raise ValueError(f"subsampling must be one of {_SUBSAMPLINGS}, got {self.subsampling!r}.")

    def cache_tag(self) -> str:
        """A string naming everything the output depends on, the JPEG library included."""
        multiplier = self.multiplier if self.scaling == "fixed" else ""
        jpeg = features.version("libjpeg_turbo") or features.version("jpg") or "unknown"
        return (
            f"ela-v{ALGORITHM_VERSION}|q{self.quality}|{self.scaling}{multiplier}|"
            f"{self.subsampling}|libjpeg-{jpeg}"
        )


@dataclass(frozen=True)
class ElaResult:
    """An ELA map with the image it came from and what was converted on the way.

    ``image`` (uint8, H x W x 3, display orientation) is made on first access only.
    """

    ela: np.ndarray
    display_image: Image.Image = field(repr=False)
    settings: ElaSettings
    source: str
    format: str | None
    conversions: tuple[str, ...]

    @cached_property
    def image(self) -> np.ndarray:
        """The analysed image as uint8 (H, W, 3), aligned with ``ela``."""
        return to_array(self.display_image)

    def describe(self) -> str:
        """One line per fact a user should know about this result."""
        done = "; ".join(self.conversions) if self.conversions else "no conversion needed"
        history = "" if self.format in JPEG_FORMATS else " Not a JPEG: no compression history to compare."
        return f"{self.source}: {self.format or 'array'}, {done}.{history}"


# --- the four steps, each small enough to show in the notebook ------------------------


def resave_jpeg(image: Image.Image, quality: int = DEFAULT_QUALITY, subsampling: str = DEFAULT_SUBSAMPLING) -> Image.Image:
    """Steps 2 and 3: encode ``image`` as JPEG at ``quality`` in memory and decode it again."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    buffer.seek(0)
    resaved = JpegImagePlugin.JpegImageFile(buffer)  # not Image.open: the pixel limit is for inputs, not pmsp's own copy
    resaved.load()
    return resaved


def absolute_difference(image: Image.Image, resaved: Image.Image) -> Image.Image:
    """Step 4: the per-pixel, per-channel absolute difference |image - resaved|."""
    return ImageChops.difference(image, resaved)


def scale_difference(difference: Image.Image, scaling: str = "raw", multiplier: float = DEFAULT_MULTIPLIER) -> Image.Image:
    """Apply one of :data:`SCALINGS` to an absolute-difference image (lookup tables, in C)."""
    if scaling == "raw":
        return difference
    if scaling == "fixed":
        table = np.minimum(np.arange(256) * multiplier, 255)
    elif scaling == "max":
        largest = max(band_max for _, band_max in _extrema(difference))
        if largest == 0:
            return difference
        table = np.arange(256) * (255.0 / largest)
    else:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}.")
    lut = np.round(table).astype(np.uint8).tolist()
    return difference.point(lut * len(difference.getbands()))


def _extrema(image: Image.Image) -> list[tuple[int, int]]:
    extrema = image.getextrema()
    return [extrema] if image.mode == "L" else list(extrema)


JPEG_MAX_SIDE = 65500  # libjpeg's largest dimension: ELA's re-save cannot encode a wider or taller image


#: Rows re-saved at a time: a multiple of JPEG's 16-row unit, so every band sits on the whole image's block grid.
ELA_BAND_ROWS = 1024
#: One 16-row unit of context on each side of a band: the decoder's chroma upsampling (4:2:0) reads one chroma row
#: across a band's edge, and the rows it changes there are cut off, so the bands join into the whole image's map.
_BAND_MARGIN = 16


def difference_in_bands(image: Image.Image, quality: int = DEFAULT_QUALITY, subsampling: str = DEFAULT_SUBSAMPLING,
                        band_rows: int = ELA_BAND_ROWS) -> np.ndarray:
    """Steps 2 to 4 in bands of rows: |image - resave(image)| as uint8 (H, W, 3) for RGB or (H, W) for L.

    Equal, pixel for pixel, to re-saving the whole image at once (each band starts on the 16-row block grid and is
    re-saved with 16 rows of context on either side), while only one band's copies are held at a time: the memory of
    a very large photo grows by the map itself, not by four full-size copies.
    """
    if band_rows < 16 or band_rows % 16:
        raise ValueError(f"band_rows must be a positive multiple of 16 (JPEG's block unit), got {band_rows}.")
    width, height = image.size
    shape = (height, width) if image.mode == "L" else (height, width, len(image.getbands()))
    out = np.empty(shape, np.uint8)
    for top in range(0, height, band_rows):
        bottom = min(height, top + band_rows)
        low, high = max(0, top - _BAND_MARGIN), min(height, bottom + _BAND_MARGIN)
        crop = image if (low, high) == (0, height) else image.crop((0, low, width, high))
        band = np.asarray(absolute_difference(crop, resave_jpeg(crop, quality, subsampling)))
        out[top:bottom] = band[top - low : bottom - low]
    return out


def _scale_array(difference: np.ndarray, scaling: str, multiplier: float) -> np.ndarray:
    """:func:`scale_difference` on an array, in place (the same lookup tables)."""
    if scaling == "raw":
        return difference
    if scaling == "fixed":
        table = np.minimum(np.arange(256) * multiplier, 255)
    else:
        largest = int(difference.max()) if difference.size else 0
        if largest == 0:
            return difference
        table = np.arange(256) * (255.0 / largest)
    return np.take(np.round(table).astype(np.uint8), difference, out=difference)


def orient_array(array: np.ndarray, orientation: int) -> np.ndarray:
    """:func:`pmsp_utils.images.apply_orientation` on an (H, W[, C]) array, as a view where NumPy can."""
    turned = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
              6: lambda a: np.rot90(a, -1), 7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}.get(orientation)
    return array if turned is None else turned(array)


def ela_of_loaded(loaded: LoadedImage, settings: ElaSettings, *, band_rows: int = ELA_BAND_ROWS) -> ElaResult:
    """ELA of an image already read by :func:`pmsp_utils.images.load_image`, re-saved in bands of ``band_rows`` rows
    (:func:`difference_in_bands`: the same map as one re-save of the whole image, with a bounded working set)."""
    width, height = loaded.image.size
    if max(width, height) > JPEG_MAX_SIDE:
        raise ImageReadError(f"{loaded.source}: {width}x{height} pixels is past JPEG's largest side ({JPEG_MAX_SIDE}), so it "
                             "cannot be re-saved for ELA; crop or split the image into parts under that size.")
    try:
        difference = difference_in_bands(loaded.image, settings.quality, settings.subsampling, band_rows)
    except OSError as error:
        raise ImageReadError(f"{loaded.source}: the JPEG re-save for ELA failed ({error}).") from None
    difference = orient_array(_scale_array(difference, settings.scaling, settings.multiplier), loaded.orientation)
    ela_map = np.repeat(difference[:, :, None], 3, axis=2) if difference.ndim == 2 else np.ascontiguousarray(difference)
    return ElaResult(
        ela=ela_map,
        display_image=loaded.to_display(),
        settings=settings,
        source=loaded.source,
        format=loaded.format,
        conversions=loaded.conversions,
    )


def ela_result(
    source: ImageSource,
    quality: int = DEFAULT_QUALITY,
    scaling: str = "raw",
    multiplier: float = DEFAULT_MULTIPLIER,
    subsampling: str = DEFAULT_SUBSAMPLING,
) -> ElaResult:
    """ELA of one image, with the image and the list of conversions made (``.describe()``)."""
    settings = ElaSettings(quality, scaling, multiplier, subsampling)
    loaded = load_image(source)
    result = ela_of_loaded(loaded, settings)
    if loaded.conversions:
        logger.info("%s", result.describe())
    return result


def ela(
    source: ImageSource,
    quality: int = DEFAULT_QUALITY,
    scaling: str = "raw",
    multiplier: float = DEFAULT_MULTIPLIER,
    subsampling: str = DEFAULT_SUBSAMPLING,
) -> np.ndarray:
    """Error Level Analysis of one image: a uint8 array (H, W, 3). See the module docstring."""
    return ela_result(source, quality, scaling, multiplier, subsampling).ela


# --- many images: cache and parallel helper -------------------------------------------


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` as ``.npy`` under a temporary name, then rename: readers never see half a file."""
    write_atomic(path, lambda stream: np.save(stream, array))


#: One ``.npy`` header parsed at a time. NumPy parses the header with ``ast.literal_eval``, and CPython before 3.11.8
#: could fail two threads parsing at once with "SystemError: AST constructor recursion depth mismatch" (gh-106905);
#: the batch threads of a training hit it once in a notebook run. Only the opening (header and memory map) holds the
#: lock, for microseconds; the pages are read afterwards, outside it.
_NPY_LOCK = threading.Lock()


def load_npy(path: str | Path, *, mmap_mode: str | None = None) -> np.ndarray:
    """``np.load`` of a ``.npy`` file, safe from threads (see ``_NPY_LOCK``): a memory map with ``mmap_mode``, else
    an array in memory; errors as ``np.load`` raises them."""
    with _NPY_LOCK:
        opened = np.load(path, mmap_mode=mmap_mode or "r")
    return opened if mmap_mode else np.array(opened)



class ElaCache:
    """ELA maps on disk, keyed by the file's content and the settings.

    Entries are ``.npy`` files written atomically (write, then rename), so
    threads and processes can share one folder. A changed file, other settings
    or another JPEG library version give another key, never a stale map.

    Maps come back **read-only** (hits as memory maps of the cache files, which
    skips a copy; misses frozen the same way, so every pass behaves alike). Use
    ``np.array(map)`` for a writable copy.
    """

    def __init__(self, directory: str | os.PathLike | None = None, settings: ElaSettings | None = None) -> None:
        self.settings = settings or ElaSettings()
        self.directory = Path(directory) if directory is not None else default_cache_dir() / "ela"
        self._tag = self.settings.cache_tag().encode()

    def key(self, data: bytes) -> str:
        """The cache key of a file's bytes under these settings."""
        return hashlib.blake2b(data + b"\0" + self._tag, digest_size=20).hexdigest()

    def path_for(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def get(self, source: str | os.PathLike) -> np.ndarray:
        """The ELA map of the file at ``source``, computed once and then read from disk."""
        data, path, cached = self.lookup(source)
        return cached if cached is not None else self.compute(data, path, str(source))

    def lookup(self, source: str | os.PathLike) -> tuple[bytes, Path, np.ndarray | None]:
        """Read the file and look it up: (its bytes, its entry's path, the cached map or None)."""
        data = read_bytes(source)
        path = self.path_for(self.key(data))
        try:
            cached = load_npy(path, mmap_mode="r")
            if cached.dtype == np.uint8 and cached.ndim == 3:
                return data, path, cached
            logger.warning("ELA cache entry %s holds %s %s; recomputing it.", path, cached.dtype, cached.shape)
        except FileNotFoundError:
            pass
        except (ValueError, OSError, EOFError):  # a damaged entry: recompute and overwrite it
            logger.warning("ELA cache entry %s is damaged; recomputing it.", path)
        return data, path, None

    def compute(self, data: bytes, path: Path, name: str) -> np.ndarray:
        """Compute the map of a file's bytes, store it at ``path`` and return it (read-only)."""
        return self._compute(load_image(data, name=name), path).ela

    def get_with_image(self, source: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
        """The ELA map and the image (uint8 RGB, display orientation), decoding the file once."""
        data, path, cached = self.lookup(source)
        loaded = load_image(data, name=str(source))
        if cached is not None:
            return cached, to_array(loaded.to_display())
        result = self._compute(loaded, path)
        return result.ela, result.image

    def _compute(self, loaded: LoadedImage, path: Path) -> ElaResult:
        result = ela_of_loaded(loaded, self.settings)
        save_npy_atomic(path, result.ela)
        result.ela.flags.writeable = False
        return result


    def clear(self) -> int:
        """Delete every cached map in this folder; returns how many were removed."""
        removed = 0
        for entry in self.directory.glob("*/*.npy"):
            entry.unlink(missing_ok=True)
            removed += 1
        return removed


def iter_ela(
    sources: Iterable[str | os.PathLike],
    quality: int = DEFAULT_QUALITY,
    scaling: str = "raw",
    multiplier: float = DEFAULT_MULTIPLIER,
    subsampling: str = DEFAULT_SUBSAMPLING,
    *,
    cache: bool | str | os.PathLike = True,
    workers: int | None = None,
    on_error: str = "raise",
    show_progress: bool | None = None,
    description: str = "ELA",
) -> Iterator[np.ndarray | None]:
    """ELA maps of many image files, in order, computed in parallel threads.

    ``cache``: True uses ``PMSP_CACHE_DIR`` (default ``~/.cache/pmsp``), a path
    uses that folder, False computes without storing. ``workers``: threads
    (default: one per CPU core; Pillow's codecs release the GIL). With a cache,
    maps are read-only (see :class:`ElaCache`). ``on_error``:
    ``"raise"`` stops at the first bad file; ``"skip"`` logs it and yields None.
    At most ``4 * workers`` results wait in memory at any time.
    """
    if on_error not in {"raise", "skip"}:
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    settings = ElaSettings(quality, scaling, multiplier, subsampling)
    store = None if cache is False else ElaCache(None if cache is True else cache, settings)
    sources = list(sources)
    workers = max(1, workers or os.cpu_count() or 1)

    def guarded(function, *arguments):
        try:
            return function(*arguments)
        except (ImageReadError, FileNotFoundError) as error:
            if on_error == "raise":
                raise
            logger.warning("Skipped %s", error)
            return None

    def schedule(pool: Executor, source):
        """A cache hit is served here (a thread would only add hand-off time); misses go to the pool."""
        if store is None:
            return pool.submit(guarded, lambda: ela_of_loaded(load_image(source), settings).ela)
        found = guarded(store.lookup, source)
        if found is None:
            return _Ready(None)
        data, path, cached = found
        if cached is not None:
            return _Ready(cached)
        return pool.submit(guarded, store.compute, data, path, str(source))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = _ordered(lambda source: schedule(pool, source), sources, 4 * workers)
        yield from progress(results, total=len(sources), description=description, show=show_progress)


class _Ready:
    """A result that is already there, with the ``result()`` of a future."""

    def __init__(self, value) -> None:
        self.value = value

    def result(self):
        return self.value


def _ordered(schedule, items: Sequence, window: int) -> Iterator:
    """Results of ``schedule(item)`` in order, with at most ``window`` scheduled ahead (bounded memory)."""
    pending: deque = deque()
    iterator = iter(items)
    for item in iterator:
        pending.append(schedule(item))
        if len(pending) >= window:
            break
    while pending:
        result = pending.popleft().result()
        for item in iterator:
            pending.append(schedule(item))
            break
        yield result


def ela_dataset(sources: Iterable[str | os.PathLike], **options) -> list[np.ndarray | None]:
    """ELA maps of many files as a list; the options are those of :func:`iter_ela`."""
    return list(iter_ela(sources, **options))


__all__ = [
    "DEFAULT_QUALITY",
    "SCALINGS",
    "ElaCache",
    "ElaResult",
    "ElaSettings",
    "absolute_difference",
    "ela",
    "ela_dataset",
    "ela_of_loaded",
    "ela_result",
    "iter_ela",
    "resave_jpeg",
    "scale_difference",
]
