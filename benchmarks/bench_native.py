"""Native resolution against the resize policy: seconds and peak memory of ``pmsp localize`` (issue 35, part 5).

    python benchmarks/bench_native.py --weights MODEL [--reference casia1-forged] [--runtime litert]

Times, in one run on the same machine: a 576x576 JPEG and a 12-megapixel (4000x3000) JPEG, each through the
command's own path (decode, ELA at full resolution, the network, the three pictures written), with ``--weights``
under its own policy (``native``: the photo in overlapping tiles at its own pixels) and with ``--reference`` under
its own (``resize``: the photo squeezed to the network's square). Seconds per image are measured in this process after
a warm-up (LiteRT's copies exported first); peak resident memory of a whole fresh ``pmsp localize`` process is read
for the 12 MP photo. Targets: the 576 JPEG at most 0.15 s, the 12 MP JPEG at most 8 s and 1.5 GB, on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from bench_memory import peak_of  # noqa: E402


def photo(path: Path, height: int, width: int, seed: int = 0) -> Path:
    """A JPEG of smooth random content with some texture (quality 90)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)).astype(np.int16)
    image = np.clip(image + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(path, quality=90)
    return path


def seconds(model, path: Path, out: Path, rounds: int) -> float:
    from pmsp_utils.localize_outputs import write_outputs
    from pmsp_utils.pipeline import localize

    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        result = localize(model, path)
        write_outputs(out, path.stem, path, result.image, result.probability, 0.5, model.settings.score_calibration)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="the model under test (a shipped name, run folder or .keras file)")
    parser.add_argument("--reference", default="casia1-forged", help="the reference model, timed in the same run")
    parser.add_argument("--runtime", default="litert")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from pmsp_utils.runtime import load_for_inference

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        small, large = photo(folder / "square576.jpg", 576, 576), photo(folder / "photo12mp.jpg", 3000, 4000, seed=1)
        out = folder / "out"
        out.mkdir()
        for label, spec in (("under test", args.weights), ("reference", args.reference)):
            model = load_for_inference(spec, runtime=args.runtime, echo=lambda line: None)
            seconds(model, small, out, 1)  # warm-up
            command = [sys.executable, "-m", "pmsp_utils.cli", "localize", "--weights", spec, "--runtime", args.runtime,
                       str(large), "--out", str(folder / f"peak_{label.replace(' ', '_')}")]
            rows.append({"model": f"{spec} ({label})", "policy": model.settings.policy, "input": model.settings.input_size,
                         "576 JPEG s": seconds(model, small, out, args.rounds), "12 MP s": seconds(model, large, out, max(1, args.rounds - 1)),
                         "12 MP peak MB": peak_of(command, env)})
    print(f"pmsp localize, {os.cpu_count()} CPUs, runtime {args.runtime}; best of {args.rounds} rounds; peak: a fresh process")
    print(f"{'model':44s} {'policy':7s} {'input':>5s} {'576 s':>6s} {'12MP s':>7s} {'12MP peak':>10s}")
    for row in rows:
        print(f"{row['model'][:44]:44s} {row['policy']:7s} {row['input']:5d} {row['576 JPEG s']:6.3f} {row['12 MP s']:7.2f} "
              f"{row['12 MP peak MB']:8.0f} MB")
    first, second = rows
    print(f"ratios under test / reference: 576 JPEG {first['576 JPEG s'] / second['576 JPEG s']:.2f}x, 12 MP {first['12 MP s'] / second['12 MP s']:.2f}x, "
          f"peak {first['12 MP peak MB'] / second['12 MP peak MB']:.2f}x")


if __name__ == "__main__":
    main()
