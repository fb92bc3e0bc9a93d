"""Training, the paper's section 4.2: the recipe, the loop, checkpoints and resume.

Defined in 04_training. What the paper states is the default: binary
cross-entropy, Adam at 1e-4, up to 50 epochs, early stopping. The rest is this
project's reading: batch size 4 (the paper's "every epoch size is 4"), and,
since the paper names no measure, early stopping on the validation loss with
the best weights restored. One default is not the
paper's: the network's output stride is 16 (its last MobileNetV1 stage
dilated, as PSPNet runs its pyramid), which gave the best validation F1 per
CPU-hour of the output variants (``--output-stride 32`` is the paper's).

The recipe as data (:class:`~pmsp_utils.train_config.TrainConfig`, its checks, the named recipes) is
:mod:`pmsp_utils.train_config`; the training feed (the input cache and the batch sequence) is :mod:`pmsp_utils.feed`;
the run folder's files (history, JSON, safe writes) are :mod:`pmsp_utils.run_folder` and :mod:`pmsp_utils.safe_write`. This
module keeps the model, the loss, the epoch callback, checkpoints and the loop.

Nothing is lost to an interruption: every epoch writes ``checkpoint.keras``
(model and optimizer) and ``state.json`` atomically (write, then rename);
``resume`` continues from them with the epoch count, the early-stopping state
and the same data order. Each run directory holds the config, the split lists,
the seed, the backend and package versions, and ``history.csv``.
"""

from __future__ import annotations

import json
import math
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .model_settings import ModelSettings
from .data.records import Record
from .ela import ElaCache, ElaSettings
from .safe_write import save_atomic, save_npz_atomic, write_text_atomic
from .metrics import PixelMetrics
from .models import init_weights_from, save_model
from .pipeline import TARGET_IGNORE, valid_region
from .data.verify import sha256
from .run_folder import append_history, read_history, read_json
from .feed import InputCache, load_example, make_sequence, placed_entry, screen_records  # noqa: F401  (callers import them from here too)
from .train_config import (LOSSES, MODEL_FIELDS, MONITORS, PLATEAU_FACTOR, PLATEAU_PATIENCE, RECORDED_CHANGES,  # noqa: F401
                           RESUMABLE_CHANGES, SCHEDULES, TRAINING_NETWORK, TrainConfig, authentic_negatives, forged_sets,
                           claim_run_dir, record_resumed_changes, saved_settings, setting_differences, training_records)

# --- losses ---------------------------------------------------------------------------


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
            rows, columns = valid_region(target, ignore=TARGET_IGNORE)  # padding is not scored
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


def _load_checkpoint(run_dir: Path):
    """(model, state) from ``checkpoint.keras``; a damaged file gets an error naming it and what to do."""
    import zipfile

    from .models import _read_keras

    path = run_dir / "checkpoint.keras"
    try:
        with zipfile.ZipFile(path) as archive:
            state = json.loads(archive.read(STATE_MEMBER)) if STATE_MEMBER in archive.namelist() else None
        model = _read_keras(path)
    except Exception as error:  # zipfile, h5py and Keras raise many types for a damaged archive
        raise ValueError(f"{path}: the checkpoint is damaged and cannot be resumed ({type(error).__name__}: {error}); "
                         "restore it from a backup, or start again in a new --run-dir (--init-from RUN_DIR/best.weights.h5 "
                         "keeps the best weights so far).") from None
    if state is None:  # runs from before the state went into the checkpoint
        state = read_json(run_dir / "state.json")
    return model, state


class TimeBudget:
    """``minutes`` of wall-clock time from ``started`` (``time.monotonic``): an epoch is begun only when the slowest
    epoch so far, plus its validation pass, still fits in what is left. The run then ends at an epoch boundary, with
    its checkpoint whole, and ``--resume`` continues it."""

    def __init__(self, minutes: float, started: float | None = None, clock=time.monotonic) -> None:
        self.seconds, self.clock = minutes * 60.0, clock
        self.started = clock() if started is None else started
        self.slowest = 0.0

    def next_epoch_would_overrun(self, epoch_seconds: float) -> bool:
        self.slowest = max(self.slowest, float(epoch_seconds))
        return self.clock() - self.started + self.slowest > self.seconds

    def describe(self) -> str:
        used = (self.clock() - self.started) / 60.0
        return f"{used:.1f} of {self.seconds / 60.0:g} minutes used, the slowest epoch took {self.slowest / 60.0:.1f}"


def make_epoch_callback(run_dir: Path, validation, config: TrainConfig, state: dict, echo, budget: TimeBudget | None = None):
    """The callback that, each epoch, scores the validation split and writes checkpoints atomically.

    Its jobs stay in one hand-written callback because resume must be exact after a kill -9 at any moment, and
    Keras' own callbacks keep their counters in memory only. Why each is not the Keras callback of the same name:

    * validation scoring: one pass gives loss, per-image F1 and pooled AUC (``fit``'s validation gives the loss only);
    * weight averaging (``--ema``): the optimizer's own EMA is used; ``SwapEMAWeights`` swaps for scoring but cannot
      keep the average as the best weights inside the same atomic checkpoint;
    * best weights (``ModelCheckpoint``): written with the run state in one rename, so the two never disagree;
    * learning-rate drop (``ReduceLROnPlateau``): its wait counter is not saved, so a resumed run would drop later;
    * history (``CSVLogger``): appending keeps the first header, and a value logged from a later epoch shifts columns;
    * snapshots: no Keras callback draws maps;
    * checkpoints: model, optimizer and run state travel in one ``.keras`` archive (``ModelCheckpoint`` saves the model);
    * early stopping (``EarlyStopping``): its best value and wait are not saved, so a resumed run would stop late.
    """
    import keras

    class EpochEnd(keras.callbacks.Callback):
        train_images = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.trained_seconds = time.perf_counter() - self.started  # training only, before the validation pass

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            with averaged_weights(self.model):  # with --ema, the average is what is scored and kept as the best
                self.score_and_keep(epoch, logs)
            state["epochs_done"] = epoch + 1
            state["seed_generators"] = seed_generator_states(self.model)
            save_checkpoint(self.model, run_dir, state, config.model)  # the raw weights, the average in the optimizer
            echo(
                f"epoch {epoch + 1}/{config.epochs}: loss {logs['loss']:.4f}, val_loss {logs['val_loss']:.4f}, "
                f"val per-image F1@0.5 {logs['val_f1']:.3f}, val pooled AUC {logs['val_auc']:.3f}, "
                f"{logs.get('images_per_second', 0.0):.2f} images/s, {logs['seconds']:.0f} s"
                + (" (best)" if state["wait"] == 0 else f" (no improvement for {state['wait']})")  # wait is 0 only after a better epoch
            )
            if state["wait"] >= config.patience:
                echo(f"early stopping: no better {MONITOR_LABELS[config.monitor]} for {config.patience} epochs")
                self.model.stop_training = True
            elif budget is not None and epoch + 1 < config.epochs and budget.next_epoch_would_overrun(logs["seconds"]):
                echo(f"time budget: stopping after epoch {epoch + 1} ({budget.describe()}); continue with --resume "
                     f"(and --budget-minutes for the next session's time)")
                state["budget_stops"] = state.get("budget_stops", 0) + 1
                write_text_atomic(run_dir / "state.json", json.dumps(state, indent=2))
                self.model.stop_training = True

        def score_and_keep(self, epoch, logs):
            scores = evaluate_pixels(self.model, validation)  # the one validation pass of the epoch
            logs["val_loss"] = scores["loss"]
            logs["val_f1"] = scores["per_image_f1@0.5"]
            logs["val_auc"] = scores["pooled_auc"]
            logs["seconds"] = time.perf_counter() - self.started
            logs["images_per_second"] = self.train_images / max(self.trained_seconds, 1e-9)
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
    model = build_pmsp(**config.model.architecture(), weights=None if config.init_from else config.weights, verbose=verbose)
    if config.init_from:
        report = init_weights_from(model, config.init_from)
        if verbose:
            print(report)
    optimizer = keras.optimizers.Adam(config.learning_rate, use_ema=config.ema > 0, ema_momentum=config.ema or 0.99)
    model.compile(optimizer=optimizer, loss=make_loss(config.loss, config.positive_weight))
    # Its slots now, not inside the first traced step: on TensorFlow a step that creates variables is traced twice
    # (about 5 s of a tiny run's 21 s on 2 cores; a resumed run's optimizer is already built by loading).
    optimizer.build(model.trainable_variables)
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

    budget = TimeBudget(config.budget_minutes) if config.budget_minutes else None  # counted from here: set-up included
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_file = run_dir / "state.json"
    if resume:
        if not (run_dir / "checkpoint.keras").exists():
            never = " The run never finished its first epoch: start it again with the same command, without --resume." if (
                run_dir / "config.json").exists() else ""
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from (checkpoint.keras is written after each epoch).{never}")
        saved = read_json(run_dir / "config.json")
        differences = setting_differences(saved, config.flat())
        if differences:
            raise ValueError(f"{run_dir}: the settings differ from the run being resumed: "
                             + "; ".join(f"{name} was {old!r}, now {new!r}" for name, old, new in differences)
                             + ". Resume with the run's settings (see its config.json), or start a new --run-dir.")
        read_history(run_dir)  # a history that cannot be read stops the run here, before an epoch changes the folder
        model, state = _load_checkpoint(run_dir)
        restore_seed_generators(model, state.get("seed_generators", {}))
        echo(f"resuming {run_dir} after epoch {state['epochs_done']}")
        record_resumed_changes(run_dir, saved, config.flat(), state["epochs_done"], echo)
    else:
        if state_file.exists():
            raise FileExistsError(f"{run_dir} already holds a run; continue it with --resume (resume=True from Python), or choose another folder.")
        claim_run_dir(run_dir, echo)
        state = {"epochs_done": 0, "best_val_loss": float("inf"), "best_val_f1": -1.0, "best_epoch": 0, "wait": 0}
        write_text_atomic(run_dir / "config.json", json.dumps(asdict(config), indent=2))  # the model settings derive from it
        from .data.splits import write_split_list

        splits = run_dir / "splits"
        splits.mkdir(exist_ok=True)
        for part, records in (("train", train_records), ("validation", validation_records)):
            write_split_list(splits / f"{part}.txt", records)  # names and content hashes
        if split_protocol:
            write_text_atomic(splits / "protocol.txt", split_protocol + "\n")
        # Last, with the hash of every file written so far: what a restart may remove, known rather than guessed.
        written = {path.relative_to(run_dir).as_posix(): sha256(path) for path in [run_dir / "config.json", *sorted(splits.iterdir())]}
        write_text_atomic(run_dir / "environment.json", json.dumps({**environment_facts(), "written": written}, indent=2))
        model = build_model(config, verbose=bool(verbose))
    ela_cache = ElaCache(settings=ElaSettings.of_model(config.model))
    train_records, validation_records, loaded = screen_records(train_records, validation_records, ela_cache, echo,
                                                               keep=config.cache_in_memory)
    teacher = prepare_teacher(config, train_records, ela_cache, loaded, echo)
    training = make_sequence(train_records, config, shuffle=True, augment=config.augment, ela_cache=ela_cache, preloaded=loaded,
                              input_cache=teacher.input_cache if teacher else None, teacher=teacher)
    validation = make_sequence(validation_records, config, shuffle=False, augment=False, ela_cache=ela_cache, preloaded=loaded)
    training.set_epoch(state["epochs_done"])
    epoch_end = make_epoch_callback(run_dir, validation, config, state, echo, budget)
    epoch_end.train_images = len(training.records)
    callbacks = [epoch_end]
    if config.schedule == "cosine":
        total = config.epochs
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch: config.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / total))))
    if verbose is None:
        from .progress import keras_verbosity

        verbose = keras_verbosity()  # a bar in terminals and notebooks; one line an epoch in logs, pipes and CI
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
    model.pmsp_settings = config.model  # what localize needs, for every caller of train()
    save_model(model, run_dir / "model.keras", model.pmsp_settings)  # the settings travel inside the file
    return model, read_history(run_dir)


def prepare_teacher(config: TrainConfig, train_records: Sequence[Record], ela_cache: ElaCache, loaded: dict, echo=print):
    """The :class:`~pmsp_utils.distill.TeacherMaps` of ``config.distill_from`` with every map of the dataset's own
    training images computed (generated forgeries keep their exact masks), or None without a teacher."""
    if not config.distill_from or config.distill_weight == 0:
        return None
    from .distill import TeacherMaps

    inputs = InputCache(ela_cache, config.model.input_size, config.model.policy)
    teacher = TeacherMaps(config.distill_from, inputs)
    own = [record for record in train_records if record.dataset != "forged"]
    teacher.prepare(own, lambda index: loaded.get(own[index].image_path) or load_example(own[index], ela_cache), echo=echo)
    echo(f"distillation: targets of {len(own)} training images mix {config.distill_from}'s maps at weight {config.distill_weight}")
    return teacher


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
