"""What a training run's folder holds, read without Keras: its config, the model settings it implies, its history.

Explained in 04_training. A run folder (``pmsp train --run-dir``) holds ``config.json``,
``state.json``, ``history.csv``, ``splits/`` and the weights; the shipped models
(:mod:`pmsp_utils.pretrained`) and any model loader (:mod:`pmsp_utils.models`)
read runs through these functions.
"""

from __future__ import annotations

import csv
import json
from dataclasses import fields
from pathlib import Path

from .safe_write import write_csv
from .model_settings import DEFAULT_ELA_GAIN, DEFAULT_ELA_QUALITY, DEFAULT_OUTPUT_STRIDE, ModelSettings

#: The one table of defaults for runs and cards saved before a setting existed: what they lack was this (the suite's
#: only behaviour then). Model settings read it (:func:`settings_of_run`) and so do training configs
#: (:func:`pmsp_utils.train_config.saved_settings`), for the fields they have.
LEGACY_SETTINGS = {"output_stride": DEFAULT_OUTPUT_STRIDE, "decoder": "none", "ela_quality": DEFAULT_ELA_QUALITY, "ela_scaling": "raw",
                   "policy": "resize", "ela_gain": DEFAULT_ELA_GAIN}


def read_json(path: str | Path) -> dict:
    """A JSON file of a run directory; a clear error naming it when it is missing, empty or damaged."""
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; this run directory is incomplete (start a new --run-dir).") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); the file is damaged (start a new --run-dir, or restore it).") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file; the file is damaged (start a new --run-dir, or restore it).") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: holds a JSON {type(value).__name__}, not an object of named fields; the file is damaged "
                         "(start a new --run-dir, or restore it).")
    return value


def settings_of_run(run_dir: str | Path) -> ModelSettings:
    """The settings of a training run, from its ``config.json``: its ``"model"`` object (runs since 2026-12-03), or
    the fields named as in :class:`ModelSettings` beside the run's (runs before), where what a run from before a setting
    existed lacks takes the only behaviour the suite had then."""
    path = Path(run_dir) / "config.json"
    config = read_json(path)
    if "model" in config:
        return ModelSettings.from_dict(config["model"], source=f"{path} (its \"model\")", required=ModelSettings.ARCHITECTURE)
    known = {field.name for field in fields(ModelSettings)}
    values = {**LEGACY_SETTINGS, **{key: value for key, value in config.items() if key in known}}
    return ModelSettings.from_dict(values, source=str(path), required=("input_size",))


def read_history(run_dir: str | Path) -> list[dict]:
    """The rows of a run's ``history.csv`` (or of a history CSV file) as dictionaries of floats.

    A column that a row lacks (a value logged only from some epoch on) is left out of that row.
    """
    path = Path(run_dir)
    path = path if path.suffix == ".csv" else path / "history.csv"
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as stream:
        for number, row in enumerate(csv.DictReader(stream), start=2):  # line 1 is the header
            values = {}
            for key, value in row.items():
                if value in ("", None):
                    continue
                try:
                    values[key] = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"{path}: line {number}, column {key!r}: {value!r} is not a number. history.csv is pmsp's "
                                     "record of the run's epochs, one number per cell: keep notes in another file, and restore "
                                     "this one (remove the line) before resuming.") from None
            rows.append(values)
    return rows


def append_history(run_dir: Path, row: dict) -> None:
    """Add an epoch's row to ``history.csv``, rewriting it atomically with every column any row has.

    (Keras' CSVLogger keeps the first header when appending, so a resumed run
    that logs a new value would shift the columns.)
    """
    rows = [old for old in read_history(run_dir) if old["epoch"] != row["epoch"]] + [row]
    columns = ["epoch"] + sorted({key for item in rows for key in item} - {"epoch"})
    write_csv(run_dir / "history.csv", [{**item, "epoch": int(item["epoch"])} for item in rows], columns)
