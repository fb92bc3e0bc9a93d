"""The data feed of training: images as the network takes them, cached, in batches.

ELA is computed once per image at full resolution through the on-disk ELA cache; then RGB and ELA are resized
bilinearly to the model's input and masks by nearest neighbour (the resize is the one resampling after ELA, the same
as at inference), once: the result goes to the on-disk input cache (:class:`InputCache`), which each epoch reads back.
Optional augmentation flips horizontally and vertically (no resampling, applied to the cached input), re-saves the
image as JPEG or post-processes it (a new compression history: ELA and the resize are then computed afresh). With
``cache_in_memory`` the decoded images are also kept in memory, for those re-saves. Batches are a
``keras.utils.PyDataset``, so they work on every backend; their padding comes from :mod:`pmsp_utils.pipeline`
(:func:`~pmsp_utils.pipeline.empty_batch`), as at inference.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .data.records import Record
from .data.synthetic import jpeg_roundtrip
from .ela import ElaCache, load_npy, save_npy_atomic
from .ela import ela as compute_ela
from .pipeline import crop_window, empty_batch, to_placed

if TYPE_CHECKING:
    from .train_config import TrainConfig


def load_example(record: Record, ela_cache: ElaCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, ela, mask) of one record at the image's own size: uint8 (H, W, 3), uint8 (H, W, 3), uint8 (H, W) 0/1."""
    ela_map, image = ela_cache.get_with_image(record.image_path)  # one decode serves both
    mask = record.load_mask(image.shape[:2])
    if ela_map.shape[:2] != image.shape[:2] or mask.shape != image.shape[:2]:
        raise ValueError(f"{record.name}: image {image.shape[:2]}, ELA {ela_map.shape[:2]} and mask {mask.shape} differ.")
    return image, ela_map, mask


def placed_entry(image: np.ndarray, ela_map: np.ndarray, mask: np.ndarray, input_size: int, policy: str) -> np.ndarray:
    """uint8 (h, w, 7): RGB, ELA and the 0/1 mask at the image's extent in the model's input (:func:`pipeline.to_placed`),
    the layout of :class:`InputCache` entries and of every image a training batch is filled from. Under the
    ``"native"`` policy nothing is resampled: the entry is the whole image, and each batch crops its own window
    (:func:`~pmsp_utils.pipeline.crop_window`), so a crop's ELA is the whole image's ELA at that place."""
    if policy == "native":
        return np.concatenate([image, ela_map, mask[..., None]], axis=2)
    rgb, ela_small, mask_small, _ = to_placed(image, ela_map, mask, input_size, policy)
    return np.concatenate([rgb, ela_small, mask_small[..., None]], axis=2)


class InputCache:
    """Training images as the network takes them, on disk: resized (or placed) once, read back each epoch.

    One ``.npy`` per image and input setting, uint8 (h, w, 7): RGB, ELA and the 0/1
    mask at the image's extent inside the model's input (:func:`pipeline.to_placed`),
    before flips and padding. Keyed by the image's and the mask's bytes, the ELA
    settings, the input size and the policy; written atomically beside the ELA cache
    (``PMSP_CACHE_DIR/inputs``). Entries come back as read-only memory maps, so an
    epoch reads pages instead of decoding JPEGs and resampling, and the operating
    system, not the process, decides what stays in memory. On an H200 this took the
    on-disk pipeline from 0.31x to 0.60x of the training speed from arrays in memory
    (``benchmarks/bench_gpu_pipeline.py``, figures in ``benchmarks/RESULTS.md``).
    """

    VERSION = b"inputs-1"

    def __init__(self, ela_cache: ElaCache, input_size: int, policy: str, directory: str | Path | None = None) -> None:
        self.ela_cache = ela_cache
        self.input_size, self.policy = input_size, policy
        self.directory = Path(directory) if directory is not None else ela_cache.directory.parent / "inputs"
        self._paths: dict[Path, Path] = {}
        self._lock = threading.Lock()

    def path_for(self, record: Record) -> Path:
        """The entry of ``record`` (its files are read and hashed once per cache object)."""
        with self._lock:
            known = self._paths.get(record.image_path)
        if known is None:
            from .images import read_bytes

            mask = read_bytes(record.mask_path) if record.mask_path is not None else b""
            tag = b"|".join((self.VERSION, str(self.input_size).encode(), self.policy.encode(),
                             str(record.mask_rotation).encode(), str(record.invert_mask).encode(),
                             hashlib.blake2b(mask, digest_size=16).digest()))
            key = self.ela_cache.key(read_bytes(record.image_path) + b"\0" + tag)
            known = self.directory / key[:2] / f"{key}.npy"
            with self._lock:
                self._paths[record.image_path] = known
        return known

    def get(self, record: Record, load) -> np.ndarray:
        """uint8 (h, w, 7) of ``record``; ``load()`` gives its (image, ela, mask) when the entry is missing."""
        path = self.path_for(record)
        try:
            entry = load_npy(path, mmap_mode="r")
            if entry.dtype == np.uint8 and entry.ndim == 3 and entry.shape[2] == 7:
                return entry
        except (ValueError, OSError, EOFError):  # missing or damaged: prepare it (again)
            pass
        entry = placed_entry(*load(), self.input_size, self.policy)
        save_npy_atomic(path, entry)
        entry.flags.writeable = False
        return entry


def _flipped(array, flips: tuple[bool, bool]):
    """``array`` flipped left-right and/or up-down (views, no copy)."""
    left_right, up_down = flips
    if left_right:
        array = array[:, ::-1]
    if up_down:
        array = array[::-1]
    return array


@dataclass(frozen=True)
class Change:
    """What augmentation does to one training image this epoch: flips (no resampling), a JPEG re-save's quality, and
    whole-image post-processing steps (:class:`~pmsp_utils.augment.PostProcessing`)."""

    flips: tuple[bool, bool] = (False, False)
    resave: bool = False
    steps: dict = field(default_factory=dict)

    @property
    def new_history(self) -> bool:
        """A re-save or post-processing gives the image a new compression history: its ELA is computed afresh."""
        return self.resave or bool(self.steps)


def draw_change(rng: np.random.Generator, config: TrainConfig, postprocessing, augment: bool) -> Change:
    """The first stage of the line: what happens to one image, drawn from ``rng`` (nothing without ``augment``)."""
    if not augment:
        return Change()
    flips = (rng.random() < 0.5, rng.random() < 0.5)
    resave = bool(config.recompress) and rng.random() < config.recompress
    steps = postprocessing.draw(rng) if postprocessing.active else {}
    return Change(flips, resave, steps)


def post_process(image: np.ndarray, mask: np.ndarray, change: Change, config: TrainConfig, rng: np.random.Generator):
    """(image, mask) after a change with a new history: flipped first (so the flipped grid is what the re-save sees),
    re-saved as JPEG, then post-processed (:func:`~pmsp_utils.augment.apply_steps`); ELA comes after this stage."""
    from .augment import apply_steps

    image, mask = np.ascontiguousarray(_flipped(image, change.flips)), np.ascontiguousarray(_flipped(mask, change.flips))
    if change.resave:
        low, high = config.recompress_qualities
        image = jpeg_roundtrip(image, int(rng.integers(low, high + 1)))
    return apply_steps(image, mask, change.steps, rng)


def crop_to_input(placed: np.ndarray, size: int, rng: np.random.Generator):
    """(placed, window): a placed entry larger than the input (the native policy) cut to a window at the image's own
    pixels on the 8x8 JPEG grid (:func:`~pmsp_utils.pipeline.crop_window`); a smaller one as it is."""
    window = (slice(None), slice(None))
    if placed.shape[0] > size or placed.shape[1] > size:
        top, left = crop_window(placed.shape[0], placed.shape[1], size, rng)
        window = (slice(top, top + size), slice(left, left + size))
        placed = placed[window]
    return placed, window


def make_sequence(records: Sequence[Record], config: TrainConfig, *, shuffle: bool, augment: bool, ela_cache: ElaCache, batch_size: int | None = None,
                  preloaded: dict | None = None, input_cache: InputCache | None = None, teacher=None):
    """A ``keras.utils.PyDataset`` of ({"rgb", "ela"}, mask) batches over ``records``.

    Inputs come from ``input_cache`` (default: an :class:`InputCache` beside ``ela_cache``), prepared on first use.
    ``preloaded``: {image path: (image, ela, mask)} already decoded (by :func:`screen_records`), used instead of
    decoding again when ``config.cache_in_memory`` (for new cache entries and JPEG re-saves).
    ``teacher``: :class:`~pmsp_utils.distill.TeacherMaps`; where it has a record's map, the targets mix it in
    (``config.distill_weight``, :func:`~pmsp_utils.distill.mix_targets`).
    """
    import keras

    from .augment import PostProcessing
    from .distill import mix_targets

    inputs = input_cache or InputCache(ela_cache, config.model.input_size, config.model.policy)
    postprocessing = PostProcessing.from_dict(config.postprocess)

    class ForgerySequence(keras.utils.PyDataset):
        """Batches of resized RGB, ELA and masks; order and flips depend on (seed, epoch) only.

        The epoch is not tracked in ``on_epoch_end``: each batch position is
        requested once per epoch, so the n-th request for a position belongs to
        epoch ``start + n``, whatever the timing. Pass ``shuffle=False`` to
        ``fit``: this class shuffles, from its seed.

        Prefetching: Keras' own worker threads start again every epoch, and
        the first batches of each epoch wait for them (measured in
        ``benchmarks/RESULTS.md``). So Keras gets ``workers=1`` and asks for the
        batches in order, while ``config.workers`` threads of this sequence,
        alive across epochs, build the next ones ahead, over the end of an
        epoch into the next.
        """

        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)  # in order, from the main thread (see above)
            self.records = list(records)
            self.batch = batch_size or config.batch_size
            self.start_epoch = 0
            self.requests: dict[int, int] = {}
            self.lock = threading.Lock()
            self.memory: dict[int, tuple] = {index: preloaded[record.image_path] for index, record in enumerate(self.records)
                                              if config.cache_in_memory and preloaded and record.image_path in preloaded}
            self.orders: dict[int, np.ndarray] = {}
            self.threads = config.workers
            self.pool = None  # started on the first request
            self.pending: dict[tuple[int, int], object] = {}  # (epoch, position) -> Future of its batch

        def order(self, epoch: int) -> np.ndarray:
            if epoch not in self.orders:
                indices = np.arange(len(self.records))
                if shuffle:
                    np.random.default_rng([config.seed, epoch]).shuffle(indices)
                self.orders = {epoch: indices, **{e: o for e, o in self.orders.items() if e >= epoch - 1}}
            return self.orders[epoch]

        def set_epoch(self, epoch: int) -> None:
            """Start counting epochs at ``epoch`` (a resumed run)."""
            with self.lock:
                self.start_epoch, self.requests, self.pending = epoch, {}, {}

        def close(self) -> None:
            """Stop the prefetching threads (a later request starts them again)."""
            with self.lock:
                pool, self.pool, self.pending = self.pool, None, {}
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

        def on_epoch_end(self) -> None:
            pass  # epochs are counted per batch position (see the class docstring)

        def __len__(self) -> int:
            return math.ceil(len(self.records) / self.batch)

        def example(self, index: int) -> tuple:
            """(image, ela, mask) at the image's own size, kept in memory after the first epoch."""
            if index in self.memory:
                return self.memory[index]
            example = load_example(self.records[index], ela_cache)
            if config.cache_in_memory:
                self.memory[index] = example
            return example

        def __getitem__(self, position: int):
            with self.lock:
                epoch = self.start_epoch + self.requests.get(position, 0)
                self.requests[position] = self.requests.get(position, 0) + 1
                if self.threads < 2:
                    future = None
                else:
                    if self.pool is None:
                        from concurrent.futures import ThreadPoolExecutor

                        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="pmsp-batches")
                    future = self.pending.pop((epoch, position), None) or self.pool.submit(self.build, epoch, position)
                    self.pending = {key: value for key, value in self.pending.items() if key > (epoch, position)}
                    ahead = (epoch, position)
                    for _ in range(min(self.threads + 1, len(self))):  # the batches Keras asks for next
                        ahead = (ahead[0], ahead[1] + 1) if ahead[1] + 1 < len(self) else (ahead[0] + 1, 0)
                        if ahead not in self.pending:
                            self.pending[ahead] = self.pool.submit(self.build, *ahead)
            return self.build(epoch, position) if future is None else future.result()

        def build(self, epoch: int, position: int):
            """The batch at ``position`` of ``epoch``: ({"rgb", "ela"} uint8, targets float32)."""
            with self.lock:
                chosen = self.order(epoch)[position * self.batch : (position + 1) * self.batch]
            rng = np.random.default_rng([config.seed, epoch, position])
            size = config.model.input_size
            # The batch is filled in place: pipeline's padding around a padded image, its ignored value in the targets.
            # Inputs stay uint8, a quarter of float32's bytes to copy and to send to a GPU; the network's inputs
            # are float32 and Keras casts them there, inside the compiled step.
            rgbs, elas, targets = empty_batch(len(chosen), size)
            for slot, index in enumerate(chosen):
                index = int(index)
                record = self.records[index]
                # The line each training image takes, one stage after another: draw what happens to it, read it,
                # post-process it (a new compression history), ELA and placement at the input, the window, the target.
                change = draw_change(rng, config, postprocessing, augment)
                if change.new_history:
                    image, mask = post_process(*self.example(index)[::2], change, config, rng)
                    placed = placed_entry(image, compute_ela(image, **asdict(ela_cache.settings)), mask, size, config.model.policy)
                else:  # flips keep the forensic traces (no pixel leaves the JPEG grid): they apply to the cached input
                    placed = _flipped(inputs.get(record, lambda index=index: self.example(index)), change.flips)
                placed, window = crop_to_input(placed, size, rng)
                soft = teacher.get(record) if teacher is not None else None
                soft = None if soft is None else _flipped(soft, change.flips)[window]
                height, width = placed.shape[:2]
                rgbs[slot, :height, :width] = placed[..., 0:3]
                elas[slot, :height, :width] = placed[..., 3:6]
                targets[slot, :height, :width, 0] = mix_targets(placed[..., 6], soft, config.distill_weight)
            batch = {"rgb": rgbs, "ela": elas}
            if config.model.streams != "both":
                batch = {config.model.streams: batch[config.model.streams]}
            return batch, targets

    return ForgerySequence()


def screen_records(train_records, validation_records, ela_cache: ElaCache, echo=print, *, keep: bool = True):
    """Decode every image once (filling the ELA cache) and skip, with a list, those training cannot use.

    Truncated or corrupt images and masks of another size would otherwise stop a
    run in its first epoch; evaluation skips the same images the same way.
    Returns (training records, validation records, {image path: (image, ela, mask)}); the decoded examples are
    kept (``keep``) for the training feed, so no image is decoded twice.
    """
    from .data.verify import usable_records

    loaded: dict = {}

    def decode(record):
        example = load_example(record, ela_cache)
        if keep:
            loaded[record.image_path] = example
        return example[0], example[2]

    screened = []
    for part, records in (("training", train_records), ("validation", validation_records)):
        usable, refused = usable_records(records, decode=decode)
        if refused:
            echo(f"skipped {len(refused)} of {len(records)} {part} images that cannot be used:")
            for path, why in refused[:10]:
                echo(f"  {Path(path).name}: {why}")
            if len(refused) > 10:
                echo(f"  ... and {len(refused) - 10} more")
        if not usable:
            raise ValueError(f"none of the {len(records)} {part} images can be used (see the list above).")
        screened.append(usable)
    return screened[0], screened[1], loaded
