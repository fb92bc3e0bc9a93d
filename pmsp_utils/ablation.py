"""The paper's ablations as a resumable study: one table of variants x seeds. Explained in 06_ablations.

The paper makes three design claims (Coordinate Attention after F3-F5 beats
attention inside the blocks, Figure 7; ADD fusion beats CONCAT and halves the
parameters after it; the ELA stream complements the RGB stream), and issue 10
adds a fourth question (a finer output than stride 32). :func:`run_ablation`
trains a named grid of variants with one recipe, on the same data and split,
for several seeds, and writes one row per (variant, seed) to ``results.csv``:
validation per-image F1 at 0.5, pooled F1, pooled AUC, parameters,
multiply-adds, training time and, optionally, per-image F1 under JPEG
recompression and resizing. A finished cell is skipped on the next call, and a
cell interrupted mid-training resumes from its checkpoint, so the study
survives any stop. Importing this module does not import Keras.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .model_settings import ModelSettings
from .safe_write import save_npz_atomic, write_csv, write_text_atomic

#: Every variant the runner knows: the build_pmsp arguments that differ from the paper's network.
VARIANTS: dict[str, dict] = {
    "paper": {},
    "attention-none": {"attention": "none"},
    "attention-blocks": {"attention": "blocks"},
    "fusion-concat": {"fusion": "concat"},
    "streams-rgb": {"streams": "rgb"},
    "streams-ela": {"streams": "ela"},
    "stride16": {"output_stride": 16},
    "decoder-f3": {"decoder": "f3"},
}
#: The questions, each a list of variants compared at equal everything else.
GRIDS: dict[str, tuple[str, ...]] = {
    "attention": ("attention-none", "attention-blocks", "paper"),  # Figure 7
    "fusion": ("paper", "fusion-concat"),
    "streams": ("streams-rgb", "streams-ela", "paper"),
    "output": ("paper", "stride16", "decoder-f3"),
}
GRIDS["all"] = tuple(dict.fromkeys(name for grid in GRIDS.values() for name in grid))
RESULT_COLUMNS = ("variant", "seed", "per_image_f1@0.5", "pooled_f1@0.5", "pooled_auc", "parameters", "multiply_adds",
                  "training_seconds", "epochs", "best_epoch")
#: The study that ships with the package (``pmsp ablate`` at a CPU scale; see its study.json), read by :func:`load_study`.
SHIPPED_STUDY = Path(__file__).resolve().parent / "results" / "ablation"
#: Perturbations for the robustness columns (per-image F1 at 0.5): JPEG recompression and resizing.
ROBUSTNESS_LEVELS = {"jpeg": (90, 70, 50), "resize": (0.5,)}


def variant_names(names: str | Sequence[str]) -> list[str]:
    """The variants of a grid name ("attention", "fusion", "streams", "output", "all") or of a list of variant names."""
    if isinstance(names, str):
        if names in GRIDS:
            return list(GRIDS[names])
        names = [part.strip() for part in names.split(",") if part.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        raise ValueError(f"unknown ablation variant {unknown[0] if unknown else '(none given)'!r}; variants: {', '.join(VARIANTS)}; "
                         f"grids: {', '.join(GRIDS)}.")
    return list(dict.fromkeys(names))


def variant_settings(name: str, base: ModelSettings) -> ModelSettings:
    """The model settings of a variant: the base model's, with the variant's changes."""
    return replace(base, **VARIANTS[variant_names([name])[0]])


def variant_config(config, name: str, seed: int | None = None):
    """The training config of one cell of a study: the recipe (``config``, initialisation and averaging included) with
    the variant's architecture and the cell's seed."""
    return config.changed(model=variant_settings(name, config.model), **({} if seed is None else {"seed": seed}))


def read_results(path: str | Path) -> list[dict]:
    """The rows of a results table (numbers as floats, seed and counts as ints)."""
    path = Path(path)
    if not path.exists():
        return []
    return _read_table(path, integers=("seed", "parameters", "multiply_adds", "epochs", "best_epoch"), keep_empty=True)


def _read_table(path: Path, *, integers: tuple[str, ...], keep_empty: bool) -> list[dict]:
    """A study CSV's rows: ``variant`` as text, ``integers`` as ints, the rest floats; empty cells None (or left out)."""
    with path.open(newline="") as stream:
        return [{key: (value if key == "variant" else None if value in ("", None) else int(float(value)) if key in integers
                       else float(value)) for key, value in row.items() if keep_empty or value not in ("", None)}
                for row in csv.DictReader(stream)]


def _write_results(path: Path, rows: list[dict]) -> None:
    columns = list(RESULT_COLUMNS) + sorted({key for row in rows for key in row} - set(RESULT_COLUMNS))
    write_csv(path, rows, columns)


def run_ablation(variants: str | Sequence[str], seeds: Sequence[int], config, train_records, validation_records, out: str | Path, *,
                 score_records=None, score_part: str = "validation", split_protocol: str = "", robustness: int = 0,
                 snapshot_images: int = 3, echo: Callable[[str], None] = print, verbose: int = 0) -> list[dict]:
    """Train every (variant, seed) not yet in ``out/results.csv`` and add its row; returns all rows.

    ``config`` is the recipe (a :class:`pmsp_utils.train_config.TrainConfig`) shared by every
    cell; each variant changes only its architecture, each seed only ``config.seed``.
    The recipe's own architecture is the ``"paper"`` variant's: pass ``output_stride=32``
    for the paper's network (``TrainConfig``'s default is 16; ``pmsp ablate`` sets 32).
    ``validation_records`` pick each cell's epoch (``config.monitor``); the table
    scores ``score_records`` (default: the validation images themselves; pass the
    test part for scores that no choice has seen), named ``score_part`` in
    ``study.json``. ``robustness``: how many scored images to score again under
    JPEG recompression and resizing (0: none). A few predictions per cell on the
    scored images go to ``out/snapshots.npz`` (small uint8 maps), for Figure 7.
    """
    from .evaluate import evaluate, model_predictor
    from .network.counting import multiply_adds
    from .robustness import robustness_curves
    from .run_folder import read_history
    from .train import train

    names = variant_names(variants)
    score_records = list(validation_records if score_records is None else score_records)
    if not seeds:
        raise ValueError("run_ablation needs at least one seed.")
    if not [record for record in score_records if record.is_tampered]:
        raise ValueError(f"the {score_part} part holds no tampered image to score, so every result would be NaN; nothing was "
                         "trained. Use more data (a larger --synthetic-count, or a real dataset), or --score validation.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.csv"
    rows = read_results(results_path)
    done = {(row["variant"], row["seed"]) for row in rows}
    study = {"variants": names, "seeds": list(seeds), "recipe": {k: v for k, v in config.flat().items() if k != "notes"},
             "train_images": len(train_records), "validation_images": len(validation_records), "scored_part": score_part,
             "scored_images": len(score_records), "split": split_protocol,
             "metrics": "per-image F1 at 0.5 (mean over scored images of each image's F1), pooled F1 at 0.5 and pooled pixel AUC "
                        "(all scored pixels together), each image scored at its own size; val_f1_at_best: the validation "
                        "per-image F1 at the model's input size of the epoch that was kept"}
    write_text_atomic(out / "study.json", json.dumps(study, indent=2, default=str))
    for seed in seeds:  # every variant at one seed before the next seed: a stopped study still compares all variants
        for name in names:
            if (name, int(seed)) in done:
                echo(f"{name}, seed {seed}: done already, skipped")
                continue
            cell = variant_config(config, name, int(seed))
            run_dir = out / name / f"seed{seed}"
            resume = (run_dir / "checkpoint.keras").exists()
            echo(f"{name}, seed {seed}: {'resuming' if resume else 'training'} in {run_dir}")
            started = time.perf_counter()
            model, history = train(cell, train_records, validation_records, run_dir, resume=resume, verbose=verbose, echo=lambda m: None)
            logged = read_history(run_dir)  # every epoch, also those of an earlier, interrupted call
            result = evaluate(score_records, {"PMSP": model_predictor(model)}, dataset=score_part, show_progress=False)
            table = result.table1()[0]
            row = {"variant": name, "seed": int(seed), "per_image_f1@0.5": table["f1_per_image@0.5"], "pooled_f1@0.5": table["f1_pooled@0.5"],
                   "pooled_auc": table["auc_pooled"], "parameters": model.count_params(), "multiply_adds": multiply_adds(model),
                   "training_seconds": round(sum(entry.get("seconds", 0.0) for entry in logged) or time.perf_counter() - started, 1),
                   "epochs": len(history), "best_epoch": json.loads((run_dir / "state.json").read_text())["best_epoch"]}
            kept = [entry for entry in logged if int(entry["epoch"]) + 1 == row["best_epoch"]]
            row["val_f1_at_best"] = float(kept[0]["val_f1"]) if kept and "val_f1" in kept[0] else None
            if robustness:
                points = robustness_curves(score_records[:robustness], model_predictor(model), levels=ROBUSTNESS_LEVELS, show_progress=False)
                row.update({f"f1_{point.perturbation}_{point.level}": point.per_image_f1 for point in points if point.level != "none"})
            _save_snapshots(out, name, int(seed), model, score_records[:snapshot_images])
            rows.append(row)
            _write_results(results_path, rows)
            echo(f"{name}, seed {seed}: per-image F1 {row['per_image_f1@0.5']:.3f}, pooled AUC {row['pooled_auc']:.3f}")
    return rows


def _save_snapshots(out: Path, name: str, seed: int, model, records, size: int = 128) -> None:
    """Small uint8 probability maps of a cell on the first validation images (the images themselves are not stored)."""
    from PIL import Image

    from .pipeline import localize

    path = out / "snapshots.npz"
    stored = dict(np.load(path)) if path.exists() else {}
    for index, record in enumerate(records):
        probability = localize(model, record.image_path).probability
        small = Image.fromarray((probability * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
        stored[f"{name}/seed{seed}/{index}"] = np.asarray(small)
    stored["images"] = np.array([f"{record.dataset}/{record.name}" for record in records])
    save_npz_atomic(path, stored)


def summarise(rows: list[dict], metric: str = "per_image_f1@0.5") -> list[dict]:
    """Per variant: the mean, standard deviation, minimum and maximum of ``metric`` over seeds, and the seed count."""
    summary = []
    for name in dict.fromkeys(row["variant"] for row in rows):
        values = np.array([row[metric] for row in rows if row["variant"] == name and row.get(metric) is not None], dtype=float)
        if not len(values):
            continue
        summary.append({"variant": name, "seeds": len(values), "mean": float(values.mean()),
                        "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                        "min": float(values.min()), "max": float(values.max())})
    return summary


def describe_difference(rows: list[dict], first: str, second: str, metric: str = "per_image_f1@0.5") -> str:
    """A sentence: whether ``first`` beats ``second`` on ``metric`` beyond the spread over seeds, or is within it."""
    by_name = {row["variant"]: row for row in summarise(rows, metric)}
    if first not in by_name or second not in by_name:
        return f"{first} vs {second}: not both measured."
    a, b = by_name[first], by_name[second]
    decision = verdict(rows, first, second, metric)
    if decision == "not measured":
        return f"{first} {a['mean']:.3f} vs {second} {b['mean']:.3f}: one seed each, no spread to judge by."
    if decision == "ranges overlap":
        return (f"{first} {a['mean']:.3f} ± {a['std']:.3f} and {second} {b['mean']:.3f} ± {b['std']:.3f} are within each other's "
                f"spread over seeds: not ranked at this scale.")
    better, worse = (a, b) if decision == "confirmed" else (b, a)
    return (f"{better['variant']} {better['mean']:.3f} ± {better['std']:.3f} beats {worse['variant']} {worse['mean']:.3f} ± "
            f"{worse['std']:.3f}: every seed of one above every seed of the other.")


def verdict(rows: list[dict], claimed_better: str, other: str, metric: str = "per_image_f1@0.5") -> str:
    """A paper's claim "``claimed_better`` beats ``other``", judged by the seeds: "confirmed" when every seed of the
    first scores above every seed of the second, "contradicted" when every seed of the second is above, "ranges overlap"
    otherwise (the seed-range rule; notebook 05's paired bootstrap says "within noise", another test), "not measured"
    when either is missing (at least two seeds each are needed to judge)."""
    spread = {row["variant"]: row for row in summarise(rows, metric)}
    first, second = spread.get(claimed_better), spread.get(other)
    if first is None or second is None or first["seeds"] < 2 or second["seeds"] < 2:
        return "not measured"
    if first["min"] > second["max"]:
        return "confirmed"
    if second["min"] > first["max"]:
        return "contradicted"
    return "ranges overlap"


@dataclass
class Study:
    """A finished (or stopped) ablation study: its table, how it was run, its curves and its prediction snapshots."""

    folder: Path
    rows: list[dict]
    settings: dict
    histories: list[dict] = field(default_factory=list)
    snapshots: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(row["variant"] for row in self.rows))

    @property
    def seeds(self) -> list[int]:
        return sorted({row["seed"] for row in self.rows})

    def snapshot(self, variant: str, seed: int, index: int) -> np.ndarray:
        """The stored probability map (uint8, 0-255) of one cell on the ``index``-th scored image."""
        key = f"{variant}/seed{seed}/{index}"
        if key not in self.snapshots:
            raise KeyError(f"no snapshot {key!r} in {self.folder}; stored: {', '.join(sorted(self.snapshots)[:6])} ...")
        return self.snapshots[key]

    @property
    def snapshot_images(self) -> list[str]:
        """The scored images the snapshots show, as ``dataset/name``."""
        return [str(name) for name in self.snapshots.get("images", [])]


def collect_histories(out: str | Path) -> list[dict]:
    """Every cell's per-epoch history in one list of rows (with ``variant`` and ``seed``), from a study folder."""
    from .run_folder import read_history

    rows = []
    for run_dir in sorted(Path(out).glob("*/seed*")):
        if run_dir.name[4:].isdigit() and run_dir.parent.name in VARIANTS:
            rows += [{"variant": run_dir.parent.name, "seed": int(run_dir.name[4:]), **entry, "epoch": int(entry["epoch"])}
                     for entry in read_history(run_dir)]
    return rows


def load_study(folder: str | Path | None = None) -> Study:
    """A study folder as a :class:`Study` (default: the study shipped with the package).

    Reads ``results.csv`` and ``study.json``, and ``histories.csv`` and
    ``snapshots.npz`` where present; the histories of a study still being run
    are read from its run folders.
    """
    folder = SHIPPED_STUDY if folder is None else Path(folder)
    if not (folder / "results.csv").is_file() or not (folder / "study.json").is_file():
        raise FileNotFoundError(f"{folder}: no ablation study here (results.csv and study.json); run `pmsp ablate --out {folder}` first.")
    rows = read_results(folder / "results.csv")
    unknown = sorted({row["variant"] for row in rows} - set(VARIANTS))
    if unknown:
        raise ValueError(f"{folder / 'results.csv'}: unknown variant(s) {', '.join(unknown)}; this version knows {', '.join(VARIANTS)}.")
    settings = json.loads((folder / "study.json").read_text())
    if (folder / "histories.csv").is_file():
        histories = _read_table(folder / "histories.csv", integers=("seed", "epoch"), keep_empty=False)
    else:
        histories = collect_histories(folder)
    snapshots = dict(np.load(folder / "snapshots.npz")) if (folder / "snapshots.npz").is_file() else {}
    return Study(folder, rows, settings, histories, snapshots)


def ship_study(out: str | Path, destination: str | Path = SHIPPED_STUDY) -> Path:
    """Copy a study's small files (table, settings, snapshots, and all histories in one CSV) to ``destination``.

    No weights and no dataset images travel: the shipped study lets notebook 06
    render on any machine with nothing to download.
    """
    study = load_study(out)
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("results.csv", "study.json", "snapshots.npz"):
        if (study.folder / name).is_file():
            shutil.copyfile(study.folder / name, destination / name)
    columns = ["variant", "seed"] + sorted({key for row in study.histories for key in row} - {"variant", "seed"},
                                           key=lambda key: (key != "epoch", key))
    write_csv(destination / "histories.csv", study.histories, columns)
    return destination
