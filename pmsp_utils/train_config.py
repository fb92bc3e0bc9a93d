"""The training recipe as data, the paper's section 4.2: :class:`TrainConfig`, its checks, the named recipes
(``recipes.toml``) it starts from, how a saved run's settings are read back and compared, and the records a recipe
trains on (:func:`training_records`: the split, the generated forgeries, the untouched negatives), and which run
folder a config may claim (:func:`claim_run_dir`: only an empty one, or a stopped run pmsp wrote, by the hashes it
recorded) and what a resumed one records (:func:`record_resumed_changes`). Defined in 04_training.

Kept apart from the loop (:mod:`pmsp_utils.train`) so that the training feed (:mod:`pmsp_utils.feed`), the command
line and the ablation runner read the recipe without the loop, and no module imports back into training.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .model_settings import ModelSettings
from .data.records import Record
from .data.splits import SPLIT_PROTOCOLS, split_by
from .data.sources import DATA_SOURCES
from .data.verify import sha256
from .run_folder import read_json
from .safe_write import TEMPORARY_PREFIX, write_text_atomic

LOSSES = ("bce", "bce+dice", "focal")
SCHEDULES = ("constant", "cosine", "plateau")
MODEL_FIELDS = tuple(item.name for item in fields(ModelSettings))  # the settings a TrainConfig keeps in .model
MONITORS = ("val_loss", "val_f1")  # what picks the best epoch and stops early
PLATEAU_PATIENCE = 2  # epochs without a better --monitor value (config.monitor) before the learning rate drops
PLATEAU_FACTOR = 0.3


def saved_settings(values: dict) -> dict:
    """A saved ``config.json`` as flat settings (:meth:`TrainConfig.flat`), with every setting it lacks filled in: added
    settings at their defaults, settings whose default changed since at the value they had then
    (:data:`pmsp_utils.run_folder.LEGACY_SETTINGS`, the one such table). Reads both layouts: the model's settings in their own
    ``"model"`` object (since 2026-12-03), or beside the run's (before)."""
    from .run_folder import LEGACY_SETTINGS

    values = dict(values)
    model = values.pop("model", None)
    values.pop("model_settings", None)  # a copy of the flat fields in some older files
    if isinstance(model, dict):
        values = {**model, **values}
    else:
        values = {**LEGACY_SETTINGS, **values}  # every legacy default is a model setting
    return {**TrainConfig.defaults(), **values}


#: The network training builds unless told otherwise: the paper's (ModelSettings' defaults, which are build_pmsp's),
#: with one departure, output stride 16 (the last MobileNetV1 stage dilated, as PSPNet runs its pyramid), which gave the
#: best validation F1 per CPU-hour of the output variants (benchmarks/RESULTS.md; ``--output-stride 32`` is the paper's).
TRAINING_NETWORK = ModelSettings(output_stride=16)


@dataclass(init=False)
class TrainConfig:
    """Everything a run depends on; saved as config.json in the run directory.

    ``model`` holds the trained model's own settings (:class:`~pmsp_utils.model_settings.ModelSettings`: architecture,
    ELA, input policy), the ones saved with the model; the other fields are the recipe. Both can be given by name:
    ``TrainConfig(input_size=192, output_stride=32, epochs=3)`` sets ``model.input_size``, ``model.output_stride``
    and ``epochs``, on top of ``model=`` when that is given too (default :data:`TRAINING_NETWORK`).
    """

    model: ModelSettings = field(default_factory=lambda: TRAINING_NETWORK)
    data: str = "synthetic"
    root: str | None = None
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
    recompress: float = 0.0  # probability of re-saving a training image as JPEG (quality from recompress_qualities) before ELA
    recompress_qualities: tuple = (70, 100)
    postprocess: dict = field(default_factory=dict)  # whole-image resize/JPEG/blur/noise before ELA, each with a probability (augment.PostProcessing)
    forgeries: int = 0  # forgeries made on real photos (data.forgeries) added to the training part
    forgery_photos: str | None = None  # their folder of authentic photos (default: the dataset's authentic/ folder)
    authentic: int = 0  # untouched photos of the training side (the dataset's own, camera JPEG history) added as negatives
    distill_from: str | None = None  # a teacher model whose maps are mixed into the targets of the dataset's own images
    distill_weight: float = 0.5  # target = (1 - w) * mask + w * teacher
    monitor: str = "val_loss"
    split: str = "paper"
    synthetic_count: int = 400
    synthetic_copy_move: float | None = None  # share of the synthetic forgeries that are copy-moves (None: the generator's 0.35/0.80)
    workers: int = 2
    devices: int = 1  # data-parallel training: each batch split across this many accelerators (use_devices)
    cache_in_memory: bool = True
    max_train_images: int | None = None
    budget_minutes: float = 0.0  # stop cleanly after the last epoch that fits this many minutes of the run (0: no budget); --resume goes on
    notes: dict = field(default_factory=dict)

    def __init__(self, *, model: ModelSettings | None = None, **settings) -> None:
        own = {item.name: item for item in fields(TrainConfig) if item.name != "model"}
        network = {name: settings.pop(name) for name in list(settings) if name in MODEL_FIELDS}
        unknown = sorted(set(settings) - set(own))
        if unknown:
            raise TypeError(f"TrainConfig has no setting {', '.join(map(repr, unknown))}; the settings are {', '.join(self.setting_names())}.")
        for name, item in own.items():
            setattr(self, name, settings[name] if name in settings else item.default_factory() if item.default_factory is not MISSING
                    else item.default)
        if model is not None and not isinstance(model, ModelSettings):
            raise TypeError(f"model must be a ModelSettings, got {type(model).__name__}.")
        self.model = replace(TRAINING_NETWORK if model is None else model, **network)  # checked by ModelSettings itself

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """Every setting by its flat name (the CLI's options, a recipe's keys): the model's, then the run's."""
        return (*MODEL_FIELDS, *(item.name for item in fields(cls) if item.name != "model"))

    @classmethod
    def defaults(cls) -> dict:
        """Every setting's default, by flat name."""
        return cls().flat()

    def flat(self) -> dict:
        """The settings by flat name (``input_size`` rather than ``model.input_size``): what a recipe, the CLI, a card and
        a study record, and what :func:`setting_differences` compares."""
        values = asdict(self)
        return {**values.pop("model"), **values}

    def changed(self, **settings) -> "TrainConfig":
        """A copy with ``settings`` (flat names, or ``model=``) changed."""
        return replace(self, **settings)  # through __init__, so flat names reach .model

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
        if self.budget_minutes < 0:
            raise ValueError(f"budget_minutes is a time in minutes (0: no budget), got {self.budget_minutes}.")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema is a momentum in [0, 1) (0: off; 0.99 averages about 100 steps), got {self.ema}.")
        for value, allowed, what in ((self.monitor, MONITORS, "monitor"), (self.split, SPLIT_PROTOCOLS, "split")):
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
        if self.authentic < 0:
            raise ValueError(f"authentic is a count of untouched training photos, got {self.authentic}.")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight is the teacher's share of the target in [0, 1], got {self.distill_weight}.")
        if self.batch_size % self.devices:
            raise ValueError(f"batch_size {self.batch_size} must divide evenly across {self.devices} devices (each takes an equal share).")

    #: Settings by kind, for :meth:`check`: a bool is never taken for a number, nor a string for a bool.
    WHOLE_NUMBERS = ("batch_size", "epochs", "patience", "seed", "forgeries", "authentic", "synthetic_count", "workers", "devices")
    NUMBERS = ("learning_rate", "positive_weight", "ema", "recompress", "distill_weight", "budget_minutes")
    SWITCHES = ("mixed_precision", "augment", "cache_in_memory")
    OPTIONAL_TEXT = ("root", "weights", "init_from", "forgery_photos", "distill_from")

    def _check_types(self) -> None:
        if not isinstance(self.model, ModelSettings):
            raise ValueError(f"model must be a ModelSettings, got {type(self.model).__name__}.")

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
        known = set(cls.setting_names())
        try:
            config = cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in saved_settings(values).items()
                            if key in known})
            config.check()
        except (TypeError, ValueError, AttributeError) as error:  # wrong types reach comparisons as TypeError
            raise ValueError(f"{source}: the run's saved settings do not work ({error}); restore the file or start a new "
                             "--run-dir.") from None
        return config


#: Settings a resumed run may change: how long it runs and how it loads data, not what it learns.
RESUMABLE_CHANGES = {"epochs", "patience", "workers", "devices", "notes", "budget_minutes"}
#: Of those, the ones that decide which epochs exist: a change is written into config.json and listed in its notes.
RECORDED_CHANGES = ("epochs", "patience")


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


# --- the records a recipe trains on ---------------------------------------------------------------------


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
                          size=config.model.input_size, copy_move_share=config.synthetic_copy_move)
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
    if config.authentic:
        negatives = authentic_negatives(dataset, split, config.authentic)
        train_records += negatives
        protocol += (f"; plus {len(negatives)} untouched photos of the training side as negatives (all-zero masks; the photos "
                     "behind validation and test kept out)")
        echo(f"added {len(negatives)} untouched training-side photos as negatives")
    return train_records, list(split.validation), list(split.test), protocol


def authentic_negatives(dataset, split, count: int) -> list[Record]:
    """Up to ``count`` of ``dataset``'s untouched photos that belong to the training side: dealt to parts as the
    forgeries' photos are (:func:`~pmsp_utils.data.forgeries.split_photos`, the photos behind the validation and test
    forgeries reserved there), the training part's taken in name-hash order."""
    from .data.forgeries import photo_id, reserved_ids, split_photos
    from .data.splits import name_hash

    untouched = {record.image_path: record for record in dataset if not record.is_tampered}
    if not untouched:
        raise ValueError(f"{dataset.root}: --authentic {count}, but the dataset has no untouched photos.")
    train_side = split_photos(list(untouched), reserved=reserved_ids(split))["train"]
    chosen = sorted(train_side, key=lambda path: (name_hash(photo_id(path), "negatives"), path.name))[:count]
    return [untouched[path] for path in sorted(chosen, key=lambda path: path.name)]


def forged_sets(config: TrainConfig, root, split, counts: dict[str, int]) -> dict:
    """{part: Dataset} of forgeries made on ``config.forgery_photos`` (default ``root/authentic``), each part from its
    own photos, with the photos behind ``split``'s validation and test forgeries kept in those parts."""
    from .data.forgeries import forged_parts, list_photos, reserved_ids

    folder = Path(config.forgery_photos) if config.forgery_photos else Path(root or ".") / "authentic"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no folder of authentic photos to make forgeries from; pass --forgery-photos FOLDER.")
    return forged_parts(list_photos(folder), counts, seed=config.seed, reserved=reserved_ids(split))


# --- the run folder a config claims --------------------------------------------------------------------------

#: What a run folder holds (:func:`train` writes nothing else there).
RUN_FILES = {"config.json", "environment.json", "splits", "history.csv", "snapshots.npz", "best.weights.h5", "checkpoint.keras",
             "state.json", "model.keras"}


#: What a run's ``splits/`` may hold (write_split_list's lists and the protocol line), for runs written before
#: environment.json recorded the hash of every file (its ``written``).
SPLIT_FILES = {"train.txt", "validation.txt", "test.txt", "protocol.txt"}


def _check_written_by_pmsp(run_dir: Path) -> None:
    """Refuse a stopped run's folder unless every file a restart would remove is one pmsp wrote: the hashes that
    ``environment.json`` recorded (``written``), or, for older runs, only the split lists' names in ``splits/``."""
    def refuse(path: Path, why: str) -> FileExistsError:
        return FileExistsError(f"--run-dir {run_dir}: {path.relative_to(run_dir)} {why}, so it is not pmsp's to remove; nothing "
                               "there is replaced. Move it away, or name a new or empty folder.")

    splits = [path for path in sorted((run_dir / "splits").rglob("*")) if not path.name.startswith(TEMPORARY_PREFIX)]
    try:
        written = read_json(run_dir / "environment.json").get("written")
    except (ValueError, OSError, AttributeError):
        written = None
    if not isinstance(written, dict):  # a run from before the record: the split lists' names only
        for path in splits:
            if path.is_dir() or path.name not in SPLIT_FILES:
                raise refuse(path, "is not one of the split lists pmsp writes")
        return
    for path in [run_dir / "config.json", *splits]:
        key = path.relative_to(run_dir).as_posix()
        if key not in written:
            raise refuse(path, "was not written by the stopped run")
        if path.is_dir() or sha256(path) != written[key]:
            raise refuse(path, "has changed since the stopped run wrote it")


def claim_run_dir(run_dir: Path, echo=print, *, remove: bool = True) -> None:
    """Make sure a new run may write into ``run_dir``: an empty folder, or a run that never finished its first epoch (its
    leftovers, temporary files included, are removed). A folder with anything else in it is refused: its config.json or
    history.csv would be replaced. ``remove`` False: only check (the command line, before the data is read)."""
    entries = list(run_dir.iterdir())
    if not entries:
        return
    # A run stopped before its first epoch ended holds exactly what train() writes before training: config.json,
    # environment.json and splits/ (and perhaps a temporary file); anything else would be replaced, so it is refused.
    started = {"config.json", "environment.json", "splits"}
    names = {entry.name for entry in entries if not entry.name.startswith(TEMPORARY_PREFIX)}
    if names - started:
        raise FileExistsError(f"--run-dir {run_dir}: holds files that are not a pmsp training run's ({', '.join(sorted(names - started)[:4])}); "
                              "nothing there is replaced. Name a new or empty folder.")
    if names != started:
        raise FileExistsError(f"--run-dir {run_dir}: holds {', '.join(sorted(names))} but not the {', '.join(sorted(started - names))} "
                              "a stopped pmsp run would hold; nothing there is replaced. Name a new or empty folder.")
    _check_written_by_pmsp(run_dir)
    try:
        saved = read_json(run_dir / "config.json")
        if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
            raise ValueError("not a run's config")
        TrainConfig.from_saved(saved, source=str(run_dir / "config.json"))
    except (ValueError, OSError):
        raise FileExistsError(f"--run-dir {run_dir}: its config.json is not a pmsp run's; nothing there is replaced. Name a new or "
                              "empty folder.") from None
    if not remove:
        return
    echo(f"{run_dir}: a run that never finished its first epoch (it was stopped); starting it again from the beginning")
    for entry in entries:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


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
