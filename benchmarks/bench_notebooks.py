"""How long `make run` takes, notebook by notebook: the newcomer's first command, in full mode on the embedded data.

    python benchmarks/bench_notebooks.py [--only 04 06] [--with-data]

Executes the numbered notebooks as ``pmsp notebooks`` does (full mode, not smoke), into a temporary folder (the
committed notebooks are not touched), without ``PMSP_DATA_DIR`` unless ``--with-data`` (then the maintainers' full
run with CASIA). Prints each notebook's seconds, its share of the total and the total against the 5-minute target
(issue 25), so the slow one shows. Installs are not counted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

TARGET_SECONDS = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="notebook numbers or names (default: all)")
    parser.add_argument("--with-data", action="store_true", help="keep PMSP_DATA_DIR (default: the embedded data, as make run)")
    args = parser.parse_args()
    if not args.with_data:
        os.environ.pop("PMSP_DATA_DIR", None)
    os.environ["PMSP_SMOKE"] = "0"
    from pmsp_utils.notebooks import find_notebooks, run_notebooks

    notebooks = [path for path in find_notebooks() if not args.only or any(path.name.startswith(item) or path.stem == item for item in args.only)]
    with tempfile.TemporaryDirectory() as folder:
        runs = run_notebooks(notebooks, Path(folder), smoke=False, echo=lambda message: None)
    total = sum(run.seconds for run in runs)
    print(f"notebooks in full mode ({'with PMSP_DATA_DIR' if args.with_data else 'embedded data, as make run'}), "
          f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}:")
    for run in runs:
        print(f"  {run.source.name:34s} {run.seconds:6.0f} s  {run.seconds / total:5.1%}")
    verdict = f"target {TARGET_SECONDS} s: {'met' if total <= TARGET_SECONDS else 'not met'}" if not args.only else "some notebooks only: no target"
    print(f"  {'total':34s} {total:6.0f} s  ({verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
