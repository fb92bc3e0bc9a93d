"""GPU training speed: the on-disk input pipeline against arrays in memory, and mixed precision (issue 10).

Run on a GPU (Keras 3 on JAX there, see ../shared/gpu/README.md): one process
builds the network once, compiles its training step on arrays in memory, then
times whole epochs over the same training images, interleaved round by round:

- ``arrays``: the pipeline's own batches, made once, as arrays in memory (``fit`` on NumPy);
- ``sequence-memory``: the training pipeline as ``pmsp train`` runs it by default (inputs read
  from the on-disk input cache, flips and targets per batch, batches built ahead by the
  sequence's threads; decoded images also kept in memory, for JPEG re-saves);
- ``sequence-disk``: the same with ``cache_in_memory=False``, nothing kept in the process;
- ``sequence-disk-keras-workers``: that pipeline behind Keras' own worker threads, which start
  again every epoch, instead of the sequence's threads (how the first GPU call ran it).

Target: the on-disk pipeline at least 0.9x the arrays' training images/s. Then
the same network under ``mixed_bfloat16`` on the arrays, against float32, with
the loss of each timed epoch (the same images and order) to show it trains.

    python benchmarks/bench_gpu_pipeline.py --root CASIA1 --size 576 --batch 16 --out gpu_pipeline.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np


def _epoch(model, data, **fit_args) -> tuple[float, float]:
    start = time.perf_counter()
    history = model.fit(data, epochs=1, verbose=0, **fit_args)
    return time.perf_counter() - start, float(history.history["loss"][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="CASIA v1.0 folder")
    parser.add_argument("--size", type=int, default=576)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--images", type=int, default=0, help="training images timed per epoch (0: all; few images "
                        "make the pipeline's start-up each epoch weigh more than in training)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-mixed", dest="mixed", action="store_false", help="skip the mixed-precision part")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import keras

    from pmsp_utils.ela import ElaCache, ElaSettings
    from pmsp_utils.train import TrainConfig, accelerator, build_model, make_sequence, screen_records, training_records

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_pipeline_prefetch import keras_workers

    base = dict(data="casia1", root=args.root, input_size=args.size, batch_size=args.batch, split="grouped",
                workers=args.workers, loss="bce+dice", weights=None, recompress=0.0)
    train_records = training_records(TrainConfig(**base), echo=lambda line: None)[0][: args.images or None]
    ela_cache = ElaCache(settings=ElaSettings())
    loaded = screen_records(train_records, train_records[:1], ela_cache, echo=lambda line: None)[2]  # decoded; the ELA cache filled

    # The arrays: exactly what the pipeline feeds, without flips, resized once.
    plain = make_sequence(train_records, TrainConfig(**base, cache_in_memory=False), shuffle=False, augment=False, ela_cache=ela_cache)
    batches = [plain[index] for index in range(len(plain))]
    arrays = ({key: np.concatenate([b[0][key] for b in batches]) for key in batches[0][0]}, np.concatenate([b[1] for b in batches]))
    sequences = {
        "sequence-memory": make_sequence(train_records, TrainConfig(**base), shuffle=True, augment=True, ela_cache=ela_cache,
                                         preloaded=loaded),
        "sequence-disk": make_sequence(train_records, TrainConfig(**base, cache_in_memory=False), shuffle=True, augment=True, ela_cache=ela_cache),
        # the disk pipeline behind Keras' own workers instead of the sequence's threads (as in the first GPU call)
        "sequence-disk-keras-workers": keras_workers(make_sequence(train_records, TrainConfig(**{**base, "workers": 1}, cache_in_memory=False),
                                                                   shuffle=True, augment=True, ela_cache=ela_cache), args.workers),
    }
    result = {"date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(), "keras": keras.__version__,
              "device": accelerator() or platform.processor(), "size": args.size, "batch": args.batch,
              "images_per_epoch": len(train_records), "workers": args.workers, "rounds": args.rounds}

    def write():
        args.out.write_text(json.dumps(result, indent=2))

    model = build_model(TrainConfig(**base), verbose=False)
    start = time.perf_counter()
    _epoch(model, arrays[0], y=arrays[1], batch_size=args.batch, shuffle=False)  # compiles the step (and the last, smaller batch)
    result["first_epoch_s"] = round(time.perf_counter() - start, 1)
    times: dict[str, list[float]] = {"arrays": [], **{name: [] for name in sequences}}
    losses: dict[str, list[float]] = {"arrays": []}
    for _ in range(args.rounds):
        seconds, loss = _epoch(model, arrays[0], y=arrays[1], batch_size=args.batch, shuffle=False)
        times["arrays"].append(seconds)
        losses["arrays"].append(loss)
        for name, sequence in sequences.items():
            times[name].append(_epoch(model, sequence, shuffle=False)[0])
        result["train_images_per_s"] = {name: round(len(train_records) / min(values), 1) for name, values in times.items()}
        result["epoch_seconds"] = {name: [round(v, 2) for v in values] for name, values in times.items()}
        result["ratio_to_arrays"] = {name: round(min(times["arrays"]) / min(values), 3) for name, values in times.items()}
        write()
    print(json.dumps(result, indent=2), flush=True)
    if not args.mixed:
        return

    # Mixed precision: a fresh network of each kind from the same seed, the same arrays in the same order.
    fresh = {}
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        model = build_model(TrainConfig(**base), verbose=False)
        start = time.perf_counter()
        first = _epoch(model, arrays[0], y=arrays[1], batch_size=args.batch, shuffle=False)
        runs = [_epoch(model, arrays[0], y=arrays[1], batch_size=args.batch, shuffle=False) for _ in range(args.rounds)]
        prediction = np.asarray(model.predict(
            {key: value[: args.batch] for key, value in arrays[0].items()}, verbose=0), dtype=np.float32)
        fresh[policy] = {"first_epoch_s": round(time.perf_counter() - start - sum(r[0] for r in runs), 1),
                         "train_images_per_s": round(len(train_records) / min(r[0] for r in runs), 1),
                         "losses": [round(first[1], 4)] + [round(r[1], 4) for r in runs],
                         "prediction_finite": bool(np.isfinite(prediction).all()),
                         "prediction_mean": round(float(prediction.mean()), 4)}
        result["mixed_precision"] = fresh
        write()
    keras.mixed_precision.set_global_policy("float32")
    result["mixed_precision"]["speedup"] = round(fresh["mixed_bfloat16"]["train_images_per_s"] / fresh["float32"]["train_images_per_s"], 3)
    write()
    print(json.dumps(result["mixed_precision"], indent=2), flush=True)


if __name__ == "__main__":
    main()
