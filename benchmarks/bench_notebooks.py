"""How long `make run` takes, notebook by notebook: the newcomer's first command, in full mode on the embedded data.

    python benchmarks/bench_notebooks.py [--only 04 06] [--with-data] [--jobs 2]

Executes the numbered notebooks as ``make run`` does (full mode, not smoke, ``--jobs 2``: two kernels at once), into a
temporary folder (the committed notebooks are not touched), with an empty cache folder (``PMSP_CACHE_DIR``) as on a
fresh clone, and without ``PMSP_DATA_DIR`` unless ``--with-data`` (then the maintainers' full run with CASIA). Prints
each notebook's seconds (with two at once, each shares the cores with the other), the wall time against the 5-minute
target (issue 25), and the peak memory of all the kernels together. Installs are not counted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_SECONDS = 300


def peak_memory(stop: threading.Event, found: list[float]) -> None:
    """Sample the resident memory of this process's children (the kernels) every half second; the peak, in GB, goes
    into ``found``."""
    import psutil

    me, peak = psutil.Process(), 0
    while not stop.wait(0.5):
        total = 0
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # a kernel that has just ended
                pass
        peak = max(peak, total)
    found.append(peak / 2**30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="notebook numbers or names (default: all)")
    parser.add_argument("--with-data", action="store_true", help="keep PMSP_DATA_DIR (default: the embedded data, as make run)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks at once (default 2, as make run)")
    args = parser.parse_args()
    if not args.with_data:
        os.environ.pop("PMSP_DATA_DIR", None)
    os.environ["PMSP_SMOKE"] = "0"
    from pmsp_utils.notebooks import find_notebooks, run_notebooks

    notebooks = [path for path in find_notebooks() if not args.only or any(path.name.startswith(item) or path.stem == item for item in args.only)]
    stop, memory = threading.Event(), []
    sampler = threading.Thread(target=peak_memory, args=(stop, memory), daemon=True)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["PMSP_CACHE_DIR"] = str(Path(folder) / "cache")  # cold, as on a fresh clone
        sampler.start()
        start = time.perf_counter()
        runs = run_notebooks(notebooks, Path(folder), smoke=False, jobs=args.jobs, echo=lambda message: None)
        wall = time.perf_counter() - start
        stop.set()
        sampler.join()
    total = sum(run.seconds for run in runs)
    print(f"notebooks in full mode ({'with PMSP_DATA_DIR' if args.with_data else 'embedded data, as make run'}), {args.jobs} at once, "
          f"empty cache, {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}:")
    for run in runs:
        print(f"  {run.source.name:34s} {run.seconds:6.0f} s  {run.seconds / total:5.1%}")
    verdict = f"target {TARGET_SECONDS} s: {'met' if wall <= TARGET_SECONDS else 'not met'}" if not args.only else "some notebooks only: no target"
    print(f"  {'wall time':34s} {wall:6.0f} s  ({verdict}; the notebooks' own times add up to {total:.0f} s)")
    print(f"  peak memory of the kernels together: {memory[0]:.1f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
