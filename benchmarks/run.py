"""Benchmarks of the tutorial suite: figures a person can compare, as ratios within one run.

    python benchmarks/run.py            # print the table
    python benchmarks/run.py --record   # also append it, with date and machine, to RESULTS.md

ELA: images per second of ``pmsp_utils.ela.ela`` (format handling, EXIF, checks)
against plain Pillow code doing the same save/open/subtract, on the same files,
interleaved, best of several rounds; at 576x576 and 1920x1080, on one core and
on all cores (threads). Then a cold and a warm pass of ``ela_dataset`` through
the on-disk cache. Targets: ratio >= 0.95 against plain Pillow; warm pass >= 10x.

Synthetic forgeries: images per second on one core at 576x576 (target >= 50),
beside plain JPEG round trips of a 576x576 photo as the reference for the machine.

Model (bench_model.py) and ``pmsp localize`` (bench_localize.py): see their docstrings.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

import pmsp_utils
from pmsp_utils.data import load_photo
from pmsp_utils.data.synthetic import SyntheticForgerySet
from pmsp_utils.ela import ela, ela_dataset
from synthetic_photos import make_images  # noqa: E402

HERE = Path(__file__).resolve().parent


def plain_pillow_ela(path) -> np.ndarray:
    """The straightforward ELA a user would write: open, save at 90, reopen, subtract."""
    image = Image.open(path).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    buffer.seek(0)
    resaved = Image.open(buffer).convert("RGB")
    return np.abs(np.asarray(image, dtype=np.int16) - np.asarray(resaved, dtype=np.int16)).astype(np.uint8)


def throughput(function, paths, workers: int) -> float:
    """Images per second of ``function`` over ``paths`` with ``workers`` threads (1: a plain loop)."""
    start = time.perf_counter()
    if workers == 1:
        for path in paths:
            function(path)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(function, paths))
    return len(paths) / (time.perf_counter() - start)


def best_of(rounds: int, measure) -> float:
    return max(measure() for _ in range(rounds))


def benchmark_ela(paths, workers: int, rounds: int) -> tuple[float, float]:
    """(pmsp images/s, plain images/s), interleaved rounds, best of each."""
    pmsp_rates, plain_rates = [], []
    for _ in range(rounds):
        plain_rates.append(throughput(plain_pillow_ela, paths, workers))
        pmsp_rates.append(throughput(ela, paths, workers))
    return max(pmsp_rates), max(plain_rates)


def benchmark_cache(paths, workers: int) -> tuple[float, float]:
    """(cold images/s, warm images/s) of ela_dataset through a fresh on-disk cache.

    Each pass reads every byte of every map it returns, so a lazy result cannot look fast.
    """
    with tempfile.TemporaryDirectory() as folder:
        cold = _timed_pass(paths, folder, workers)
        warm = best_of(3, lambda: _timed_pass(paths, folder, workers))
    return cold, warm


def _timed_pass(paths, folder, workers) -> float:
    start = time.perf_counter()
    for ela_map in ela_dataset(paths, cache=folder, workers=workers, show_progress=False):
        ela_map.max()
    return len(paths) / (time.perf_counter() - start)


def benchmark_synthetic(count: int, rounds: int) -> tuple[float, float]:
    """(synthetic images/s on one core, the same count of plain JPEG encode+decode round trips/s)."""
    forgeries = SyntheticForgerySet(count, seed=123)
    forgeries[0]  # decode the packaged photos once, outside the timing
    photo = np.asarray(Image.fromarray(load_photo("china")).resize((576, 576)))

    def generate() -> float:
        start = time.perf_counter()
        for index in range(count):
            forgeries[index]
        return count / (time.perf_counter() - start)

    def round_trips() -> float:
        start = time.perf_counter()
        for _ in range(count):
            buffer = io.BytesIO()
            Image.fromarray(photo).save(buffer, format="JPEG", quality=85)
            np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
        return count / (time.perf_counter() - start)

    return best_of(rounds, generate), best_of(rounds, round_trips)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, Pillow {Image.__version__}"


def ela_tables(quick: bool, rounds: int, cores: int) -> list[str]:
    """The ELA throughput table and the cache table."""
    lines = [
        f"Best of {rounds} interleaved rounds. Plain Pillow = open, convert RGB, save JPEG 90 to memory, reopen, subtract in int16.",
        "",
        "| images | workers | pmsp_utils.ela (img/s) | plain Pillow (img/s) | ratio (target >= 0.95) |",
        "|---|---|---|---|---|",
    ]
    cache_rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size, count in (((576, 576), 8 if quick else 64), ((1920, 1080), 4 if quick else 16)):
            paths = make_images(Path(folder), size, count)
            for workers in sorted({1, cores}):
                pmsp, plain = benchmark_ela(paths, workers, rounds)
                lines.append(f"| {count} x {size[0]}x{size[1]} JPEG | {workers} | {pmsp:.1f} | {plain:.1f} | {pmsp / plain:.2f} |")
                print(lines[-1], flush=True)
            cold, warm = benchmark_cache(paths, cores)
            cache_rows.append(f"| {count} x {size[0]}x{size[1]} JPEG | {cores} | {cold:.1f} | {warm:.1f} | {warm / cold:.1f}x |")
            print(cache_rows[-1], flush=True)
    return lines + [
        "",
        "Cached second pass (`ela_dataset` with the on-disk cache: first pass computes and stores, second reads back):",
        "",
        "| images | workers | first pass (img/s) | second pass (img/s) | speed-up (target >= 10x) |",
        "|---|---|---|---|---|",
        *cache_rows,
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds (a check that it runs)")
    parser.add_argument("--only", choices=("data", "model", "localize"),
                        help="run one part: ELA and synthetic data, the model, or pmsp localize")
    parser.add_argument("--size", type=int, default=576, help="model input size for the model benchmark")
    parser.add_argument("--localize-weights", default="casia1", help="a shipped name or a run folder for the localize benchmark")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    lines = [f"### {datetime.date.today().isoformat()}", "", f"Machine: {machine()}; pmsp_utils {pmsp_utils.__version__}.", ""]
    if args.only in (None, "data"):
        lines += ela_tables(args.quick, rounds, os.cpu_count() or 1)
        lines += synthetic_table(20 if args.quick else 100, rounds)
    if args.only in (None, "model"):
        from bench_model import report as model_report

        lines += model_report(args.size, quick=args.quick)
    if args.only in (None, "localize"):
        from bench_localize import report as localize_report

        lines += localize_report(quick=args.quick, weights=args.localize_weights)
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    if args.record:
        results = HERE / "RESULTS.md"
        existing = results.read_text() if results.exists() else "# Benchmark results\n\nNewest first. Produced by `python benchmarks/run.py --record`.\n\n"
        head, _, rest = existing.partition("\n### ")
        results.write_text(head.rstrip() + "\n\n" + report + ("\n### " + rest if rest else ""))
        print(f"recorded in {results}")
    return 0


def synthetic_table(count: int, rounds: int) -> list[str]:
    synthetic, round_trip = benchmark_synthetic(count, rounds)
    rows = [
        "",
        "Synthetic forgery set (`SyntheticForgerySet`, 576x576, one core, one process):",
        "",
        "| generated images/s (target >= 50) | plain JPEG encode+decode round trips/s | round trips per generated image |",
        "|---|---|---|",
        f"| {synthetic:.1f} | {round_trip:.1f} | {round_trip / synthetic:.1f} |",
    ]
    print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
