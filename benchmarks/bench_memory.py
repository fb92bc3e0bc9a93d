"""Peak memory of ``pmsp localize`` on a very large photo, as a ratio against a 12-megapixel one (same run).

    python benchmarks/bench_memory.py [--weights synthetic] [--runtime litert]

Writes a 12 MP (4000x3000) and an 80 MP (10328x7746) JPEG of smooth random content, runs the command on each
in a fresh process (the model's copy exported once first, so neither run pays for it) and reads each process's
peak resident memory. Target: the 80 MP peak at most 2x the 12 MP peak (issue 26).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def peak_of(command: list[str], env: dict) -> float:
    """Peak resident memory (MB) of ``command``, run to completion in a fresh child process."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", code, *command], env=env, capture_output=True, text=True, check=True)
    return int(done.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="synthetic")
    parser.add_argument("--runtime", default="litert")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        env = {**os.environ, "PMSP_CACHE_DIR": str(folder / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
        rng = np.random.default_rng(0)
        sizes = {"12 MP": (3000, 4000), "80 MP": (7746, 10328)}
        for name, (height, width) in sizes.items():
            coarse = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
            Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR).save(folder / f"{name[:2]}.jpg", quality=90)
        base = [sys.executable, "-m", "pmsp_utils.cli", "localize", "--weights", args.weights, "--runtime", args.runtime]
        subprocess.run(base + [str(folder / "12.jpg"), "--out", str(folder / "warm")], env=env, check=True, capture_output=True)
        peaks = {name: peak_of(base + [str(folder / f"{name[:2]}.jpg"), "--out", str(folder / name[:2])], env) for name in sizes}
    print(f"pmsp localize --weights {args.weights} --runtime {args.runtime}, peak resident memory of the whole process:")
    for name, peak in peaks.items():
        print(f"  {name}: {peak:.0f} MB")
    print(f"  80 MP / 12 MP: {peaks['80 MP'] / peaks['12 MP']:.1f}x (target at most 2x; pixels 6.7x)")


if __name__ == "__main__":
    main()
