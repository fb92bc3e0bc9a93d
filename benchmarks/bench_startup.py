"""What a user waits for when trying one photo: ``pmsp localize ONE.jpg`` from the shell, start-up included.

    python benchmarks/bench_startup.py [--weights casia1] [--rounds 3]

Times the whole command in fresh processes (best of ``--rounds``) on one 384x256
JPEG: with the light runtime's LiteRT copy already exported (what every run after
the first gets), on Keras (``--runtime keras``), and the first run that exports the
copy (each round on an empty cache; ``--first-only`` times only that). Then splits the Keras path into its steps, each in a fresh process: importing
TensorFlow and Keras, building the model and loading its weights (folded), and the
first forward pass (tracing). Target: at most 6 s for one image on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="casia1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--first-only", action="store_true", help="time only the first run (which exports), each round on an empty cache")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        image = folder / "one.jpg"
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (256, 384, 3), dtype=np.uint8)).save(image, quality=90)
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        pmsp = [sys.executable, "-m", "pmsp_utils.cli", "localize", str(image), "--weights", args.weights]
        first = min(timed(pmsp + ["--out", str(folder / f"first{i}"), "--runtime", "auto"], {**environment, "PMSP_CACHE_DIR": str(folder / f"cache{i}")})
                    for i in range(args.rounds))
        if args.first_only:
            print(f"the first run, which exports the LiteRT copy: {first:.2f} s (best of {args.rounds}, each on an empty cache)")
            return
        env = {**environment, "PMSP_CACHE_DIR": str(folder / "cache0")}
        lite = min(timed(pmsp + ["--out", str(folder / f"lite{i}"), "--runtime", "litert"], env) for i in range(args.rounds))
        keras = min(timed(pmsp + ["--out", str(folder / f"keras{i}"), "--runtime", "keras"], env) for i in range(args.rounds))
        python = [sys.executable, "-c"]
        bare = min(timed(python + ["import numpy, PIL.Image, pmsp_utils.cli"], env) for _ in range(args.rounds))
        imports = min(timed(python + ["import tensorflow, keras"], env) for _ in range(args.rounds))
        load = min(timed(python + [f"import keras; from pmsp_utils.models import load_model; load_model({args.weights!r}, inference=True)"], env)
                   for _ in range(args.rounds))
        step = (f"import numpy as np; from pmsp_utils.models import load_model; m = load_model({args.weights!r}, inference=True); "
                "s = m.settings.input_size; m.model.predict_on_batch({n: np.zeros((1, s, s, 3), np.float32) for n in ('rgb', 'ela')})")
        forward = min(timed(python + [step], env) for _ in range(args.rounds))
    print(f"`pmsp localize ONE.jpg --weights {args.weights}` from the shell, one 384x256 JPEG, {os.cpu_count()} cores, best of {args.rounds} fresh processes:")
    print()
    print("| what | seconds |")
    print("|---|---|")
    print(f"| LiteRT copy already exported (every run after the first) | **{lite:.2f}** |")
    print(f"| Keras (`--runtime keras`) | {keras:.2f} |")
    print(f"| the first run, which exports the LiteRT copy | {first:.2f} |")
    print(f"| Keras path, step by step: Python, NumPy, Pillow and the package | {bare:.2f} |")
    print(f"| ... + importing TensorFlow and Keras | {imports:.2f} |")
    print(f"| ... + building the model, loading and folding its weights | {load:.2f} |")
    print(f"| ... + the first forward pass (tracing) | {forward:.2f} |")
    print(f"\nKeras / LiteRT: {keras / lite:.1f}x")


if __name__ == "__main__":
    main()
