"""Training, the paper's section 4.2: the recipe, the input pipeline, checkpoints and resume.

Defined in 04_training. The paper's recipe is the default: binary
cross-entropy, Adam at 1e-4, batch size 4, up to 50 epochs, early stopping on
the validation loss with the best weights restored. One default is not the
paper's: the network's output stride is 16 (its last MobileNetV1 stage
dilated, as PSPNet runs its pyramid), which gave the best validation F1 per
CPU-hour of the output variants (``--output-stride 32`` is the paper's).

Input pipeline (a ``keras.utils.PyDataset``, so it works on every backend):
ELA is computed once per image at full resolution through the on-disk ELA
cache; then RGB and ELA are resized bilinearly to the model's input and masks
by nearest neighbour (the resize is the one resampling after ELA, the same as
at inference), once: the result goes to the on-disk input cache
(:class:`InputCache`), which each epoch reads back. Optional augmentation flips
horizontally and vertically (no resampling, applied to the cached input) and
re-saves the image as JPEG (a new compression history: ELA and the resize are
then computed afresh). With ``cache_in_memory`` the decoded images are also kept
in memory, for those re-saves.

Nothing is lost to an interruption: every epoch writes ``checkpoint.keras``
(model and optimizer) and ``state.json`` atomically (write, then rename);
``resume`` continues from them with the epoch count, the early-stopping state
and the same data order. Each run directory holds the config, the split lists,
the seed, the backend and package versions, and ``history.csv``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .architecture import DECODERS, INPUT_POLICIES, OUTPUT_STRIDES, ModelSettings
from .data.records import Record
from .data.splits import SPLIT_PROTOCOLS, split_by
from .data.sources import DATA_SOURCES
from .data.synthetic import jpeg_roundtrip
from .ela import ElaCache, save_npy_atomic
from .safe_write import save_atomic, save_npz_atomic, write_csv, write_text_atomic
from .ela import ela as compute_ela
from .metrics import PixelMetrics
from .models import init_weights_from, save_model
from .pipeline import to_placed, valid_region
from .runs import read_history, read_json

LOSSES = ("bce", "bce+dice", "focal")
SCHEDULES = ("constant", "cosine", "plateau")
MONITORS = ("val_loss", "val_f1")  # what picks the best epoch and stops early
PLATEAU_PATIENCE = 2  # epochs without a better --monitor value (config.monitor) before the learning rate drops
PLATEAU_FACTOR = 0.3


def saved_settings(values: dict) -> dict:
    """A saved ``config.json`` with every setting it lacks filled in: added settings at their defaults, settings whose
    default changed since at the value they had then (:data:`pmsp_utils.runs.LEGACY_SETTINGS`, the one such table)."""
    from .runs import LEGACY_SETTINGS

    defaults = asdict(TrainConfig())
    return {**defaults, **{key: value for key, value in LEGACY_SETTINGS.items() if key in defaults}, **values}


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as config.json in the run directory."""

    data: str = "synthetic"
    root: str | None = None
    input_size: int = 576
    batch_size: int = 4
    epochs: int = 50
    learning_rate: float = 1e-4
    patience: int = 5
    loss: str = "bce"
    positive_weight: float = 1.0
    schedule: str = "constant"
    ema: float = 0.0  # momentum of an exponential moving average of the weights (Polyak averaging; 0: off): validated, kept
    mixed_precision: bool = False
    augment: bool = True
    seed: int = 0
    weights: str | None = "imagenet"
    init_from: str | None = None  # a whole model's .weights.h5 (e.g. another run's best) to start from
    attention: str = "features"
    fusion: str = "add"
    streams: str = "both"
    output_stride: int = 16  # the paper's 32 halved by dilation: best validation F1 per CPU-hour (benchmarks/RESULTS.md)
    decoder: str = "none"
    policy: str = "resize"  # how an image reaches the square input: "resize" or "pad" (pipeline.py)
    recompress: float = 0.0  # probability of re-saving a training image as JPEG (quality from recompress_qualities) before ELA
    recompress_qualities: tuple = (70, 100)
    postprocess: dict = field(default_factory=dict)  # whole-image resize/JPEG/blur/noise before ELA, each with a probability (augment.PostProcessing)
    forgeries: int = 0  # forgeries made on real photos (data.forgeries) added to the training part
    forgery_photos: str | None = None  # their folder of authentic photos (default: the dataset's authentic/ folder)
    distill_from: str | None = None  # a teacher model whose maps are mixed into the targets of the dataset's own images
    distill_weight: float = 0.5  # target = (1 - w) * mask + w * teacher
    monitor: str = "val_loss"
    split: str = "paper"
    synthetic_count: int = 400
    synthetic_copy_move: float | None = None  # share of the synthetic forgeries that are copy-moves (None: the generator's 0.35/0.80)
    ela_quality: int = 90
    workers: int = 2
    devices: int = 1  # data-parallel training: each batch split across this many accelerators (use_devices)
    cache_in_memory: bool = True
    max_train_images: int | None = None
    notes: dict = field(default_factory=dict)

    def check(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        self._check_types()
        if self.data not in DATA_SOURCES:
            raise ValueError(f"data must be one of {DATA_SOURCES}, got {self.data!r}.")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}.")
        for name in ("batch_size", "epochs", "patience", "workers", "synthetic_count", "devices"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if not self.positive_weight > 0 or not math.isfinite(self.positive_weight):
            raise ValueError(f"positive_weight must be a finite positive number, got {self.positive_weight}.")
        if not math.isfinite(self.learning_rate):
            raise ValueError(f"learning_rate must be finite, got {self.learning_rate}.")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema is a momentum in [0, 1) (0: off; 0.99 averages about 100 steps), got {self.ema}.")
        for value, allowed, what in ((self.output_stride, OUTPUT_STRIDES, "output_stride"), (self.decoder, DECODERS, "decoder"),
                                     (self.policy, INPUT_POLICIES, "policy"), (self.monitor, MONITORS, "monitor"),
                                     (self.split, SPLIT_PROTOCOLS, "split")):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {allowed}, got {value!r}.")
        if self.synthetic_copy_move is not None and not 0.0 <= self.synthetic_copy_move <= 1.0:
            raise ValueError(f"synthetic_copy_move is a share of the forgeries in [0, 1], got {self.synthetic_copy_move}.")
        if not 0.0 <= self.recompress <= 1.0:
            raise ValueError(f"recompress is a probability in [0, 1], got {self.recompress}.")
        low, high = self.recompress_qualities
        if not 1 <= low <= high <= 100:
            raise ValueError(f"recompress_qualities must be two JPEG qualities low <= high in 1..100, got {self.recompress_qualities}.")
        from .augment import PostProcessing

        PostProcessing.from_dict(self.postprocess)  # names and probabilities
        if self.forgeries < 0:
            raise ValueError(f"forgeries is a count of generated training images, got {self.forgeries}.")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight is the teacher's share of the target in [0, 1], got {self.distill_weight}.")
        if self.batch_size % self.devices:
            raise ValueError(f"batch_size {self.batch_size} must divide evenly across {self.devices} devices (each takes an equal share).")
        self.model_settings()  # the input size must fit the output stride

    #: Settings by kind, for :meth:`check`: a bool is never taken for a number, nor a string for a bool.
    WHOLE_NUMBERS = ("input_size", "batch_size", "epochs", "patience", "seed", "output_stride", "forgeries", "synthetic_count",
                     "ela_quality", "workers", "devices")
    NUMBERS = ("learning_rate", "positive_weight", "ema", "recompress", "distill_weight")
    SWITCHES = ("mixed_precision", "augment", "cache_in_memory")
    OPTIONAL_TEXT = ("root", "weights", "init_from", "forgery_photos", "distill_from")

    def _check_types(self) -> None:
        def wrong(name: str, what: str) -> ValueError:
            value = getattr(self, name)
            return ValueError(f"{name} must be {what}, got {value!r} ({type(value).__name__}).")

        for name in self.WHOLE_NUMBERS:
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), (int, np.integer)):
                raise wrong(name, "a whole number")
        for name in self.NUMBERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
                raise wrong(name, "a finite number")
        for name in self.SWITCHES:
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise wrong(name, "true or false")
        for name in self.OPTIONAL_TEXT:
            if getattr(self, name) is not None and not isinstance(getattr(self, name), (str, os.PathLike)):
                raise wrong(name, "a name or a path")
        if self.max_train_images is not None and (isinstance(self.max_train_images, bool) or not isinstance(self.max_train_images, (int, np.integer))):
            raise wrong("max_train_images", "a whole number")
        if self.synthetic_copy_move is not None and (isinstance(self.synthetic_copy_move, bool) or not isinstance(self.synthetic_copy_move, (int, float))):
            raise wrong("synthetic_copy_move", "a number")
        if not isinstance(self.postprocess, dict):
            raise wrong("postprocess", "a table of steps and probabilities")
        if not isinstance(self.recompress_qualities, tuple) or len(self.recompress_qualities) != 2:
            raise wrong("recompress_qualities", "two JPEG qualities")

    @classmethod
    def from_saved(cls, values: dict, source: str = "config.json") -> "TrainConfig":
        """A config from a saved ``config.json`` (JSON lists back to tuples; keys that are no setting left out), checked:
        a damaged or hand-edited file gives one ValueError naming ``source``."""
        if not isinstance(values, dict):
            raise ValueError(f"{source}: holds a JSON {type(values).__name__}, not the run's settings; start a new --run-dir.")
        known = {item.name for item in fields(cls)}
        try:
            config = cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in saved_settings(values).items()
                            if key in known})
            config.check()
        except (TypeError, ValueError, AttributeError) as error:  # wrong types reach comparisons as TypeError
            raise ValueError(f"{source}: the run's saved settings do not work ({error}); restore the file or start a new "
                             "--run-dir.") from None
        return config

    def model_settings(self) -> ModelSettings:
        """The settings saved with the trained model (architecture, ELA, input policy)."""
        return ModelSettings(input_size=self.input_size, attention=self.attention, fusion=self.fusion, streams=self.streams,
                             output_stride=self.output_stride, decoder=self.decoder, ela_quality=self.ela_quality,
                             policy=self.policy)


# --- the input pipeline ---------------------------------------------------------------


def load_example(record: Record, ela_cache: ElaCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, ela, mask) of one record at the image's own size: uint8 (H, W, 3), uint8 (H, W, 3), uint8 (H, W) 0/1."""
    ela_map, image = ela_cache.get_with_image(record.image_path)  # one decode serves both
    mask = record.load_mask(image.shape[:2])
    if ela_map.shape[:2] != image.shape[:2] or mask.shape != image.shape[:2]:
        raise ValueError(f"{record.name}: image {image.shape[:2]}, ELA {ela_map.shape[:2]} and mask {mask.shape} differ.")
    return image, ela_map, mask


def placed_entry(image: np.ndarray, ela_map: np.ndarray, mask: np.ndarray, input_size: int, policy: str) -> np.ndarray:
    """uint8 (h, w, 7): RGB, ELA and the 0/1 mask at the image's extent in the model's input (:func:`pipeline.to_placed`),
    the layout of :class:`InputCache` entries and of every image a training batch is filled from."""
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
            entry = np.load(path, mmap_mode="r")
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

    from .augment import PostProcessing, apply_steps
    from .distill import mix_targets

    inputs = input_cache or InputCache(ela_cache, config.input_size, config.policy)
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
            size = config.input_size
            # The batch is filled in place: zeros around a padded image, -1 (ignored by the losses) in its targets.
            # Inputs stay uint8, a quarter of float32's bytes to copy and to send to a GPU; the network's inputs
            # are float32 and Keras casts them there, inside the compiled step.
            rgbs = np.zeros((len(chosen), size, size, 3), np.uint8)
            elas = np.zeros((len(chosen), size, size, 3), np.uint8)
            targets = np.full((len(chosen), size, size, 1), -1.0, np.float32)
            for slot, index in enumerate(chosen):
                index = int(index)
                flips = (augment and rng.random() < 0.5, augment and rng.random() < 0.5)
                resave = augment and config.recompress and rng.random() < config.recompress
                steps = postprocessing.draw(rng) if augment and postprocessing.active else {}
                if resave or steps:
                    # A re-save or post-processing is a new history: ELA is computed afresh at the image's size after
                    # it (on the flipped image, so the flipped grid is what the re-save sees), then it is resized.
                    image, _, mask = self.example(index)
                    image, mask = np.ascontiguousarray(_flipped(image, flips)), np.ascontiguousarray(_flipped(mask, flips))
                    if resave:
                        low, high = config.recompress_qualities
                        image = jpeg_roundtrip(image, int(rng.integers(low, high + 1)))
                    image, mask = apply_steps(image, mask, steps, rng)
                    placed = placed_entry(image, compute_ela(image, quality=config.ela_quality), mask, size, config.policy)
                else:
                    # Flips keep the forensic traces (no pixel leaves the JPEG grid), so they apply to the cached input.
                    placed = _flipped(inputs.get(self.records[index], lambda index=index: self.example(index)), flips)
                height, width = placed.shape[:2]
                rgbs[slot, :height, :width] = placed[..., 0:3]
                elas[slot, :height, :width] = placed[..., 3:6]
                soft = teacher.get(self.records[index]) if teacher is not None else None
                soft = None if soft is None else _flipped(soft, flips)
                targets[slot, :height, :width, 0] = mix_targets(placed[..., 6], soft, config.distill_weight)
            batch = {"rgb": rgbs, "ela": elas}
            if config.streams != "both":
                batch = {config.streams: batch[config.streams]}
            return batch, targets

    return ForgerySequence()


# --- losses ---------------------------------------------------------------------------


def screen_records(train_records, validation_records, ela_cache: ElaCache, echo=print, *, keep: bool = True):
    """Decode every image once (filling the ELA cache) and skip, with a list, those training cannot use.

    Truncated or corrupt images and masks of another size would otherwise stop a
    run in its first epoch; evaluation skips the same images the same way.
    Returns (training records, validation records, {image path: (image, ela, mask)}); the decoded examples are
    kept (``keep``) for the input pipeline, so no image is decoded twice.
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


def make_loss(name: str = "bce", positive_weight: float = 1.0):
    """The training loss: BCE (optionally weighting tampered pixels), BCE + soft Dice, or focal."""

    from .network.losses import BinaryFocal, WeightedBinaryCrossentropy, WeightedBceDice

    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}.")
    if name == "bce":
        return WeightedBinaryCrossentropy(positive_weight)  # skips ignored (padding) pixels, unlike keras' own
    if name == "bce+dice":
        return WeightedBceDice(positive_weight)
    return BinaryFocal()


# --- validation metrics, checkpoints, resume ------------------------------------------


def evaluate_pixels(model, sequence, threshold: float = 0.5) -> dict[str, float]:
    """Per-image F1 at ``threshold`` over tampered images, pooled pixel AUC and, for a compiled
    model, its loss (batch losses weighted by batch size, as Keras does) on ``sequence``, in one pass."""
    import keras

    metrics = PixelMetrics(threshold)
    loss_total, count = 0.0, 0
    for position in range(len(sequence)):
        inputs, masks = sequence[position]
        probabilities = np.asarray(model.predict_on_batch(inputs), dtype=np.float32)
        if getattr(model, "loss", None) is not None:
            loss_total += float(keras.ops.convert_to_numpy(model.loss(masks, probabilities))) * len(masks)
            count += len(masks)
        for probability, target in zip(probabilities[..., 0], masks[..., 0]):
            rows, columns = valid_region(target, ignore=-1.0)  # padding is not scored
            metrics.update(np.clip(probability[rows, columns], 0.0, 1.0), target[rows, columns].astype(np.uint8))
    result = metrics.result()
    if count:
        result["loss"] = loss_total / count
    return result


def environment_facts() -> dict:
    """Backend, versions and device, for the run directory."""
    import keras

    import pmsp_utils

    facts = {"backend": keras.backend.backend(), "keras": keras.__version__, "pmsp_utils": pmsp_utils.__version__,
             "python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()}
    try:
        if facts["backend"] == "jax":
            import jax

            facts["devices"] = [str(device) for device in jax.devices()]
            facts["jax"] = jax.__version__
        elif facts["backend"] == "tensorflow":
            import tensorflow as tf

            facts["devices"] = [device.name for device in tf.config.list_physical_devices()]
            facts["tensorflow"] = tf.__version__
        elif facts["backend"] == "torch":
            import torch

            facts["devices"] = ["cuda"] if torch.cuda.is_available() else ["cpu"]
            facts["torch"] = torch.__version__
    except Exception as error:  # facts are informative; never fail a run over them
        facts["devices"] = f"unknown ({error})"
    return facts


def _seeded_layers(model, prefix: str = ""):
    """(name path, layer) of every layer with its own random generator (Dropout and the like), nested models included."""
    import keras

    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            yield from _seeded_layers(layer, path + "/")
        elif getattr(layer, "seed_generator", None) is not None:
            yield path, layer


def seed_generator_states(model) -> dict[str, list[int]]:
    """The random-generator states of dropout and the like, keyed by layer; a .keras file does not restore them."""
    import keras

    return {path: keras.ops.convert_to_numpy(layer.seed_generator.state).tolist() for path, layer in _seeded_layers(model)}


def restore_seed_generators(model, states: dict[str, list[int]]) -> None:
    """Put saved random-generator states back, so a resumed run draws what the uninterrupted one would."""
    for path, layer in _seeded_layers(model):
        if path in states:
            layer.seed_generator.state.assign(np.asarray(states[path], dtype=layer.seed_generator.state.dtype))


SNAPSHOT_IMAGES = 4
SNAPSHOT_SIZE = 96


def save_snapshot(run_dir: Path, model, validation, epoch: int) -> None:
    """Keep small predictions on the first validation images after each epoch (snapshots.npz).

    They show how predictions improve over the epochs (notebook 04); uint8 at
    96x96, a few kilobytes per epoch.
    """
    inputs, masks = validation[0]
    count = min(SNAPSHOT_IMAGES, len(masks))
    inputs = {name: values[:count] for name, values in inputs.items()}
    probability = np.asarray(model.predict_on_batch(inputs), dtype=np.float32)[..., 0]
    shrink = lambda a: np.stack([np.asarray(Image.fromarray(x).resize((SNAPSHOT_SIZE, SNAPSHOT_SIZE), Image.Resampling.BILINEAR)) for x in a])  # noqa: E731
    path = run_dir / "snapshots.npz"
    stored = dict(np.load(path)) if path.exists() else {}
    if "rgb" not in stored:
        stored["rgb"] = shrink(inputs.get("rgb", inputs.get("ela")).astype(np.uint8))
        stored["mask"] = shrink((np.clip(masks[:count, ..., 0], 0, 1) * 255).astype(np.uint8))
    stored[f"epoch_{epoch:03d}"] = shrink((np.clip(probability, 0, 1) * 255).astype(np.uint8))
    save_npz_atomic(path, stored)


MONITOR_LABELS = {"val_loss": "validation loss", "val_f1": "validation per-image F1@0.5"}


def is_better(monitor: str, logs: dict, state: dict) -> bool:
    """Whether this epoch beats the best so far on ``monitor`` (lower loss, or higher F1; ties broken by the loss)."""
    if monitor == "val_loss":
        return logs["val_loss"] < state["best_val_loss"]
    best_f1 = state.get("best_val_f1", -1.0)
    return logs["val_f1"] > best_f1 or (logs["val_f1"] == best_f1 and logs["val_loss"] < state["best_val_loss"])


STATE_MEMBER = "pmsp_state.json"  # the run state inside checkpoint.keras: model, optimizer and state change in one rename


def save_checkpoint(model, run_dir: Path, state: dict, settings: ModelSettings) -> None:
    """Write ``checkpoint.keras`` with the run state (and the model settings) inside it, renamed once; ``state.json``
    is a copy for people.

    A crash at any point leaves either the old checkpoint with its own state or
    the new one with its own: an epoch is never repeated or skipped on resume.
    """
    save_model(model, run_dir / "checkpoint.keras", settings, members={STATE_MEMBER: state})
    write_text_atomic(run_dir / "state.json", json.dumps(state, indent=2))


def load_checkpoint(run_dir: Path):
    """(model, state) from ``checkpoint.keras``; a damaged file gets an error naming it and what to do."""
    import zipfile

    from .models import read_keras

    path = run_dir / "checkpoint.keras"
    try:
        with zipfile.ZipFile(path) as archive:
            state = json.loads(archive.read(STATE_MEMBER)) if STATE_MEMBER in archive.namelist() else None
        model = read_keras(path)
    except Exception as error:  # zipfile, h5py and Keras raise many types for a damaged archive
        raise ValueError(f"{path}: the checkpoint is damaged and cannot be resumed ({type(error).__name__}: {error}); "
                         "restore it from a backup, or start again in a new --run-dir (--init-from RUN_DIR/best.weights.h5 "
                         "keeps the best weights so far).") from None
    if state is None:  # runs from before the state went into the checkpoint
        state = read_json(run_dir / "state.json")
    return model, state


def make_epoch_callback(run_dir: Path, validation, config: TrainConfig, state: dict, echo):
    """The callback that, each epoch, scores the validation split and writes checkpoints atomically."""
    import keras

    class EpochEnd(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            with averaged_weights(self.model):  # with --ema, the average is what is scored and kept as the best
                self.score_and_keep(epoch, logs)
            state["epochs_done"] = epoch + 1
            state["seed_generators"] = seed_generator_states(self.model)
            save_checkpoint(self.model, run_dir, state, config.model_settings())  # the raw weights, the average in the optimizer
            echo(
                f"epoch {epoch + 1}/{config.epochs}: loss {logs['loss']:.4f}, val_loss {logs['val_loss']:.4f}, "
                f"val per-image F1@0.5 {logs['val_f1']:.3f}, val pooled AUC {logs['val_auc']:.3f}"
                + (" (best)" if state["wait"] == 0 else f" (no improvement for {state['wait']})")  # wait is 0 only after a better epoch
            )
            if state["wait"] >= config.patience:
                echo(f"early stopping: no better {MONITOR_LABELS[config.monitor]} for {config.patience} epochs")
                self.model.stop_training = True

        def score_and_keep(self, epoch, logs):
            scores = evaluate_pixels(self.model, validation)  # the one validation pass of the epoch
            logs["val_loss"] = scores["loss"]
            logs["val_f1"] = scores["per_image_f1@0.5"]
            logs["val_auc"] = scores["pooled_auc"]
            logs["seconds"] = time.perf_counter() - self.started
            improved = is_better(config.monitor, logs, state)
            if improved:
                state.update(best_val_loss=float(logs["val_loss"]), best_val_f1=float(logs["val_f1"]), best_epoch=epoch + 1, wait=0)
                save_atomic(run_dir / "best.weights.h5", self.model.save_weights, suffix=".weights.h5")
            else:
                state["wait"] += 1
                if config.schedule == "plateau" and state["wait"] % PLATEAU_PATIENCE == 0:
                    rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)) * PLATEAU_FACTOR
                    self.model.optimizer.learning_rate.assign(rate)
                    echo(f"learning rate lowered to {rate:.2e} after {state['wait']} epochs without improvement")
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            append_history(run_dir, {"epoch": epoch, **{key: float(value) for key, value in logs.items()}})
            save_snapshot(run_dir, self.model, validation, epoch + 1)

    return EpochEnd()


@contextmanager
def averaged_weights(model):
    """Within the block, the model's trainable weights are the optimizer's moving average of them (``use_ema``);
    the raw weights come back after it, errors included. Without ``use_ema``, the model is left as it is.
    (Keras' ``SwapEMAWeights`` swaps around Keras' own evaluation; a run here scores in its epoch callback.)"""
    import keras

    optimizer = model.optimizer
    averages = getattr(optimizer, "_model_variables_moving_average", None) if getattr(optimizer, "use_ema", False) else None
    if not averages:
        yield model
        return
    variables = optimizer._trainable_variables
    raw = [keras.ops.convert_to_numpy(variable) for variable in variables]
    for variable, average in zip(variables, averages):
        variable.assign(keras.ops.convert_to_numpy(average))  # a copy: JAX's training step donates its buffers
    try:
        yield model
    finally:
        for variable, value in zip(variables, raw):
            variable.assign(value)


def use_devices(count: int):
    """Split each batch across ``count`` devices with the backend's own engine, for the model built or loaded next:
    Keras 3's distribution API (``keras.distribution.DataParallel``) on JAX, ``tf.distribute.MirroredStrategy`` on
    TensorFlow. Returns a context manager to build and train inside (a no-op for one device or on JAX, where the
    distribution is global, set for the block and restored after it). On several JAX hosts, call ``jax.distributed.initialize()`` first in every process; the
    devices of all hosts are then listed and used.
    """
    from contextlib import nullcontext

    import keras

    if count == 1:
        return nullcontext()
    backend = keras.backend.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        if len(devices) < count:
            raise ValueError(f"--devices {count}: JAX sees {len(devices)} device(s) ({', '.join(map(str, devices))}).")
        return _distributed(keras.distribution.DataParallel(devices=devices[:count]))
    if backend == "tensorflow":
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        if len(devices) < count:
            raise ValueError(f"--devices {count}: TensorFlow sees {len(devices)} device(s).")
        return tf.distribute.MirroredStrategy(devices=[device.name for device in devices[:count]]).scope()
    raise ValueError(f"--devices {count}: data-parallel training runs on the JAX or TensorFlow backend, not {backend}.")


@contextmanager
def _distributed(distribution):
    """Keras' global distribution set to ``distribution`` inside the block, the previous one back after it (a later
    model in the same process is not split across devices by accident)."""
    import keras

    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(distribution)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def build_model(config: TrainConfig, verbose: bool = True):
    """The network and its compiled recipe (loss, Adam, schedule, mixed precision)."""
    import keras

    from .network import build_pmsp

    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(config.seed)
    model = build_pmsp(**config.model_settings().architecture(), weights=None if config.init_from else config.weights, verbose=verbose)
    if config.init_from:
        report = init_weights_from(model, config.init_from)
        if verbose:
            print(report)
    optimizer = keras.optimizers.Adam(config.learning_rate, use_ema=config.ema > 0, ema_momentum=config.ema or 0.99)
    model.compile(optimizer=optimizer, loss=make_loss(config.loss, config.positive_weight))
    return model


def train(
    config: TrainConfig,
    train_records: Sequence[Record],
    validation_records: Sequence[Record],
    run_dir: str | Path,
    *,
    resume: bool = False,
    split_protocol: str = "",
    verbose: int | None = None,
    echo=print,
):
    """Train (or, with ``resume``, continue) a run in ``run_dir``; returns (model, history rows).

    The best weights (lowest validation loss) are restored into the returned model.
    """

    config.check()
    if not train_records or not validation_records:
        raise ValueError("training needs at least one training and one validation image.")
    with use_devices(config.devices):  # the model is built or loaded, and trained, with the batch split across the devices
        return _train(config, train_records, validation_records, run_dir, resume=resume, split_protocol=split_protocol,
                      verbose=verbose, echo=echo)


def _train(config, train_records, validation_records, run_dir, *, resume, split_protocol, verbose, echo):
    """:func:`train`'s body, inside the devices' scope."""
    import keras

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_file = run_dir / "state.json"
    if resume:
        if not (run_dir / "checkpoint.keras").exists():
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from (checkpoint.keras is written after each epoch).")
        saved = read_json(run_dir / "config.json")
        differences = setting_differences(saved, asdict(config))
        if differences:
            raise ValueError(f"{run_dir}: the settings differ from the run being resumed: "
                             + "; ".join(f"{name} was {old!r}, now {new!r}" for name, old, new in differences)
                             + ". Resume with the run's settings (see its config.json), or start a new --run-dir.")
        model, state = load_checkpoint(run_dir)
        restore_seed_generators(model, state.get("seed_generators", {}))
        echo(f"resuming {run_dir} after epoch {state['epochs_done']}")
        record_resumed_changes(run_dir, saved, asdict(config), state["epochs_done"], echo)
    else:
        if state_file.exists():
            raise FileExistsError(f"{run_dir} already holds a run; pass resume=True (--resume) to continue it, or choose another folder.")
        state = {"epochs_done": 0, "best_val_loss": float("inf"), "best_val_f1": -1.0, "best_epoch": 0, "wait": 0}
        write_text_atomic(run_dir / "config.json", json.dumps(asdict(config), indent=2))  # the model settings derive from it
        write_text_atomic(run_dir / "environment.json", json.dumps(environment_facts(), indent=2))
        from .data.splits import write_split_list

        splits = run_dir / "splits"
        splits.mkdir(exist_ok=True)
        for part, records in (("train", train_records), ("validation", validation_records)):
            write_split_list(splits / f"{part}.txt", records)  # names and content hashes
        if split_protocol:
            write_text_atomic(splits / "protocol.txt", split_protocol + "\n")
        model = build_model(config, verbose=bool(verbose))
    ela_cache = ElaCache(settings=config.model_settings().ela_settings())
    train_records, validation_records, loaded = screen_records(train_records, validation_records, ela_cache, echo,
                                                               keep=config.cache_in_memory)
    teacher = prepare_teacher(config, train_records, ela_cache, loaded, echo)
    training = make_sequence(train_records, config, shuffle=True, augment=config.augment, ela_cache=ela_cache, preloaded=loaded,
                              input_cache=teacher.input_cache if teacher else None, teacher=teacher)
    validation = make_sequence(validation_records, config, shuffle=False, augment=False, ela_cache=ela_cache, preloaded=loaded)
    training.set_epoch(state["epochs_done"])
    callbacks = [make_epoch_callback(run_dir, validation, config, state, echo)]
    if config.schedule == "cosine":
        total = config.epochs
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch: config.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / total))))
    if verbose is None:
        verbose = 2 if os.environ.get("CI") else 1
    try:
        if state["wait"] < config.patience and state["epochs_done"] < config.epochs:
            # No validation_data: the epoch callback computes the validation loss with F1 and AUC in one pass.
            model.fit(training, epochs=config.epochs, initial_epoch=state["epochs_done"],
                      callbacks=callbacks, verbose=verbose, shuffle=False)  # the sequence shuffles, from its seed
    finally:
        training.close()  # their prefetching threads would otherwise outlive the run (Keras keeps references)
        validation.close()
    if (run_dir / "best.weights.h5").exists():
        model.load_weights(run_dir / "best.weights.h5")
    model.pmsp_settings = config.model_settings()  # what localize needs, for every caller of train()
    save_model(model, run_dir / "model.keras", model.pmsp_settings)  # the settings travel inside the file
    return model, read_history(run_dir)


def prepare_teacher(config: TrainConfig, train_records: Sequence[Record], ela_cache: ElaCache, loaded: dict, echo=print):
    """The :class:`~pmsp_utils.distill.TeacherMaps` of ``config.distill_from`` with every map of the dataset's own
    training images computed (generated forgeries keep their exact masks), or None without a teacher."""
    if not config.distill_from or config.distill_weight == 0:
        return None
    from .distill import TeacherMaps

    inputs = InputCache(ela_cache, config.input_size, config.policy)
    teacher = TeacherMaps(config.distill_from, inputs)
    own = [record for record in train_records if record.dataset != "forged"]
    teacher.prepare(own, lambda index: loaded.get(own[index].image_path) or load_example(own[index], ela_cache), echo=echo)
    echo(f"distillation: targets of {len(own)} training images mix {config.distill_from}'s maps at weight {config.distill_weight}")
    return teacher


#: Settings a resumed run may change: how long it runs and how it loads data, not what it learns.
RESUMABLE_CHANGES = {"epochs", "patience", "workers", "devices", "notes", "model_settings"}  # model_settings: a copy of other fields in older config.json files
#: Of those, the ones that decide which epochs exist: a change is written into config.json and listed in its notes.
RECORDED_CHANGES = ("epochs", "patience")


def record_resumed_changes(run_dir: Path, saved: dict, current: dict, epochs_done: int, echo: Callable[[str], None] = print) -> None:
    """A resumed run that runs longer (``epochs``) or waits longer (``patience``) says so in its ``config.json``
    (``saved``, as read): the new values replace the old, and ``notes["resumed"]`` keeps each change with the epoch it
    took effect after."""
    before = saved_settings(saved)
    changes = [f"{name} {before[name]} -> {current[name]}" for name in RECORDED_CHANGES if before[name] != current[name]]
    if not changes:
        return
    notes = dict(saved.get("notes") or {})
    notes["resumed"] = [*notes.get("resumed", []), f"after epoch {epochs_done}: " + ", ".join(changes)]
    updated = {**saved, **{name: current[name] for name in RECORDED_CHANGES}, "notes": notes}
    write_text_atomic(run_dir / "config.json", json.dumps(updated, indent=2))
    echo(f"resumed with {', '.join(changes)} (recorded in config.json)")


_PATH_SETTINGS = ("root", "init_from", "weights")


def _normalised(name: str, value):
    if isinstance(value, (list, tuple)):
        return [_normalised(name, item) for item in value]
    if name in _PATH_SETTINGS and isinstance(value, str) and (os.sep in value or Path(value).exists()):
        return str(Path(value).expanduser().resolve())
    return value


def setting_differences(saved: dict, current: dict) -> list[tuple[str, object, object]]:
    """(name, saved value, current value) of each setting that differs, after normalising paths and sequences.

    Settings the run's config.json lacks count as :func:`saved_settings` fills them in.
    """
    saved = saved_settings(saved)
    return [(name, saved[name], current[name]) for name in sorted(current)
            if name not in RESUMABLE_CHANGES and _normalised(name, saved.get(name)) != _normalised(name, current[name])]


def append_history(run_dir: Path, row: dict) -> None:
    """Add an epoch's row to ``history.csv``, rewriting it atomically with every column any row has.

    (Keras' CSVLogger keeps the first header when appending, so a resumed run
    that logs a new value would shift the columns.)
    """
    rows = [old for old in read_history(run_dir) if old["epoch"] != row["epoch"]] + [row]
    columns = ["epoch"] + sorted({key for item in rows for key in item} - {"epoch"})
    write_csv(run_dir / "history.csv", [{**item, "epoch": int(item["epoch"])} for item in rows], columns)



def training_records(config: TrainConfig, *, include_authentic: bool = False, echo=print):
    """(train, validation, test, protocol) for ``config.data``, split as ``config.split`` says: the paper's 90/5/5
    per manipulation type by name hash, or grouped by source photo (:func:`~pmsp_utils.data.grouped_split`).

    Real data comes from ``config.root`` (or ``PMSP_DATA_DIR/<data>``); the
    synthetic set is written once to the cache folder and reused. Authentic
    images are left out unless ``include_authentic`` (as in the paper, which
    trains on tampered images).
    """
    from .data.sources import load_source

    dataset = load_source(config.data, config.root, synthetic_count=config.synthetic_count, seed=config.seed,
                          size=config.input_size, copy_move_share=config.synthetic_copy_move)
    for line in getattr(dataset, "loading_report", lambda: [])():
        echo(line)
    records = [record for record in dataset if include_authentic or record.is_tampered]
    if not records:
        raise ValueError(f"{config.data}: no usable images found.")
    split = split_by(config.split, records)
    train_records = list(split.train)
    if config.max_train_images:  # a name-hash sample (the parts are sorted by name, so a prefix would be one kind only)
        from .data.splits import name_hash

        train_records = sorted(sorted(train_records, key=lambda r: (name_hash(r.name, "subset"), r.name))[: config.max_train_images],
                               key=lambda r: r.name)
    echo(f"{config.data}: {len(train_records)} training, {len(split.validation)} validation, {len(split.test)} test images ({split.protocol})")
    protocol = split.protocol
    if config.forgeries:
        forged = forged_sets(config, dataset.root, split, {"train": config.forgeries})["train"]
        train_records += forged.records
        protocol += (f"; plus {len(forged.records)} forgeries made on {forged.name.split(', ', 1)[1].rstrip(')')} of the training "
                     f"part's photos (data.forgeries, seed {config.seed}; the photos behind validation and test forgeries excluded)")
        echo(f"added {len(forged.records)} generated forgeries to the training part ({forged.name})")
    return train_records, list(split.validation), list(split.test), protocol


def forged_sets(config: TrainConfig, root, split, counts: dict[str, int]) -> dict:
    """{part: Dataset} of forgeries made on ``config.forgery_photos`` (default ``root/authentic``), each part from its
    own photos, with the photos behind ``split``'s validation and test forgeries kept in those parts."""
    from .data.forgeries import forged_parts, list_photos, reserved_ids

    folder = Path(config.forgery_photos) if config.forgery_photos else Path(root or ".") / "authentic"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no folder of authentic photos to make forgeries from; pass --forgery-photos FOLDER.")
    return forged_parts(list_photos(folder), counts, seed=config.seed, reserved=reserved_ids(split))


def accelerator() -> str | None:
    """The GPU the current Keras backend will use, or None on a CPU-only machine."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            gpus = [device for device in jax.devices() if device.platform == "gpu"]
            return str(gpus[0]) if gpus else None
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return gpus[0].name if gpus else None
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # no driver, no runtime: treat as no GPU
        return None
    return None
