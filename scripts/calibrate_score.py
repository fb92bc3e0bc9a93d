"""Maintainers: write a shipped model's tamper_score calibration into its card, from benchmarks/generalization.py --selection.

    python scripts/calibrate_score.py NAME SELECTION_DIR [--label LABEL]

Reads SELECTION_DIR/calibration.json and selection.csv (the model's row: LABEL, default NAME), puts the slope and
intercept into the card's settings (``score_calibration``: pmsp localize then reports the calibrated score) and a
``tamper_score`` section saying what 0.5 means and how often untouched photos pass it, and rewrites NAME.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pmsp_utils import pretrained  # noqa: E402
from pmsp_utils.safe_write import write_text_atomic  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("selection", type=Path)
    parser.add_argument("--label")
    args = parser.parse_args()
    label = args.label or args.name
    calibration = json.loads((args.selection / "calibration.json").read_text())[label]
    with (args.selection / "selection.csv").open(newline="") as handle:
        row = next(row for row in csv.DictReader(handle) if row["model"] == label)
    path = pretrained.WEIGHTS_DIR / f"{args.name}.json"
    card = json.loads(path.read_text())
    card["settings"]["score_calibration"] = [round(calibration["slope"], 4), round(calibration["intercept"], 4)]
    card["tamper_score"] = {
        "means": ("tamper_score is the mean of the top 1% of the pixel probabilities, mapped through a logistic fit that weighs "
                  "tampered images and untouched photos equally: 0.5 is where, on validation, a tampered image and an untouched "
                  "photo were equally likely. It is not the probability that your photo was edited, which depends on how "
                  "many of the photos you check are."),
        "slope": calibration["slope"], "intercept": calibration["intercept"], "fitted_on": calibration["fitted_on"],
        "detected_at_0.5": calibration["detected_at_0.5"], "false_alarms_at_0.5": calibration["false_alarms_at_0.5"],
        "image_auc": float(row["image auc"]), "flagged_share": float(row["flagged share"]),
    }
    write_text_atomic(path, json.dumps(card, indent=2) + "\n")
    write_text_atomic(pretrained.WEIGHTS_DIR / f"{args.name}.md", pretrained.card_markdown(card))
    print(json.dumps(card["tamper_score"], indent=2))


if __name__ == "__main__":
    main()
