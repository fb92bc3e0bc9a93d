"""Peak memory of ``pmsp compare`` on large per-image tables, as a ratio against the tables' size on disk (same run).

    python benchmarks/bench_compare_memory.py [--rows 1500000]

Writes two per-image tables shaped like ``pmsp evaluate``'s (``method, dataset, image, kind, f1@0.5``; CASIA-like
names), runs ``pmsp compare`` on them in a fresh process and reads its peak resident memory, then the same for a
table of a tenth of the rows, whose peak is mostly the interpreter and NumPy: the difference over the difference in
size is what each byte of table costs in memory (issue 38: it was about ten times).
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
from pathlib import Path


def write_table(path: Path, rows: int, seed: int) -> int:
    generator = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "dataset", "image", "kind", "f1@0.5"])
        for index in range(rows):
            writer.writerow(["PMSP (shipped casia1-forged)", "casia1", f"Tp_S_NRN_S_N_arc{index:07d}_arc{index:07d}_{index % 9999:05d}",
                             "copy-move" if index % 2 else "splicing", f"{generator.random():.4f}"])
    return path.stat().st_size


def peak_of(a: Path, b: Path) -> float:
    """Peak resident memory (MB) of ``pmsp compare a b`` in a fresh child process."""
    code = ("import resource, sys; from pmsp_utils.cli import main; main(['compare', sys.argv[1], sys.argv[2]]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, str(a), str(b)], capture_output=True, text=True)
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_500_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        sizes, peaks = {}, {}
        for label, rows in (("small", args.rows // 10), ("large", args.rows)):
            size = write_table(folder / f"{label}_a.csv", rows, 0) + write_table(folder / f"{label}_b.csv", rows, 1)
            sizes[label], peaks[label] = size / 2**20, peak_of(folder / f"{label}_a.csv", folder / f"{label}_b.csv")
            print(f"{label}: two tables of {rows} rows, {sizes[label]:.0f} MB on disk, peak {peaks[label]:.0f} MB")
        ratio = (peaks["large"] - peaks["small"]) / (sizes["large"] - sizes["small"])
        print(f"memory per byte of table: {ratio:.2f} (peak minus the small run's, over the size difference)")


if __name__ == "__main__":
    main()
