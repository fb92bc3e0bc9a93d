"""Each post-processing step on its own, measured on validation (issue 22, part 2).

    python benchmarks/postprocess_study.py --root PATH/casia1 --out build/postprocess_study \
        [--init casia1] [--epochs 1] [--setting NAME=SPEC ...]

Every setting fine-tunes the same start (by default the shipped pair's ``stride16`` member, which never saw
whole-image post-processing) with the ``one-network`` recipe, the same seed, data and schedule; only
``--postprocess`` changes. ``none`` is the control: what the extra epochs do by themselves. Each run is then scored
by ``generalization.py --part validation --validation-only``, and the settings are ranked by the selection rule the
project chooses with: the mean per-image F1@0.5 of four validation conditions (the grouped split's CASIA v1
validation part clean, re-saved at JPEG 90, downscaled by 0.75, and forgeries made on its photos). Nothing here
reads the test part.

Beside each setting's mean, its difference from the control with a 95% interval from a paired bootstrap over the
validation images (the same images resampled for both models, within each condition): a difference whose interval
holds 0 is not told apart from noise by this data.

Each step alone is drawn with probability 0.5 (the ``photo`` preset draws them at 0.3, 0.5, 0.15 and 0.15 together),
so that one short fine-tune shows what the step does. Resumable: a run folder that already holds ``model.keras`` is
not trained again, and a setting already scored is not scored again (``--setting`` adds one to the table).
Writes ``summary.csv`` and ``summary.md`` in ``--out`` and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

#: The settings measured by default: the control, each step alone, and the preset the shipped model trained with.
SETTINGS = {
    "none": "none",
    "resize": "resize=0.5",
    "jpeg": "jpeg=0.5",
    "blur": "blur=0.5",
    "noise": "noise=0.5",
    "photo": "photo",
}

#: The four validation conditions of the selection rule (rows of generalization.py's results.csv).
CONDITIONS = ("casia1 validation", "validation, JPEG 90", "validation, x0.75", "forged validation")


def train(name: str, spec: str, args, runs: Path) -> Path:
    run = runs / name
    if (run / "model.keras").is_file():
        print(f"{name}: already trained ({run}), kept")
        return run
    command = [sys.executable, "-m", "pmsp_utils.cli", "train", "--recipe", "one-network", "--root", str(args.root),
               "--run-dir", str(run), "--init-from", args.init, "--learning-rate", str(args.learning_rate),
               "--epochs", str(args.epochs), "--patience", str(args.epochs), "--seed", str(args.seed),
               "--postprocess", spec, *args.train_option]
    print(f"{name}: pmsp train ... --postprocess {spec}", flush=True)
    subprocess.run(command, check=True)
    return run


def read_rows(path: Path) -> list[dict]:
    """A CSV table's rows ([] when there is no such file)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def scored_models(path: Path) -> set[str]:
    """The models a results.csv of generalization.py already holds."""
    return {row["model"] for row in read_rows(path)}


def selection_table(results: Path, names: list[str]) -> list[dict]:
    scores = {(row["model"], row["set"]): row for row in read_rows(results)}
    rows = []
    for name in names:
        row = {"setting": name, "postprocess": SETTINGS.get(name, "")}
        for condition in CONDITIONS:
            row[condition] = float(scores[(name, condition)]["f1_per_image@0.5"])
        row["missed x0.75"] = float(scores[(name, "validation, x0.75")]["missed_share"])
        row["selection mean"] = sum(row[condition] for condition in CONDITIONS) / len(CONDITIONS)
        rows.append(row)
    return rows


def per_image_scores(path: Path) -> dict:
    """{(model, condition): {image: F1@0.5}} from generalization.py's per_image.csv."""
    scores = defaultdict(dict)
    for row in read_rows(path):
        scores[(row["model"], row["set"])][row["image"]] = float(row["f1@0.5"])
    return scores


def paired_difference(scores: dict, model: str, control: str, *, draws: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(difference, 2.5th, 97.5th percentile) of ``model``'s selection mean minus ``control``'s: each condition's
    images resampled with replacement (pmsp_utils.compare's paired bootstrap), the same draw for both models."""
    import numpy as np

    from pmsp_utils.compare import bootstrap_means

    rng = np.random.default_rng(seed)
    observed, samples = 0.0, np.zeros(draws)
    for condition in CONDITIONS:
        ours, theirs = scores[(model, condition)], scores[(control, condition)]
        if set(ours) != set(theirs):
            raise ValueError(f"{model} and {control} were not scored on the same images of {condition!r}")
        difference = np.array([ours[name] - theirs[name] for name in sorted(ours)])
        observed += difference.mean() / len(CONDITIONS)
        samples += bootstrap_means(difference, draws, rng) / len(CONDITIONS)
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(observed), float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="CASIA v1 folder")
    parser.add_argument("--out", type=Path, default=Path("build/postprocess_study"))
    parser.add_argument("--init", default="casia1", help="the start every setting fine-tunes (default: the pair's stride16 member)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=SPEC",
                        help="measure this setting too, after the default ones (SPEC as --postprocess takes it)")
    parser.add_argument("--train-option", action="append", default=[], help="one more token for every pmsp train")
    args = parser.parse_args()
    SETTINGS.update(item.split("=", 1) for item in args.setting)

    runs = args.out / "runs"
    names = list(SETTINGS)
    for name in names:
        train(name, SETTINGS[name], args, runs)

    from pmsp_utils.safe_write import write_csv, write_text_atomic

    scores = args.out / "scores"
    missing = [name for name in names if name not in scored_models(scores / "results.csv")]
    if missing:  # score only the settings not scored yet, then add their rows to the tables
        fresh = scores / "fresh"
        command = [sys.executable, str(Path(__file__).with_name("generalization.py")), "--root", str(args.root),
                   "--part", "validation", "--validation-only", "--out", str(fresh)]
        for name in missing:
            command += ["--model", f"{name}={runs / name}"]
        subprocess.run(command, check=True, env={**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")})
        for table in ("results.csv", "per_image.csv"):
            rows = read_rows(scores / table) + read_rows(fresh / table)
            write_csv(scores / table, rows, list(rows[0]))

    rows = selection_table(scores / "results.csv", names)
    control = names[0]
    images = per_image_scores(scores / "per_image.csv")
    for row in rows:
        row["difference"], row["low"], row["high"] = paired_difference(images, row["setting"], control)
    columns = ["setting", "postprocess", *CONDITIONS, "missed x0.75", "selection mean", "difference", "low", "high"]
    write_csv(args.out / "summary.csv", rows, columns)
    header = [*columns[:-3], f"minus {control} (95% interval)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["setting"], f"`{row['postprocess']}`"]
        cells += [f"{row[condition]:.3f}" for condition in CONDITIONS]
        cells += [f"{row['missed x0.75']:.1%}", f"**{row['selection mean']:.3f}**"]
        cells += ["-" if row["setting"] == control else f"{row['difference']:+.3f} ({row['low']:+.3f} to {row['high']:+.3f})"]
        lines.append("| " + " | ".join(cells) + " |")
    write_text_atomic(args.out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
