"""Training throughput on this machine's CPU, settings side by side in one process (issue 35: measure first).

    python benchmarks/bench_train_cpu.py [--size 384] [--steps 8] [--settings jit=auto jit=off jit=on batch=8 threads=1]

Each setting builds the shipped training network (stride 16, F3 decoder), compiles it with Adam and BCE + Dice and
times ``--steps`` training steps on random batches after two warm-up steps (tracing and XLA compilation excluded).
Prints images/s and megapixels/s per setting and the ratio to the first. The backend is whatever KERAS_BACKEND
says (run it once per backend). Results go in benchmarks/RESULTS.md with the date and the machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def measure(size: int, steps: int, batch: int, jit) -> float:
    import keras

    from pmsp_utils.network import build_pmsp
    from pmsp_utils.train import make_loss

    keras.utils.set_random_seed(0)
    model = build_pmsp(size, output_stride=16, decoder="f3", weights=None, verbose=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=make_loss("bce+dice"), jit_compile=jit)
    rng = np.random.default_rng(0)
    inputs = {"rgb": rng.integers(0, 255, (batch, size, size, 3)).astype(np.float32),
              "ela": rng.integers(0, 20, (batch, size, size, 3)).astype(np.float32)}
    target = (rng.random((batch, size, size, 1)) < 0.1).astype(np.float32)
    for _ in range(2):
        model.train_on_batch(inputs, target)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(inputs, target)
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--settings", nargs="+", default=["jit=auto", "jit=off", "jit=on", "batch=8"])
    args = parser.parse_args()
    import keras

    first = None
    print(f"backend {keras.backend.backend()}, input {args.size}x{args.size}, {os.cpu_count()} CPUs")
    for setting in args.settings:
        name, value = setting.split("=")
        jit, batch = "auto", 4
        if name == "jit":
            jit = {"auto": "auto", "on": True, "off": False}[value]
        elif name == "batch":
            batch = int(value)
        rate = measure(args.size, args.steps, batch, jit)
        first = first or rate
        print(f"{setting:10s} {rate:6.2f} images/s  {rate * args.size ** 2 / 1e6:5.3f} Mpx/s  x{rate / first:.2f}", flush=True)


if __name__ == "__main__":
    main()
