"""Does the copy-move matcher help the network? Measured per kind on CASIA v1 and generated forgeries (issue 36).

    python benchmarks/copymove_study.py --root PATH/casia1 [--model casia1-forged] [--part validation] \
        [--forged 95] [--radius 8] [--out build/copymove_study]

For every tampered image of the grouped split's ``--part`` (CASIA v1: copy-moves and splicings), for forgeries made on
that part's photos (generated copy-moves with rotation, scaling, mirroring and JPEG; generated splicings), and for the
part's untouched photos, it runs the network (``--model``, its own settings) and :func:`pmsp_utils.copymove.detect`
(with the image's ELA and the network's map as the evidence for which region is the copy), then scores per-image F1
at 0.5 of four maps against the mask:

* ``network``: the network alone (today's ``pmsp localize``);
* ``matcher``: the matcher alone, each pair's copy marked (both regions when it cannot tell);
* ``fused``: :func:`pmsp_utils.copymove.fuse` of the two (``pmsp localize --copy-move``);
* ``fused, both``: the same, but both regions of every pair marked, whatever the evidence said.

It prints, per set and kind, the mean F1, the share missed (F1 < 0.1), the share of images with a pair, and for the
matcher's decided pairs how often the copy was told right (the region overlapping the mask more); on untouched photos,
the share with a pair and the share with more than 1% marked. The fused maps' difference from the network's has a
95% paired bootstrap interval. Choices are made on ``--part validation`` (or train); the test part is read only after.
Writes ``per_image.csv`` and ``summary.csv`` in ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

MAPS = ("network", "matcher", "fused", "fused, both")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--model", default="casia1-forged")
    parser.add_argument("--part", choices=("train", "validation", "test"), default="validation")
    parser.add_argument("--forged", type=int, default=95, help="forgeries made on the part's photos (0: none)")
    parser.add_argument("--radius", type=int, default=None, help="the matcher's patch radius (default: copymove.RADIUS)")
    parser.add_argument("--threshold", type=float, default=None, help="the score a pair must reach (default: copymove.PAIR_THRESHOLD)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many images per set (0: all)")
    parser.add_argument("--kind", choices=("copy-move", "splicing"), default=None, help="only forgeries of this kind (default: both)")
    parser.add_argument("--untouched", type=int, default=-1, help="untouched photos of the part scored (-1: all, 0: none)")
    parser.add_argument("--out", type=Path, default=Path("build/copymove_study"))
    args = parser.parse_args()

    from pmsp_utils import copymove
    from pmsp_utils.compare import bootstrap_means
    from pmsp_utils.data import load_casia1, split_by
    from pmsp_utils.data.forgeries import forged_parts, list_photos, reserved_ids, split_photos
    from pmsp_utils.images import load_image
    from pmsp_utils.metrics import f1_score
    from pmsp_utils.pipeline import localize
    from pmsp_utils.runtime import load_for_inference
    from pmsp_utils.safe_write import write_csv

    casia = load_casia1(args.root)
    split = split_by("grouped", [record for record in casia if record.is_tampered])
    records = list(getattr(split, args.part))
    sets = {"casia1": records}
    if args.forged:
        forged = forged_parts(list_photos(args.root / "authentic"), {args.part: args.forged}, seed=1, reserved=reserved_ids(split))[args.part]
        sets["forged"] = [record for record in forged.records if record.is_tampered]
    photos = split_photos(list_photos(args.root / "authentic"), reserved=reserved_ids(split))[args.part]
    model = load_for_inference(args.model, echo=lambda line: None)
    radius = args.radius or copymove.RADIUS
    threshold = copymove.PAIR_THRESHOLD if args.threshold is None else args.threshold
    rows, started, count = [], time.perf_counter(), 0
    for name, items in sets.items():
        for record in [record for record in items if args.kind in (None, record.kind)][: args.limit or None]:
            loaded = load_image(record.image_path)
            result = localize(model, loaded)
            mask = record.load_mask(result.image.shape[:2]).astype(bool)
            found = copymove.detect(result.image, ela_map=result.ela, network=result.probability, radius=radius, threshold=threshold)
            maps = {"network": result.probability >= 0.5, "matcher": found.copy_mask(),
                    "fused": copymove.fuse(result.probability, found) >= 0.5,
                    "fused, both": np.maximum(result.probability, found.both_mask()) >= 0.5}
            told = ""
            decided = [pair for pair in found.pairs if pair.copy is not None]
            if decided and mask.any():
                pair = decided[0]
                truth = "a" if (pair.region_a & mask).sum() >= (pair.region_b & mask).sum() else "b"
                told = str(pair.copy == truth)
            # the best pair's evidence in its two terms, and the fused map's F1 with each choice for it (the other pairs
            # as found), so that other rules for telling the copy can be scored from the table without rerunning
            choices = {}
            if found.pairs:
                best = found.pairs[0]
                terms = copymove.copy_evidence(best.region_a, best.region_b, result.ela, result.probability)
                for choice in ("a", "b", None):
                    chosen = replace(found, pairs=[replace(best, copy=choice), *found.pairs[1:]])
                    choices[f"f1 fused, best pair {choice or 'both'}"] = f1_score(copymove.fuse(result.probability, chosen) >= 0.5, mask)
                choices.update({"ela_term": terms[0], "network_term": terms[1],
                                "truth": ("a" if (best.region_a & mask).sum() >= (best.region_b & mask).sum() else "b") if mask.any() else ""})
            rows.append({"set": name, "kind": record.kind, "image": record.name, "pair": int(found.found), "pair_score": found.score,
                         "copy_told_right": told, **{f"f1 {key}": f1_score(value, mask) for key, value in maps.items()}, **choices})
            count += 1
            print(f"{name} {record.name}: pairs {len(found.pairs)}, " + ", ".join(f"{key} {rows[-1][f'f1 {key}']:.3f}" for key in MAPS), flush=True)
    untouched = []
    for path in photos[: args.limit or None][: None if args.untouched < 0 else args.untouched]:
        result = localize(model, path)
        found = copymove.detect(result.image, ela_map=result.ela, network=result.probability, radius=radius, threshold=threshold)
        untouched.append({"set": "untouched", "kind": "authentic", "image": path.stem, "pair": int(found.found), "pair_score": found.score,
                          "marked network": float((result.probability >= 0.5).mean()),
                          "marked fused": float((copymove.fuse(result.probability, found) >= 0.5).mean())})
        count += 1
    seconds = (time.perf_counter() - started) / max(1, count)

    summary, rng = [], np.random.default_rng(0)
    for name in sets:
        for kind in sorted({row["kind"] for row in rows if row["set"] == name}):
            group = [row for row in rows if row["set"] == name and row["kind"] == kind]
            entry = {"set": name, "kind": kind, "images": len(group), "with a pair": np.mean([row["pair"] for row in group])}
            told = [row["copy_told_right"] == "True" for row in group if row["copy_told_right"]]
            entry["copy told right"] = f"{sum(told)}/{len(told)}"
            for key in MAPS:
                values = np.array([row[f"f1 {key}"] for row in group])
                entry[f"F1 {key}"], entry[f"missed {key}"] = values.mean(), (values < 0.1).mean()
            network = np.array([row["f1 network"] for row in group])
            for key in ("fused", "fused, both"):
                difference = np.array([row[f"f1 {key}"] for row in group]) - network
                low, high = np.percentile(bootstrap_means(difference, 2000, rng), [2.5, 97.5])
                entry[f"{key} minus network"] = f"{difference.mean():+.3f} ({low:+.3f} to {high:+.3f})"
            summary.append(entry)
    if untouched:
        summary.append({"set": "untouched", "kind": "authentic", "images": len(untouched),
                        "with a pair": np.mean([row["pair"] for row in untouched]),
                        "F1 network": float("nan"), "missed network": np.mean([row["marked network"] > 0.01 for row in untouched]),
                        "F1 fused": float("nan"), "missed fused": np.mean([row["marked fused"] > 0.01 for row in untouched])})
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "per_image.csv", rows + untouched, sorted({key for row in rows + untouched for key in row}))
    write_csv(args.out / "summary.csv", summary, sorted({key for row in summary for key in row}))
    print(f"\n{args.model}, part {args.part}, matcher radius {radius}, pair threshold {threshold}; per-image F1@0.5 (missed: F1 < 0.1); "
          f"{seconds:.2f} s per image for network and matcher together")
    for entry in summary:
        if entry["set"] == "untouched":
            print(f"untouched photos ({entry['images']}): a pair in {entry['with a pair']:.1%}; more than 1% marked: network "
                  f"{entry['missed network']:.1%}, fused {entry['missed fused']:.1%}")
            continue
        print(f"{entry['set']:8s} {entry['kind']:10s} n={entry['images']:3d} pair {entry['with a pair']:5.1%} told {entry['copy told right']:>6s} | "
              + " | ".join(f"{key} {entry[f'F1 {key}']:.3f} ({entry[f'missed {key}']:.0%})" for key in MAPS)
              + f" | fused-net {entry['fused minus network']}; both-net {entry['fused, both minus network']}")
    print(f"\n{args.out / 'summary.csv'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
