"""Training, the paper's section 4.2: the recipe, the input pipeline, checkpoints and resume.

Defined in 04_training. The paper's recipe is the default: binary
cross-entropy, Adam at 1e-4, batch size 4, up to 50 epochs, early stopping on
the validation loss with the best weights restored.

Input pipeline (a ``keras.utils.PyDataset``, so it works on every backend):
ELA is computed once per image at full resolution through the on-disk ELA
cache; then RGB and ELA are resized bilinearly to the model's input and masks
by nearest neighbour (the resize is the one resampling after ELA, the same as
at inference). Optional augmentation flips horizontally and vertically (no
resampling). With ``cache_in_memory`` the resized arrays are kept after the
first epoch.

Nothing is lost to an interruption: every epoch writes ``checkpoint.keras``
(model and optimizer) and ``state.json`` atomically (write, then rename);
``resume`` continues from them with the epoch count, the early-stopping state
and the same data order. Each run directory holds the config, the split lists,
the seed, the backend and package versions, and ``history.csv``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .data.records import Record
from .data.sources import DATA_SOURCES
from .ela import ElaCache, ElaSettings
from .metrics import PixelMetrics

LOSSES = ("bce", "bce+dice", "focal")
SCHEDULES = ("constant", "cosine", "plateau")
PLATEAU_PATIENCE = 2  # epochs without a better validation loss before the learning rate drops
PLATEAU_FACTOR = 0.3


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
    mixed_precision: bool = False
    augment: bool = True
    seed: int = 0
    weights: str | None = "imagenet"
    init_from: str | None = None  # a whole model's .weights.h5 (e.g. another run's best) to start from
    attention: str = "features"
    fusion: str = "add"
    streams: str = "both"
    synthetic_count: int = 400
    ela_quality: int = 90
    workers: int = 2
    cache_in_memory: bool = True
    max_train_images: int | None = None
    notes: dict = field(default_factory=dict)

    def check(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        if self.data not in DATA_SOURCES:
            raise ValueError(f"data must be one of {DATA_SOURCES}, got {self.data!r}.")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}.")
        for name in ("batch_size", "epochs", "patience", "workers", "synthetic_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if not self.positive_weight > 0:
            raise ValueError(f"positive_weight must be positive, got {self.positive_weight}.")


# --- the input pipeline ---------------------------------------------------------------


def prepare_example(record: Record, size: int, ela_cache: ElaCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb, ela, mask) of one record at ``size`` x ``size``: uint8, uint8, uint8 (0/1)."""
    ela_map, image = ela_cache.get_with_image(record.image_path)  # one decode serves both
    mask = record.load_mask(image.shape[:2])
    if ela_map.shape[:2] != image.shape[:2] or mask.shape != image.shape[:2]:
        raise ValueError(f"{record.name}: image {image.shape[:2]}, ELA {ela_map.shape[:2]} and mask {mask.shape} differ.")
    rgb = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    ela_small = np.asarray(Image.fromarray(np.ascontiguousarray(ela_map)).resize((size, size), Image.Resampling.BILINEAR))
    mask_small = np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST))
    return rgb, ela_small, mask_small


def make_sequence(records: Sequence[Record], config: TrainConfig, *, shuffle: bool, augment: bool, ela_cache: ElaCache, batch_size: int | None = None):
    """A ``keras.utils.PyDataset`` of ({"rgb", "ela"}, mask) batches over ``records``."""
    import keras

    class ForgerySequence(keras.utils.PyDataset):
        """Batches of resized RGB, ELA and masks; order and flips depend on (seed, epoch) only.

        Keras calls ``on_epoch_end`` before its worker threads have fetched an
        epoch's last batches, so the epoch is not tracked there: each batch
        position is requested once per epoch, so the n-th request for a
        position belongs to epoch ``start + n``, whatever the threads' timing.
        Pass ``shuffle=False`` to ``fit``: this class shuffles, from its seed.
        """

        def __init__(self) -> None:
            super().__init__(workers=config.workers, use_multiprocessing=False)
            self.records = list(records)
            self.batch = batch_size or config.batch_size
            self.start_epoch = 0
            self.requests: dict[int, int] = {}
            self.lock = threading.Lock()
            self.memory: dict[int, tuple] = {}
            self.orders: dict[int, np.ndarray] = {}

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
                self.start_epoch, self.requests = epoch, {}

        def on_epoch_end(self) -> None:
            pass  # epochs are counted per batch position (see the class docstring)

        def __len__(self) -> int:
            return math.ceil(len(self.records) / self.batch)

        def example(self, index: int) -> tuple:
            if index in self.memory:
                return self.memory[index]
            example = prepare_example(self.records[index], config.input_size, ela_cache)
            if config.cache_in_memory:
                self.memory[index] = example
            return example

        def __getitem__(self, position: int):
            with self.lock:
                epoch = self.start_epoch + self.requests.get(position, 0)
                self.requests[position] = self.requests.get(position, 0) + 1
                chosen = self.order(epoch)[position * self.batch : (position + 1) * self.batch]
            rng = np.random.default_rng([config.seed, epoch, position])
            rgbs, elas, masks = [], [], []
            for index in chosen:
                rgb, ela_map, mask = self.example(int(index))
                if augment:
                    if rng.random() < 0.5:
                        rgb, ela_map, mask = rgb[:, ::-1], ela_map[:, ::-1], mask[:, ::-1]
                    if rng.random() < 0.5:
                        rgb, ela_map, mask = rgb[::-1], ela_map[::-1], mask[::-1]
                rgbs.append(rgb)
                elas.append(ela_map)
                masks.append(mask)
            inputs = {"rgb": np.stack(rgbs).astype(np.float32), "ela": np.stack(elas).astype(np.float32)}
            if config.streams != "both":
                inputs = {config.streams: inputs[config.streams]}
            return inputs, np.stack(masks)[..., None].astype(np.float32)

    return ForgerySequence()


# --- losses ---------------------------------------------------------------------------


def make_loss(name: str = "bce", positive_weight: float = 1.0):
    """The training loss: BCE (optionally weighting tampered pixels), BCE + soft Dice, or focal."""
    import keras

    from .model.losses import BinaryFocal, WeightedBinaryCrossentropy, WeightedBceDice

    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}.")
    if name == "bce":
        return keras.losses.BinaryCrossentropy() if positive_weight == 1.0 else WeightedBinaryCrossentropy(positive_weight)
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
        for probability, mask in zip(probabilities[..., 0], masks[..., 0]):
            metrics.update(np.clip(probability, 0.0, 1.0), mask.astype(np.uint8))
    result = metrics.result()
    if count:
        result["loss"] = loss_total / count
    return result


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


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
        stored["mask"] = shrink((masks[:count, ..., 0] * 255).astype(np.uint8))
    stored[f"epoch_{epoch:03d}"] = shrink((np.clip(probability, 0, 1) * 255).astype(np.uint8))
    temporary = run_dir / "snapshots.tmp.npz"
    np.savez_compressed(temporary, **stored)
    os.replace(temporary, path)


def make_epoch_callback(run_dir: Path, validation, config: TrainConfig, state: dict, echo):
    """The callback that, each epoch, scores the validation split and writes checkpoints atomically."""
    import keras

    class EpochEnd(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            scores = evaluate_pixels(self.model, validation)  # the one validation pass of the epoch
            logs["val_loss"] = scores["loss"]
            logs["val_f1"] = scores["per_image_f1@0.5"]
            logs["val_auc"] = scores["pooled_auc"]
            logs["seconds"] = time.perf_counter() - self.started
            improved = logs["val_loss"] < state["best_val_loss"]
            if improved:
                state.update(best_val_loss=float(logs["val_loss"]), best_epoch=epoch + 1, wait=0)
                self.model.save_weights(run_dir / "best.weights.tmp.weights.h5")
                os.replace(run_dir / "best.weights.tmp.weights.h5", run_dir / "best.weights.h5")
            else:
                state["wait"] += 1
                if config.schedule == "plateau" and state["wait"] % PLATEAU_PATIENCE == 0:
                    rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)) * PLATEAU_FACTOR
                    self.model.optimizer.learning_rate.assign(rate)
                    echo(f"learning rate lowered to {rate:.2e} after {state['wait']} epochs without improvement")
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            state["epochs_done"] = epoch + 1
            state["seed_generators"] = seed_generator_states(self.model)
            append_history(run_dir, {"epoch": epoch, **{key: float(value) for key, value in logs.items()}})
            save_snapshot(run_dir, self.model, validation, epoch + 1)
            self.model.save(run_dir / "checkpoint.tmp.keras")
            os.replace(run_dir / "checkpoint.tmp.keras", run_dir / "checkpoint.keras")
            _atomic_write_text(run_dir / "state.json", json.dumps(state, indent=2))
            echo(
                f"epoch {epoch + 1}/{config.epochs}: loss {logs['loss']:.4f}, val_loss {logs['val_loss']:.4f}, "
                f"val per-image F1@0.5 {logs['val_f1']:.3f}, val pooled AUC {logs['val_auc']:.3f}"
                + (" (best)" if improved else f" (no improvement for {state['wait']})")
            )
            if state["wait"] >= config.patience:
                echo(f"early stopping: no better validation loss for {config.patience} epochs")
                self.model.stop_training = True

    return EpochEnd()


def build_model(config: TrainConfig, verbose: bool = True):
    """The network and its compiled recipe (loss, Adam, schedule, mixed precision)."""
    import keras

    from .model import build_pmsp

    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(config.seed)
    model = build_pmsp(config.input_size, attention=config.attention, fusion=config.fusion, streams=config.streams,
                       weights=None if config.init_from else config.weights, verbose=verbose)
    if config.init_from:
        if not Path(config.init_from).is_file():
            raise FileNotFoundError(f"--init-from {config.init_from}: no such weights file (e.g. RUN_DIR/best.weights.h5).")
        model.load_weights(config.init_from)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=make_loss(config.loss, config.positive_weight))
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
    import keras

    config.check()
    if not train_records or not validation_records:
        raise ValueError("training needs at least one training and one validation image.")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_file = run_dir / "state.json"
    if resume:
        if not state_file.exists() or not (run_dir / "checkpoint.keras").exists():
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from (state.json and checkpoint.keras are written after each epoch).")
        # Settings added to TrainConfig after the run was started count at their defaults.
        saved = {**asdict(TrainConfig()), **json.loads((run_dir / "config.json").read_text())}
        if {k: v for k, v in saved.items() if k not in {"epochs", "workers", "notes"}} != {
                k: v for k, v in asdict(config).items() if k not in {"epochs", "workers", "notes"}}:
            raise ValueError(f"{run_dir}: the settings differ from the run being resumed; resume with the same settings (see config.json).")
        state = json.loads(state_file.read_text())
        from .model import load_pmsp
        from .model import losses  # noqa: F401  (registers the custom losses for deserialisation)

        model = load_pmsp(run_dir / "checkpoint.keras")
        restore_seed_generators(model, state.get("seed_generators", {}))
        echo(f"resuming {run_dir} after epoch {state['epochs_done']}")
    else:
        if state_file.exists():
            raise FileExistsError(f"{run_dir} already holds a run; pass resume=True (--resume) to continue it, or choose another folder.")
        state = {"epochs_done": 0, "best_val_loss": float("inf"), "best_epoch": 0, "wait": 0}
        (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
        (run_dir / "environment.json").write_text(json.dumps(environment_facts(), indent=2))
        splits = run_dir / "splits"
        splits.mkdir(exist_ok=True)
        for part, records in (("train", train_records), ("validation", validation_records)):
            (splits / f"{part}.txt").write_text("".join(f"{r.dataset}/{r.name}\n" for r in records))
        if split_protocol:
            (splits / "protocol.txt").write_text(split_protocol + "\n")
        model = build_model(config, verbose=bool(verbose))
    ela_cache = ElaCache(settings=ElaSettings(quality=config.ela_quality))
    training = make_sequence(train_records, config, shuffle=True, augment=config.augment, ela_cache=ela_cache)
    validation = make_sequence(validation_records, config, shuffle=False, augment=False, ela_cache=ela_cache)
    training.set_epoch(state["epochs_done"])
    callbacks = [make_epoch_callback(run_dir, validation, config, state, echo)]
    if config.schedule == "cosine":
        total = config.epochs
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch: config.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / total))))
    if verbose is None:
        verbose = 2 if os.environ.get("CI") else 1
    if state["wait"] < config.patience and state["epochs_done"] < config.epochs:
        # No validation_data: the epoch callback computes the validation loss with F1 and AUC in one pass.
        model.fit(training, epochs=config.epochs, initial_epoch=state["epochs_done"],
                  callbacks=callbacks, verbose=verbose, shuffle=False)  # the sequence shuffles, from its seed
    if (run_dir / "best.weights.h5").exists():
        model.load_weights(run_dir / "best.weights.h5")
    model.save(run_dir / "model.tmp.keras")
    os.replace(run_dir / "model.tmp.keras", run_dir / "model.keras")
    return model, read_history(run_dir)


def read_history(run_dir: str | Path) -> list[dict]:
    """The rows of a run's ``history.csv`` (or of a history CSV file) as dictionaries of floats.

    A column that a row lacks (a value logged only from some epoch on) is left out of that row.
    """
    import csv

    path = Path(run_dir)
    path = path if path.suffix == ".csv" else path / "history.csv"
    if not path.exists():
        return []
    with open(path) as stream:
        return [{key: float(value) for key, value in row.items() if value not in ("", None)} for row in csv.DictReader(stream)]


def append_history(run_dir: Path, row: dict) -> None:
    """Add an epoch's row to ``history.csv``, rewriting it atomically with every column any row has.

    (Keras' CSVLogger keeps the first header when appending, so a resumed run
    that logs a new value would shift the columns.)
    """
    import csv
    import io

    rows = [old for old in read_history(run_dir) if old["epoch"] != row["epoch"]] + [row]
    columns = ["epoch"] + sorted({key for item in rows for key in item} - {"epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows({**item, "epoch": int(item["epoch"])} for item in rows)
    _atomic_write_text(run_dir / "history.csv", buffer.getvalue())



def training_records(config: TrainConfig, *, include_authentic: bool = False, echo=print):
    """(train, validation, test, protocol) for ``config.data``: the paper's 90/5/5 split per manipulation type.

    Real data comes from ``config.root`` (or ``PMSP_DATA_DIR/<data>``); the
    synthetic set is written once to the cache folder and reused. Authentic
    images are left out unless ``include_authentic`` (as in the paper, which
    trains on tampered images).
    """
    from .data import paper_split
    from .data.sources import load_source

    dataset = load_source(config.data, config.root, synthetic_count=config.synthetic_count, seed=config.seed,
                          size=config.input_size)
    records = [record for record in dataset if include_authentic or record.is_tampered]
    if not records:
        raise ValueError(f"{config.data}: no usable images found.")
    split = paper_split(records)
    train_records = list(split.train)[: config.max_train_images] if config.max_train_images else list(split.train)
    echo(f"{config.data}: {len(train_records)} training, {len(split.validation)} validation, {len(split.test)} test images ({split.protocol})")
    return train_records, list(split.validation), list(split.test), split.protocol


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
