"""Beyond CASIA v1's own split: robustness, generated forgeries and CASIA v2, for one or more models side by side.

    python benchmarks/generalization.py --root PATH/casia1 [--casia2 PATH/casia2_samples] \
        --model pair=casia1 --model single=runs/single [--forged 120] [--out build/generalization]

For each model, every score is per-image F1 at 0.5 (mean over tampered images), pooled pixel AUC, and the share
missed (F1 < 0.1), each image at its own size, with the model's own settings (``--flip``: with test-time flips, or both ways):

* ``casia1 validation`` / ``casia1 test``: the grouped split's parts (validation chose; test is read afterwards);
* ``test, JPEG 90`` and ``test, x0.75``: the test part (``--part``) re-saved at JPEG quality 90, or downscaled by 0.75, first;
* ``forged test``: forgeries made on the photos behind the test part (never seen in training, split by photo;
  :mod:`pmsp_utils.data.forgeries`), also by kind and by final save (JPEG, double JPEG, lossless PNG);
* ``casia2 samples``: the CASIA v2.0 samples, a cross-dataset check only (nothing was chosen on them).

The cross-dataset protocol: nothing here trains, tunes or picks a threshold; the CASIA v1 validation part is the
only place where choices are made (``--part validation --validation-only`` scores it alone, so that choosing reads
nothing of the test part). Writes ``results.csv`` (one row per model and set), ``per_image.csv`` (each tampered
image's F1 at 0.5, for paired comparisons between models) and prints a table.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from pmsp_utils.evaluate import miss_summary  # noqa: E402
from pmsp_utils.metrics import PixelMetrics  # noqa: E402


def score(predict, items, threshold: float = 0.5) -> PixelMetrics:
    """items: (name, image source, mask) triples; ``predict`` maps an image source to a probability map."""
    metrics = PixelMetrics(threshold)
    for name, source, mask in items:
        probability = predict(source)
        metrics.update(probability, mask, name=name)
    return metrics


def summary(metrics: PixelMetrics, names=None) -> dict:
    images = [image for image in metrics.tampered_images if names is None or image.name in names]
    row = miss_summary(images)
    pooled = metrics.pooled()
    row["pooled_auc"] = pooled["auc"] if names is None else float("nan")
    return row


def record_items(records, perturbation=None):
    from pmsp_utils.images import load_image
    from pmsp_utils.robustness import perturb

    for record in records:
        image = np.array(load_image(record.image_path).to_display().convert("RGB"))
        mask = record.load_mask(image.shape[:2])
        if perturbation is not None:
            source, mask = perturb(image, mask, *perturbation)
            yield record.name, source, mask  # a JPEG re-save as bytes: every model reads it afresh (a BytesIO reads once)
        else:
            yield record.name, record.image_path, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="CASIA v1 folder (images/, masks/, authentic/)")
    parser.add_argument("--casia2", help="CASIA v2.0 samples folder (images/, masks/)")
    parser.add_argument("--model", action="append", required=True, help="NAME=SPEC (a shipped name, run folder or .keras)")
    parser.add_argument("--forged", type=int, default=120, help="forgeries made on the test part's photos (0: none)")
    parser.add_argument("--out", type=Path, default=Path("build/generalization"))
    parser.add_argument("--part", choices=("validation", "test"), default="test",
                        help="which part the post-processed and generated sets come from (validation: where choices are made)")
    parser.add_argument("--flip", choices=("off", "on", "both"), default="off",
                        help="test-time flip augmentation (pmsp localize --flip); both: each model scored twice, the second as NAME+flip")
    parser.add_argument("--validation-only", action="store_true",
                        help="leave out the clean test part too (with --part validation: for choosing, nothing of test is read)")
    args = parser.parse_args()
    if args.validation_only and args.part != "validation":
        parser.error("--validation-only needs --part validation")

    from pmsp_utils.data import load_casia1, load_folder, split_by
    from pmsp_utils.safe_write import write_csv
    from pmsp_utils.data.forgeries import forged_parts, list_photos, reserved_ids
    from pmsp_utils.images import load_image
    from pmsp_utils.models import load_model
    from pmsp_utils.pipeline import localize

    casia = load_casia1(args.root)
    split = split_by("grouped", [record for record in casia if record.is_tampered])
    part = args.part
    chosen = getattr(split, part)
    sets = {"casia1 validation": list(record_items(split.validation)),
            **({} if args.validation_only else {"casia1 test": list(record_items(split.test))}),
            f"{part}, JPEG 90": list(record_items(chosen, ("jpeg", 90))),
            f"{part}, x0.75": list(record_items(chosen, ("resize", 0.75)))}
    forged_labels = {}
    if args.forged:
        forged = forged_parts(list_photos(Path(args.root) / "authentic"), {part: args.forged}, seed=1, reserved=reserved_ids(split))[part]
        tampered = [record for record in forged.records if record.is_tampered]
        sets[f"forged {part}"] = list(record_items(tampered))
        for record in tampered:
            final = record.notes[0].split()[0]
            forged_labels.setdefault(f"forged {record.kind}", set()).add(record.name)
            forged_labels.setdefault(f"forged final {final}", set()).add(record.name)
    if args.casia2:
        samples = load_folder(args.casia2, "casia2")
        sets["casia2 samples"] = list(record_items([record for record in samples if record.is_tampered]))

    rows, per_image = [], []
    flips = {"off": (False,), "on": (True,), "both": (False, True)}[args.flip]
    for entry in args.model:
        base, _, spec = entry.partition("=")
        model = load_model(spec or base, inference=True)  # once, however many flip settings score it
        for flip in flips:
            label = base + ("+flip" if flip and args.flip == "both" else "")
            predict = lambda source: localize(model, load_image(source), flip=flip).probability  # noqa: E731
            for name, items in sets.items():
                metrics = score(predict, items)
                rows.append({"model": label, "set": name, **summary(metrics)})
                per_image += [{"model": label, "set": name, "image": image.name, "f1@0.5": image.f1} for image in metrics.tampered_images]
                if name == f"forged {part}":
                    for group, names in sorted(forged_labels.items()):
                        rows.append({"model": label, "set": group, **summary(metrics, names)})
                print(f"{label}: {name} scored", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    columns = ["model", "set", "images", "f1_per_image@0.5", "pooled_auc", "missed_share", "f1_found"]
    write_csv(args.out / "results.csv", rows, columns, extrasaction="ignore")
    write_csv(args.out / "per_image.csv", per_image, ["model", "set", "image", "f1@0.5"])
    print(f"\n{'model':12s} {'set':26s} {'n':>4s} {'F1@0.5':>7s} {'AUC':>6s} {'missed':>7s}")
    for row in rows:
        print(f"{row['model']:12s} {row['set']:26s} {row['images']:4d} {row['f1_per_image@0.5']:7.3f} {row['pooled_auc']:6.3f} {row['missed_share']:7.1%}")
    print(f"\n{args.out / 'results.csv'}")


if __name__ == "__main__":
    main()
