"""The training pipeline against arrays in memory, with a stand-in for a GPU step (CPU only; issue 10).

A GPU cannot wait for the input pipeline. Without one, this proxy feeds a consumer that "steps" by
sleeping a fixed time per batch (default: 16 images at 570 images/s, the H200's rate from arrays in
``bench_gpu_pipeline.py``) through Keras' own data adapters, three ways, interleaved, best of N epochs:

- ``arrays``: the same batches, made once, as NumPy arrays (the reference);
- ``keras-workers``: the sequence with Keras' worker threads (started again every epoch; the pipeline
  before this change);
- ``prefetch``: the sequence as ``pmsp train`` now runs it (``workers=1`` for Keras, its own threads
  building the next batches, across epochs).

At 192x192 two threads assemble batches far faster than the consumer takes them, so what is left is
each way's overhead. Target: at least 0.9x of the arrays.

    python benchmarks/bench_pipeline_prefetch.py --root CASIA1 [--size 192] [--batches 16 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402


def keras_workers(sequence, workers: int):
    """``sequence`` (built with ``workers=1``: no prefetch of its own) behind Keras' own worker threads, which
    start again every epoch: the pipeline before its own prefetching threads."""
    import keras

    class KerasWorkers(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=workers, use_multiprocessing=False)

        def __len__(self) -> int:
            return len(sequence)

        def __getitem__(self, position):
            return sequence[position]

    return KerasWorkers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="CASIA v1.0 folder")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rate", type=float, default=570.0, help="images/s the stand-in step consumes")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 40], help="batches per epoch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import keras
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    from pmsp_utils.ela import ElaCache, ElaSettings
    from pmsp_utils.train import TrainConfig, make_sequence, training_records

    step = args.batch / args.rate
    base = dict(data="casia1", root=args.root, input_size=args.size, batch_size=args.batch, split="grouped", weights=None,
                cache_in_memory=False)
    every = training_records(TrainConfig(**base, workers=args.workers), echo=lambda line: None)[0]
    cache = ElaCache(settings=ElaSettings())

    def epoch_seconds(adapter) -> float:
        adapter.on_epoch_begin()
        start = time.perf_counter()
        for _ in adapter.get_numpy_iterator():
            time.sleep(step)
        adapter.on_epoch_end()
        return time.perf_counter() - start

    print(f"{platform.processor() or platform.machine()}, Keras {keras.__version__} on {keras.backend.backend()}; "
          f"{args.size}x{args.size}, batch {args.batch}, step {step * 1000:.0f} ms ({args.rate:.0f} images/s), "
          f"{args.workers} threads, best of {args.rounds}")
    print("| batches/epoch | arrays (s) | keras-workers (ratio) | prefetch (ratio) |")
    print("|---|---|---|---|")
    for count in args.batches:
        records = every[: count * args.batch]
        make = lambda workers: make_sequence(records, TrainConfig(**base, workers=workers), shuffle=True, augment=True,  # noqa: E731
                                             ela_cache=cache)
        batches = [make(1)[i] for i in range(count)]  # fills the input cache; the arrays' content
        x = {key: np.concatenate([b[0][key] for b in batches]) for key in batches[0][0]}
        y = np.concatenate([b[1] for b in batches])
        adapters = {"arrays": ArrayDataAdapter(x, y, batch_size=args.batch, shuffle=False),
                    "keras-workers": PyDatasetAdapter(keras_workers(make(1), args.workers), shuffle=False),
                    "prefetch": PyDatasetAdapter(make(args.workers), shuffle=False)}
        best = {name: min(epoch_seconds(adapter) for _ in range(1)) for name, adapter in adapters.items()}  # warm-up round
        for _ in range(args.rounds):
            for name, adapter in adapters.items():
                best[name] = min(best[name], epoch_seconds(adapter))
        print(f"| {count} | {best['arrays']:.2f} | {best['arrays'] / best['keras-workers']:.2f} | "
              f"{best['arrays'] / best['prefetch']:.2f} |")


if __name__ == "__main__":
    main()
