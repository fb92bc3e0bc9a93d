"""Which trained casia1 runs to average, and how: the study behind the shipped pair (issue 10).

    python benchmarks/ensemble_study.py --root PATH/casia1 --run s16=runs/s16 --run syn_ft=runs/syn_ft [--run ...]

Every run must use the grouped split (the same on every machine). For each run it
caches, once, the maps of the grouped validation and test parts at each image's
own size: the image alone, and with flipped test-time augmentation (from which the
mirror's map alone follows: 2 * flipped - plain). Then it scores every combination
of runs, their maps averaged, each in three arrangements: every member on the
image, every member on image and mirror (2 passes each), and one view per member
(half of them, rounded up, on the mirror and the rest on the image, in every way).
Printed per combination: per-image F1 at 0.5, pooled pixel AUC, share missed
(F1 < 0.1) and copy-moves missed, on validation (which chooses) and on test.
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from pmsp_utils.data.sources import load_source  # noqa: E402
from pmsp_utils.evaluate import miss_summary, select_records  # noqa: E402
from pmsp_utils.safe_write import save_npz_atomic  # noqa: E402
from pmsp_utils.metrics import PixelMetrics  # noqa: E402

PARTS = ("validation", "test")


def cached_maps(name: str, spec: str, parts: dict, cache: Path) -> dict[str, dict[str, np.ndarray]]:
    """{"image": ..., "flipped": ..., "mirror": ...} maps keyed "part/name", computed once into ``cache``."""
    from pmsp_utils.images import load_image
    from pmsp_utils.models import load_model
    from pmsp_utils.pipeline import localize

    paths = {key: cache / f"{name}_{key}.npz" for key in ("image", "flipped")}
    if not all(path.exists() for path in paths.values()):  # one model load, one decode per image, both settings
        model = load_model(spec, inference=True)
        values = {"image": {}, "flipped": {}}
        for part, records in parts.items():
            for record in records:
                loaded = load_image(record.image_path)
                for key, flip in (("image", False), ("flipped", True)):
                    values[key][f"{part}/{record.name}"] = localize(model, loaded, flip=flip).probability.astype(np.float16)
        for key, path in paths.items():
            save_npz_atomic(path, values[key])
    maps = {key: {k: v.astype(np.float32) for k, v in np.load(path).items()} for key, path in paths.items()}
    maps["mirror"] = {k: np.clip(2 * maps["flipped"][k] - maps["image"][k], 0, 1) for k in maps["image"]}
    return maps


def score(views: list[dict[str, np.ndarray]], part: str, records) -> tuple[float, float, float, float]:
    metrics = PixelMetrics(0.5)
    for record in records:
        probability = np.mean([view[f"{part}/{record.name}"] for view in views], axis=0)
        metrics.update(probability, record.load_mask(probability.shape), name=record.name)
    kinds = {record.name: record.kind for record in records}
    every = miss_summary(metrics.tampered_images)
    copy_move = miss_summary([image for image in metrics.tampered_images if kinds[image.name] == "copy-move"])
    return every["f1_per_image@0.5"], metrics.pooled()["auc"], every["missed_share"], copy_move["missed_share"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the CASIA v1.0 folder")
    parser.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR (repeat)")
    parser.add_argument("--cache", type=Path, default=Path("build/ensemble_study"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    tampered = [r for r in load_source("casia1", args.root, synthetic_count=0) if r.is_tampered]
    parts = {part: select_records(tampered, part, protocol="grouped")[0] for part in PARTS}
    runs = dict(item.split("=", 1) for item in args.run)
    maps = {name: cached_maps(name, spec, parts, args.cache) for name, spec in runs.items()}
    print("combination | arrangement | validation F1 / AUC / missed (copy-move) | test F1 / AUC / missed (copy-move)")
    for count in range(1, len(runs) + 1):
        for combination in itertools.combinations(runs, count):
            arrangements = {"image": [maps[name]["image"] for name in combination],
                            "image+mirror": [maps[name][key] for name in combination for key in ("image", "mirror")]}
            if count > 1:  # one view each, the views alternating: every way to deal them
                for order in itertools.permutations(combination):
                    mirrored = sorted(order[0::2])
                    arrangements[f"mirror: {', '.join(mirrored)}"] = [maps[name]["mirror" if name in mirrored else "image"]
                                                                      for name in combination]
            for arrangement, views in arrangements.items():
                cells = []
                for part in PARTS:
                    f1, auc, missed, copy_move = score(views, part, parts[part])
                    cells.append(f"{f1:.3f} / {auc:.3f} / {missed:.1%} ({copy_move:.1%})")
                print(f"{' + '.join(combination)} | {arrangement} | {cells[0]} | {cells[1]}", flush=True)


if __name__ == "__main__":
    main()
