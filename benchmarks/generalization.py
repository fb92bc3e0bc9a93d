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

``--selection`` (with ``--part validation``) adds the conditions of the selection rule's second version (issue 35):
forgeries made on the part's photos and saved as lossless PNG at other sizes than CASIA's (``forged PNG resized``),
the part upscaled by 2 or downscaled by 0.5 and then saved at JPEG 95, and the part's untouched photos (the authentic
photos behind its forgeries), on which it counts the share with more than 1% of their area marked and the image-level
AUC of ``tamper_score`` (those photos against the part's clean tampered images). It then prints the selection mean
of every model (the mean per-image F1 over the F1 conditions), each model's difference from the first with a 95%
paired bootstrap interval, and a logistic calibration of ``tamper_score`` fitted on these images
(``selection.csv``, ``calibration.json``).

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
from pmsp_utils.pipeline import LOCALIZE_POLICIES  # noqa: E402


#: The F1 conditions of the selection rule (second version, issue 35), rows of results.csv, ``PART`` replaced.
SELECTION_CONDITIONS = ("casia1 PART", "PART, JPEG 90", "PART, x0.75", "forged PART", "forged PNG resized",
                        "PART, x2 JPEG 95", "PART, x0.5 JPEG 95")
#: A photo counts as flagged when more than this share of its area is marked at 0.5.
FLAGGED_AREA = 0.01


def score(predict, items, threshold: float = 0.5, scores: dict | None = None) -> PixelMetrics:
    """items: (name, image source, mask) triples; ``predict`` maps an image source to a probability map.
    ``scores``: filled with each image's raw tamper score and its marked share."""
    from pmsp_utils.localize_outputs import raw_tamper_score

    metrics = PixelMetrics(threshold)
    for name, source, mask in items:
        probability = predict(source)
        metrics.update(probability, mask, name=name)
        if scores is not None:
            scores[name] = (raw_tamper_score(probability), float((probability >= threshold).mean()))
    return metrics


def summary(metrics: PixelMetrics, names=None) -> dict:
    images = [image for image in metrics.tampered_images if names is None or image.name in names]
    row = miss_summary(images)
    pooled = metrics.pooled()
    row["pooled_auc"] = pooled["auc"] if names is None else float("nan")
    return row


def record_items(records, perturbation=None, then_jpeg: int | None = None):
    """(name, source, mask) of each record; ``perturbation`` (kind, level) applied first, then (``then_jpeg``) a JPEG
    save at that quality."""
    from pmsp_utils.images import load_image
    from pmsp_utils.robustness import perturb

    for record in records:
        image = np.array(load_image(record.image_path).to_display().convert("RGB"))
        mask = record.load_mask(image.shape[:2])
        if perturbation is not None:
            source, mask = perturb(image, mask, *perturbation)
            if then_jpeg is not None:
                source, mask = perturb(np.asarray(source), mask, "jpeg", then_jpeg)
            yield record.name, source, mask  # a JPEG re-save as bytes: every model reads it afresh (a BytesIO reads once)
        else:
            yield record.name, record.image_path, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="CASIA v1 folder (images/, masks/, authentic/)")
    parser.add_argument("--casia2", help="CASIA v2.0 samples folder (images/, masks/)")
    parser.add_argument("--model", action="append", default=[], help="NAME=SPEC (a shipped name, run folder or .keras)")
    parser.add_argument("--forged", type=int, default=120, help="forgeries made on the test part's photos (0: none)")
    parser.add_argument("--out", type=Path, default=Path("build/generalization"))
    parser.add_argument("--part", choices=("validation", "test"), default="test",
                        help="which part the post-processed and generated sets come from (validation: where choices are made)")
    parser.add_argument("--flip", choices=("off", "on", "both"), default="off",
                        help="test-time flip augmentation (pmsp localize --flip); both: each model scored twice, the second as NAME+flip")
    parser.add_argument("--copy-move", choices=("off", "on", "both"), default="off",
                        help="fuse the copy-move matcher's pairs into the map (pmsp localize --copy-move); both: each model scored twice, "
                        "the second as NAME+cm")
    parser.add_argument("--policy", choices=LOCALIZE_POLICIES,
                        help="how images reach each network (pmsp localize --policy; default: each model's own)")
    parser.add_argument("--merge", type=Path, action="append", default=[], metavar="DIR",
                        help="with --selection: also read the results.csv and per_image.csv of an earlier run (models scored there are "
                        "not scored again), so that models scored at different times share one table")
    parser.add_argument("--control", help="with --selection: the model every other is compared with (default: the first)")
    parser.add_argument("--selection", action="store_true",
                        help="the selection rule's extra conditions and its summary (with --part validation; see above)")
    parser.add_argument("--validation-only", action="store_true",
                        help="leave out the clean test part too (with --part validation: for choosing, nothing of test is read)")
    args = parser.parse_args()
    if args.validation_only and args.part != "validation":
        parser.error("--validation-only needs --part validation")
    if args.selection and args.part != "validation":
        parser.error("--selection needs --part validation (choices are made on validation only)")
    if not args.model and not (args.selection and args.merge):
        parser.error("name at least one --model (or, with --selection, --merge earlier runs to report on them alone)")

    from pmsp_utils.data import load_casia1, load_folder, split_by
    from pmsp_utils.safe_write import write_csv
    from pmsp_utils.data.forgeries import forged_parts, list_photos, reserved_ids
    from pmsp_utils.images import load_image
    from pmsp_utils.models import load_model
    from pmsp_utils.localize_outputs import raw_tamper_score
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
    untouched = []
    if args.selection:
        from pmsp_utils.data.forgeries import PhotoForgeryConfig, split_photos

        png = PhotoForgeryConfig(final_saves=(0.0, 0.0, 1.0), resize=1.0, resize_range=(0.6, 1.8))
        resized = forged_parts(list_photos(Path(args.root) / "authentic"), {part: args.forged or 95}, seed=2,
                               reserved=reserved_ids(split), config=png)[part]
        sets["forged PNG resized"] = list(record_items([record for record in resized.records if record.is_tampered]))
        sets[f"{part}, x2 JPEG 95"] = list(record_items(chosen, ("resize", 2.0), then_jpeg=95))
        sets[f"{part}, x0.5 JPEG 95"] = list(record_items(chosen, ("resize", 0.5), then_jpeg=95))
        photos = split_photos(list_photos(Path(args.root) / "authentic"), reserved=reserved_ids(split))[part]
        untouched = [(path.stem, path, None) for path in photos]
    if args.casia2:
        samples = load_folder(args.casia2, "casia2")
        sets["casia2 samples"] = list(record_items([record for record in samples if record.is_tampered]))

    rows, per_image = [], []
    flips = {"off": (False,), "on": (True,), "both": (False, True)}[args.flip]
    matchers = {"off": (False,), "on": (True,), "both": (False, True)}[args.copy_move]
    labels = []
    for entry in args.model:
        base, _, spec = entry.partition("=")
        model = load_model(spec or base, inference=True)  # once, however many flip settings score it
        for flip, matcher in [(flip, matcher) for flip in flips for matcher in matchers]:
            label = base + ("+flip" if flip and args.flip == "both" else "") + ("+cm" if matcher and args.copy_move == "both" else "")
            labels.append(label)

            def predict(source, flip=flip, matcher=matcher):
                result = localize(model, load_image(source), flip=flip, policy=args.policy)
                if not matcher:
                    return result.probability
                from pmsp_utils.copymove import detect, fuse

                return fuse(result.probability, detect(result.image, ela_map=result.ela, network=result.probability))

            for name, items in sets.items():
                scores = {}
                metrics = score(predict, items, scores=scores)
                rows.append({"model": label, "set": name, **summary(metrics)})
                per_image += [{"model": label, "set": name, "image": image.name, "f1@0.5": image.f1,
                               "tamper_score": scores[image.name][0], "marked": scores[image.name][1]} for image in metrics.tampered_images]
                if name == f"forged {part}":
                    for group, names in sorted(forged_labels.items()):
                        rows.append({"model": label, "set": group, **summary(metrics, names)})
                print(f"{label}: {name} scored", flush=True)
            if untouched:
                for name, path, _ in untouched:
                    probability = predict(path)
                    per_image.append({"model": label, "set": f"untouched {part}", "image": name, "f1@0.5": "",
                                      "tamper_score": raw_tamper_score(probability), "marked": float((probability >= 0.5).mean())})
                print(f"{label}: untouched {part} scored", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    columns = ["model", "set", "images", "f1_per_image@0.5", "pooled_auc", "missed_share", "f1_found"]
    write_csv(args.out / "results.csv", rows, columns, extrasaction="ignore")
    write_csv(args.out / "per_image.csv", per_image, ["model", "set", "image", "f1@0.5", "tamper_score", "marked"])
    print(f"\n{'model':12s} {'set':26s} {'n':>4s} {'F1@0.5':>7s} {'AUC':>6s} {'missed':>7s}")
    for row in rows:
        print(f"{row['model']:12s} {row['set']:26s} {row['images']:4d} {row['f1_per_image@0.5']:7.3f} {row['pooled_auc']:6.3f} {row['missed_share']:7.1%}")
    print(f"\n{args.out / 'results.csv'}")
    if args.selection:
        import csv

        earlier_labels = []
        for folder in args.merge:  # earlier runs' rows first, in their order
            with (folder / "results.csv").open(newline="") as handle:
                earlier = [{**row, "images": int(row["images"]), **{key: float(row[key]) for key in ("f1_per_image@0.5", "pooled_auc",
                            "missed_share", "f1_found")}} for row in csv.DictReader(handle)]
            with (folder / "per_image.csv").open(newline="") as handle:
                earlier_images = [{**row, "f1@0.5": float(row["f1@0.5"]) if row["f1@0.5"] else "", "tamper_score": float(row["tamper_score"]),
                                   "marked": float(row["marked"])} for row in csv.DictReader(handle)]
            fresh = {row["model"] for row in rows}
            rows = [row for row in earlier if row["model"] not in fresh] + rows
            per_image = [row for row in earlier_images if row["model"] not in fresh] + per_image
            earlier_labels += [label for label in dict.fromkeys(row["model"] for row in earlier) if label not in fresh and label not in earlier_labels]
        order = earlier_labels + labels
        if args.control:
            order = [args.control] + [label for label in order if label != args.control]
        write_csv(args.out / "results.csv", rows, columns, extrasaction="ignore")
        write_csv(args.out / "per_image.csv", per_image, ["model", "set", "image", "f1@0.5", "tamper_score", "marked"])
        selection_report(rows, per_image, order, part, args.out)


def selection_report(rows: list[dict], per_image: list[dict], models: list[str], part: str, out: Path) -> list[dict]:
    """The selection rule's table: each model's F1 per condition, their mean, its paired difference from the first
    model (95% bootstrap interval, images resampled within each condition), and on the untouched photos the flagged
    share and the image-level AUC; plus each model's tamper_score calibration. Written to selection.csv and
    calibration.json in ``out``."""
    import json

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from pmsp_utils.compare import bootstrap_means
    from pmsp_utils.safe_write import write_csv, write_text_atomic

    conditions = [condition.replace("PART", part) for condition in SELECTION_CONDITIONS]
    f1 = {(row["model"], row["set"]): row["f1_per_image@0.5"] for row in rows}
    images: dict = {}
    for row in per_image:
        images.setdefault((row["model"], row["set"]), {})[row["image"]] = row
    control, table, calibrations = models[0], [], {}
    rng = np.random.default_rng(0)
    for model in models:
        entry = {"model": model, **{condition: f1[(model, condition)] for condition in conditions}}
        entry["selection mean"] = float(np.mean([entry[condition] for condition in conditions]))
        observed, samples = 0.0, np.zeros(2000)
        for condition in conditions:
            ours, theirs = images[(model, condition)], images[(control, condition)]
            difference = np.array([ours[name]["f1@0.5"] - theirs[name]["f1@0.5"] for name in sorted(ours)])
            observed += difference.mean() / len(conditions)
            samples += bootstrap_means(difference, 2000, rng) / len(conditions)
        entry["minus first"], entry["low"], entry["high"] = observed, *np.percentile(samples, [2.5, 97.5])
        clean = [row["tamper_score"] for row in images[(model, f"casia1 {part}")].values()]
        photos = list(images.get((model, f"untouched {part}"), {}).values())
        negatives = [row["tamper_score"] for row in photos]
        entry["untouched photos"] = len(photos)
        entry["flagged share"] = float(np.mean([row["marked"] > FLAGGED_AREA for row in photos])) if photos else float("nan")
        if photos:
            labels = np.r_[np.ones(len(clean)), np.zeros(len(negatives))]
            raw = np.r_[clean, negatives]
            entry["image auc"] = float(roc_auc_score(labels, raw))
            fit = LogisticRegression(class_weight="balanced", C=1e6).fit(raw[:, None], labels)  # C: practically unregularized
            slope, intercept = float(fit.coef_[0, 0]), float(fit.intercept_[0])
            calibrated = 1.0 / (1.0 + np.exp(-(slope * raw + intercept)))
            calibrations[model] = {"slope": slope, "intercept": intercept,
                                   "false_alarms_at_0.5": float(np.mean(calibrated[labels == 0] >= 0.5)),
                                   "detected_at_0.5": float(np.mean(calibrated[labels == 1] >= 0.5)),
                                   "fitted_on": f"{len(clean)} tampered images of the casia1 {part} part against {len(negatives)} "
                                                f"untouched photos of the {part} side, weighted equally"}
        table.append(entry)
    columns = ["model", *conditions, "selection mean", "minus first", "low", "high", "untouched photos", "flagged share", "image auc"]
    write_csv(out / "selection.csv", table, columns, extrasaction="ignore")
    write_text_atomic(out / "calibration.json", json.dumps(calibrations, indent=2))
    print(f"\nselection rule ({part}; mean per-image F1@0.5 over {len(conditions)} conditions; difference from {control} with a "
          "95% paired bootstrap interval; untouched photos: share with more than 1% marked at 0.5, image-level AUC of tamper_score)")
    for entry in table:
        print(f"{entry['model']:16s} mean {entry['selection mean']:.3f}  minus {control} {entry['minus first']:+.3f} "
              f"({entry['low']:+.3f} to {entry['high']:+.3f})  flagged {entry['flagged share']:.1%} of {entry['untouched photos']}  "
              f"image AUC {entry.get('image auc', float('nan')):.3f}")
    return table


if __name__ == "__main__":
    main()
