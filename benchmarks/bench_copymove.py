"""Copy-move matcher speed and memory (issue 36, part 5): seconds per 1-megapixel photo, peak memory on 12 MP.

    python benchmarks/bench_copymove.py [--rounds 3] [--against REV]

Speed: ``copymove.detect`` on a 1-megapixel JPEG (a packaged photo resized to 1155x866, one block copied), as a ratio
against a reference in the same process: ELA of the same photo (one JPEG re-save and a difference), the cheapest
full-image operation of the suite. Memory: ``detect`` on a 12-megapixel (4000x3000) photo in a fresh process, its peak
resident memory against the same process's peak after only decoding the photo. Targets: at most 2 s per 1 MP on 2
cores; memory bounded on 12 MP (the matcher works on at most copymove.WORKING_PIXELS pixels).

``--against REV``: also time ``pmsp_utils/copymove.py`` as it was at git revision REV, loaded in this same process, on
the 1 MP photo and on the packaged photos with one block copied, alternating the two; the ratio is new over old, and
a change meant to be a speed-up only must find the same pairs (offsets, scores, regions), which is checked.
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


def module_at(revision: str):
    """pmsp_utils/copymove.py as it was at git ``revision``, as a module of its own (it imports nothing of the package)."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "-C", str(root), "show", f"{revision}:pmsp_utils/copymove.py"], capture_output=True,
                            text=True, check=True).stdout
    folder = Path(tempfile.mkdtemp())
    (folder / "copymove_then.py").write_text(source)
    spec = importlib.util.spec_from_file_location("copymove_then", folder / "copymove_then.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["copymove_then"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def same_pairs(first, second) -> bool:
    return len(first.pairs) == len(second.pairs) and all(
        a.offset == b.offset and a.score == b.score and np.array_equal(a.region_a, b.region_a) and np.array_equal(a.region_b, b.region_b)
        for a, b in zip(first.pairs, second.pairs))


def against(revision: str, rounds: int, photo: np.ndarray) -> None:
    from pmsp_utils import copymove
    from pmsp_utils.data.photos import load_photo, photo_names

    then = module_at(revision)
    photos = {"1 MP photo": photo}
    for name in photo_names():
        image = load_photo(name)
        if image.ndim == 3:
            image = image.copy()
            height, width = image.shape[:2]
            image[height // 2 : height // 2 + height // 5, width // 2 : width // 2 + width // 6] = image[
                height // 10 : height // 10 + height // 5, width // 10 : width // 10 + width // 6]
            photos[name] = image
    totals = {"then": 0.0, "now": 0.0}
    identical = 0
    for name, image in photos.items():
        seconds = {"then": float("inf"), "now": float("inf")}
        for _ in range(rounds):  # alternating, so that a slower minute of the machine falls on both
            for key, module in (("then", then), ("now", copymove)):
                started = time.perf_counter()
                result = module.detect(image)
                seconds[key] = min(seconds[key], time.perf_counter() - started)
                if key == "then":
                    before = result
        identical += same_pairs(before, result)
        totals["then"] += seconds["then"]
        totals["now"] += seconds["now"]
        print(f"  {name} {image.shape[1]}x{image.shape[0]}: {seconds['then']:.2f} s at {revision}, {seconds['now']:.2f} s now, "
              f"{len(result.pairs)} pair(s){'' if same_pairs(before, result) else ', NOT THE SAME PAIRS'}")
    print(f"against {revision}: {totals['now']:.2f} s / {totals['then']:.2f} s = {totals['now'] / totals['then']:.2f} of the time; "
          f"the same pairs on {identical} of {len(photos)} photos")


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
    parser.add_argument("--against", metavar="REV", help="also time copymove.py at this git revision, in this process")
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
    if args.against:
        against(args.against, args.rounds, photo)


if __name__ == "__main__":
    main()
