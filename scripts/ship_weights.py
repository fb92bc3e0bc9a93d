"""Maintainers: turn a finished training run into shipped weights with a model card.

    python scripts/ship_weights.py RUN_DIR NAME [--data-root PATH] --init "description" [--reproduce "command"]

Exports the run's best model as float16 (pmsp_utils/weights/NAME.npz), then
scores those float16 weights, as shipped, on the run's validation split under
two named protocols, and writes NAME.json and NAME.md. A run on the synthetic
set is also scored on held-out synthetic images (another seed) and, with
--casia-root, on real CASIA v1.0 images: the gap between the two is a lesson.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from pmsp_utils import pretrained  # noqa: E402
from pmsp_utils.data import load_casia1, load_casia2, load_folder  # noqa: E402
from pmsp_utils.data.sources import load_source  # noqa: E402
from pmsp_utils.data.splits import read_split_list  # noqa: E402
from pmsp_utils.ela import ElaCache, ElaSettings  # noqa: E402
from pmsp_utils.safe_write import save_npz_atomic, write_csv, write_text_atomic  # noqa: E402
from pmsp_utils.metrics import PixelMetrics  # noqa: E402
from pmsp_utils.models import export_pretrained, load_model  # noqa: E402
from pmsp_utils.pipeline import localize  # noqa: E402
from pmsp_utils.train import TrainConfig, evaluate_pixels, make_sequence, read_history  # noqa: E402


def score(model, records, config) -> dict:
    """Both protocols on the validation records."""
    sequence = make_sequence(records, config, shuffle=False, augment=False, ela_cache=ElaCache(settings=ElaSettings.of_model(config.model)))
    return {"at_input_size": evaluate_pixels(model, sequence), "at_original_size": at_original_size(model, records)}


def at_original_size(model, records) -> dict:
    """Per-image F1 and pooled AUC of localize() maps scored at each image's own size."""
    metrics = PixelMetrics()
    for record in records:
        metrics.update(localize(model, record.image_path).probability, record.load_mask())
    return metrics.result()


def _scored(model, records) -> dict:
    return {key: round(value, 4) for key, value in at_original_size(model, records).items()}


def synthetic_evaluations(model, config, args) -> list[dict]:
    """A synthetic-trained model on held-out synthetic images and, when given, on real CASIA v1.0 images."""
    held_out = [r for r in load_source("synthetic", synthetic_count=args.held_out_count, seed=1, size=config.model.input_size) if r.is_tampered]
    rows = [{"on": f"{len(held_out)} held-out synthetic tampered images (seed 1; training used seed {config.seed}; "
                   f"{config.model.input_size}x{config.model.input_size}; the same packaged photos, other crops and forgeries)", **_scored(model, held_out)}]
    if args.casia_root:
        casia = [r for r in load_casia1(args.casia_root) if r.is_tampered]
        rows.append({"on": f"{len(casia)} real CASIA v1.0 tampered images (never seen: another dataset)", **_scored(model, casia)})
    for row in rows:
        row["protocol"] = "localize resize policy, scored at each image's own size; per-image F1 at 0.5 over tampered images; pooled pixel AUC"
    return rows


def join_stages(previous: Path, name: str, card: dict) -> None:
    """Put an earlier stage's history and snapshots before this run's, with epochs counted on."""

    earlier = read_history(previous)
    offset = len(earlier)
    later = pretrained.history(name)
    rows = [{**row, "stage": 1} for row in earlier] + [{**row, "epoch": row["epoch"] + offset, "stage": 2} for row in later]
    columns = sorted({key for row in rows for key in row}, key=lambda key: (key != "epoch", key))
    write_csv(pretrained.WEIGHTS_DIR / f"{name}_history.csv", rows, columns)
    shots = dict(np.load(previous / "snapshots.npz"))
    for key, value in pretrained.snapshots(name).items():
        if key.startswith("epoch_"):
            shots[f"epoch_{int(key[6:]) + offset:03d}"] = value
    save_npz_atomic(pretrained.WEIGHTS_DIR / f"{name}_snapshots.npz", shots)
    card["training"].update(epochs_run=len(rows), best_epoch=card["training"]["best_epoch"] + offset,
                            seconds=card["training"]["seconds"] + round(sum(row.get("seconds", 0) for row in earlier)))


HELD_OUT_PROTOCOL = ("localize with the model's own settings, scored at each image's own size; per-image F1 at 0.5 over tampered "
                     "images; missed: per-image F1 below 0.1; pooled pixel F1 at 0.5 and AUC over all their pixels")


def validation_entry(records, scores: dict, protocol: str) -> dict:
    """The card's ``validation``: the scores of :func:`score` on ``records``, rounded, with their protocol in words."""
    return {
        "images": len(records),
        "per_image_f1@0.5": round(scores["at_original_size"]["per_image_f1@0.5"], 4),
        "pooled_auc": round(scores["at_original_size"]["pooled_auc"], 4),
        "protocol": protocol,
        "at_model_input_size": {k: round(v, 4) for k, v in scores["at_input_size"].items() if k in ("per_image_f1@0.5", "pooled_auc")},
        "scored": time.strftime("%Y-%m-%d"),
    }


def held_out_rows(model, records, label: str) -> dict:
    """Per-image F1@0.5, pooled F1 and AUC, share missed and the same by kind, scored at each image's own size."""
    from pmsp_utils.evaluate import evaluate, model_predictor

    result = evaluate(records, {"PMSP": model_predictor(model)}, dataset=label, show_progress=False)
    table = result.table1()[0]
    kinds = {row["kind"]: row for row in result.by_kind()}
    row = {"on": label, "images": len(records), "per_image_f1@0.5": round(table["f1_per_image@0.5"], 4),
           "pooled_f1@0.5": round(table["f1_pooled@0.5"], 4), "pooled_auc": round(table["auc_pooled"], 4),
           "missed_share": round(kinds["all tampered"]["missed_share"], 4), "f1_found": round(kinds["all tampered"]["f1_found"], 4)}
    row["by_kind"] = {kind: {"images": value["images"], "per_image_f1@0.5": round(value["f1_per_image@0.5"], 4),
                             "missed_share": round(value["missed_share"], 4)} for kind, value in kinds.items() if kind != "all tampered"}
    return row


def main() -> None:
    from pmsp_utils.data import split_by

    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--data-root", help="the dataset's folder (not needed for the synthetic set)")
    parser.add_argument("--casia-root", help="CASIA v1.0 folder: also score a synthetic-trained model on its tampered images")
    parser.add_argument("--held-out-count", type=int, default=200, help="held-out synthetic images (seed 1) to score")
    parser.add_argument("--init", required=True, help="how the network was initialised")
    parser.add_argument("--data-description", required=True)
    parser.add_argument("--reproduce", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--limitation", action="append", default=[], help="a known limitation (repeatable)")
    parser.add_argument("--previous", type=Path, help="an earlier stage's run directory, whose history and snapshots come first")
    parser.add_argument("--stage", action="append", default=[], help="one line per training stage, for the card (repeatable)")
    parser.add_argument("--target", action="append", default=[], help="KEY=VALUE targets for the card, e.g. per_image_f1@0.5=0.65")
    parser.add_argument("--targets-on", default="", help="which images the targets are for")
    parser.add_argument("--flip", action="store_true", help="ship with flipped test-time augmentation on (where it was measured to win)")
    args = parser.parse_args()
    config = TrainConfig.from_saved(json.loads((args.run_dir / "config.json").read_text()))
    history = read_history(args.run_dir)
    state = json.loads((args.run_dir / "state.json").read_text())
    names = {key for key, _ in read_split_list(args.run_dir / "splits" / "validation.txt")}
    if config.data == "synthetic":
        every = load_source("synthetic", synthetic_count=config.synthetic_count, seed=config.seed, size=config.model.input_size)
    else:
        every = {"casia1": load_casia1, "casia2": load_casia2, "folder": load_folder}[config.data](args.data_root)
    records = [r for r in every if f"{r.dataset}/{r.name}" in names]
    tampered = [r for r in every if r.is_tampered]
    split = split_by(config.split, tampered)
    test_records = list(split.test)
    monitor = {"val_loss": "validation loss", "val_f1": "validation per-image F1 at 0.5"}[config.monitor]
    augmentation = ("horizontal and vertical flips" if config.augment else "none") + (
        f"; with probability {config.recompress} the whole image re-saved as JPEG at a quality drawn from "
        f"{config.recompress_qualities[0]}..{config.recompress_qualities[1]} before ELA (a new compression history)"
        if config.augment and config.recompress else "") + (
        "; whole-image post-processing before ELA with probabilities " + ", ".join(f"{k} {v}" for k, v in config.postprocess.items()
                                                                              if isinstance(v, float))
        + " (resize 0.5-1.0x, JPEG quality 50-100, Gaussian blur sigma 0.3-1.2, noise sigma 1-5; pmsp_utils.augment)"
        if config.augment and config.postprocess else "")
    card = {
        "name": args.name,
        "architecture": {key: value for key, value in config.model.architecture().items() if key != "ela_gain"},
        "data": args.data_description,
        "initialisation": args.init,
        "recipe": {"loss": config.loss, "positive_weight": config.positive_weight, "optimizer": "Adam", "learning_rate": config.learning_rate,
                   "schedule": config.schedule, "batch_size": config.batch_size, "input_size": config.model.input_size,
                   "input_policy": config.model.policy, "max_epochs": config.epochs, "patience": config.patience,
                   "early_stopping": f"{monitor}, best weights restored", "augmentation": augmentation,
                   "split": split.protocol, "seed": config.seed, "ela": f"quality {config.model.ela_quality}, raw difference",
                   **({"generated_forgeries": f"{config.forgeries} forgeries made on the training part's own CASIA v1 authentic photos "
                                              "(pmsp_utils.data.forgeries; the photos behind validation and test forgeries excluded)"}
                      if config.forgeries else {}),
                   **({"distillation": f"targets of the CASIA training images = {1 - config.distill_weight:g} x mask + "
                                       f"{config.distill_weight:g} x the maps of the shipped {config.distill_from} (computed once, cached)"}
                      if config.distill_from else {})},
        "training": {"epochs_run": len(history), "best_epoch": state["best_epoch"], "device": args.device,
                     "seconds": round(sum(row.get("seconds", 0) for row in history))},
        "reproduce": args.reproduce,
    }
    export_pretrained(args.run_dir, args.name, card=card)
    card = json.loads((pretrained.WEIGHTS_DIR / f"{args.name}.json").read_text())  # with the settings export_pretrained added
    card["settings"]["flip"] = bool(args.flip)
    write_text_atomic(pretrained.WEIGHTS_DIR / f"{args.name}.json", json.dumps(card, indent=2) + "\n")
    if args.previous is not None:
        join_stages(args.previous, args.name, card)
    card["training"]["stages"] = args.stage
    model = load_model(args.name).model  # the float16 weights, as shipped
    scores = score(model, records, config)
    policy_words = {"resize": "RGB and ELA resized to the model input, probability resized back to the image's own size",
                    "pad": "the image at its own pixels in the top-left of the model input (larger ones shrunk to fit), the padding "
                           "cropped from the probability"}[config.model.policy]
    protocol = (f"the {len(records)} tampered validation images of the run's split (they chose the best epoch); shipped float16 "
                f"weights; localize with the model's own settings ({config.model.policy} policy: {policy_words}), scored against the "
                "original mask at each image's own size; per-image F1 at threshold 0.5 averaged over tampered images; pooled "
                "pixel AUC over all their pixels (1000-bin histogram)")
    card["validation"] = validation_entry(records, scores, protocol)
    if config.data == "synthetic":
        card["targets"] = {"pooled_auc": 0.90, "on": "held-out synthetic images (issues 3 and 5)"}
        card["evaluations"] = synthetic_evaluations(model, config, args)
    else:
        card["targets"] = {key: float(value) for key, value in (item.split("=", 1) for item in args.target)}
        card["targets"]["on"] = args.targets_on
        held_out = records + [r for r in test_records if f"{r.dataset}/{r.name}" not in names]
        card["evaluations"] = [
            held_out_rows(model, test_records, f"the {len(test_records)} tampered test images of the run's split (never used in training "
                                               "or model selection)"),
            held_out_rows(model, held_out, f"validation and test together: {len(held_out)} held-out tampered images"),
        ]
        for row in card["evaluations"]:
            row["protocol"] = HELD_OUT_PROTOCOL
    card["reference"] = None
    card["limitations"] = args.limitation
    write_text_atomic(pretrained.WEIGHTS_DIR / f"{args.name}.json", json.dumps(card, indent=2) + "\n")
    write_text_atomic(pretrained.WEIGHTS_DIR / f"{args.name}.md", pretrained.card_markdown(card))
    size = (pretrained.WEIGHTS_DIR / f"{args.name}.npz").stat().st_size
    print(json.dumps({"validation": card["validation"], "evaluations": card.get("evaluations")}, indent=2), f"\nweights: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
