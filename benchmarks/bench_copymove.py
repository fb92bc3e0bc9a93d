"""Copy-move matcher speed and memory (issue 36, part 5): seconds per 1-megapixel photo, peak memory on 12 MP.

    python benchmarks/bench_copymove.py [--rounds 3]

Speed: ``copymove.detect`` on a 1-megapixel JPEG (a packaged photo resized to 1155x866, one block copied), as a ratio
against a reference in the same process: ELA of the same photo (one JPEG re-save and a difference), the cheapest
full-image operation of the suite. Memory: ``detect`` on a 12-megapixel (4000x3000) photo in a fresh process, its peak
resident memory against the same process's peak after only decoding the photo. Targets: at most 2 s per 1 MP on 2
cores; memory bounded on 12 MP (the matcher works on at most copymove.WORKING_PIXELS pixels).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def forged_photo(width: int, height: int) -> np.ndarray:
    from pmsp_utils.data.photos import load_photo

    image = np.asarray(Image.fromarray(load_photo("coffee")).resize((width, height), Image.Resampling.BICUBIC))
    image = image.copy()
    block = (height // 5, width // 6)
    image[height // 2 : height // 2 + block[0], width // 2 : width // 2 + block[1]] = image[height // 10 : height // 10 + block[0],
                                                                                         width // 10 : width // 10 + block[1]]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=92)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def best_of(rounds: int, function) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


PEAK = """
import resource, sys, numpy as np
from PIL import Image
image = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
if sys.argv[2] == "detect":
    from pmsp_utils import copymove
    result = copymove.detect(image)
    print(len(result.pairs), end=" ")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from pmsp_utils import copymove
    from pmsp_utils.ela import ela

    photo = forged_photo(1155, 866)
    detect_seconds = best_of(args.rounds, lambda: copymove.detect(photo))
    ela_seconds = best_of(args.rounds, lambda: ela(photo))
    found = copymove.detect(photo)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "12mp.jpg"
        Image.fromarray(forged_photo(4000, 3000)).save(path, quality=92)
        peaks = {}
        for what in ("decode", "detect"):
            output = subprocess.run([sys.executable, "-c", PEAK, str(path), what], capture_output=True, text=True, check=True).stdout.split()
            peaks[what] = int(output[-1]) / 1024
            if what == "detect":
                pairs_12mp = int(output[0])
    print(f"{os.cpu_count()} CPUs; best of {args.rounds}")
    print(f"1 MP photo (1155x866): detect {detect_seconds:.2f} s ({len(found.pairs)} pair(s)), ELA {ela_seconds:.3f} s, "
          f"ratio {detect_seconds / ela_seconds:.0f}x the ELA reference (target: at most 2 s)")
    print(f"12 MP photo (4000x3000): peak {peaks['detect']:.0f} MB with detect ({pairs_12mp} pair(s)), {peaks['decode']:.0f} MB decoding "
          f"only: {peaks['detect'] - peaks['decode']:.0f} MB for the matcher (working scale {copymove.working_scale(3000, 4000):.2f})")


if __name__ == "__main__":
    main()
