"""The ``pmsp`` command line.

- ``pmsp notebooks``: execute the tutorial notebooks headlessly (the suite's main job).
- ``pmsp ela IMAGE... --out DIR``: write ELA maps of images as PNG files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


def _notebooks(args: argparse.Namespace) -> int:
    from .config import build_dir
    from .notebooks import find_notebooks, run_notebooks

    notebooks = [Path(p) for p in args.only] if args.only else find_notebooks(args.notebooks)
    out = (args.out or build_dir()).resolve()
    runs = run_notebooks(notebooks, out, in_place=args.in_place, smoke=True if args.smoke else None, timeout=args.timeout)
    print("\nExecuted notebooks:")
    for run in runs:
        print(f"  {run.executed}")
    print(f"Figures ({sum(len(run.figures) for run in runs)}): {out / 'figures'}")
    return 0


def _ela(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from .ela import ela
    from .images import ImageReadError
    from .viz import ela_for_display

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name in args.images:
        try:
            ela_map = ela(name, quality=args.quality, scaling=args.scaling)
        except (ImageReadError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            failures += 1
            continue
        picture = ela_map if args.scaling != "raw" else (ela_for_display(ela_map) * 255).astype(np.uint8)
        target = out / f"{Path(name).stem}_ela.png"
        Image.fromarray(picture).save(target)
        print(target)
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pmsp", description="The PMSP image-forensics tutorial suite.")
    parser.add_argument("--version", action="version", version=f"pmsp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("notebooks", help="execute the tutorial notebooks headlessly")
    run.add_argument("--out", type=Path, default=None, help="output folder (default: build/ in the checkout)")
    run.add_argument("--notebooks", type=Path, default=None, help="folder of numbered notebooks (default: the checkout's)")
    run.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebook files")
    run.add_argument("--smoke", action="store_true", help="smoke mode: every notebook in seconds")
    run.add_argument("--in-place", action="store_true", help="write executed notebooks over their sources")
    run.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    run.set_defaults(handler=_notebooks)

    ela_command = commands.add_parser("ela", help="write ELA maps of images as PNG files")
    ela_command.add_argument("images", nargs="+", help="image files")
    ela_command.add_argument("--out", required=True, help="output folder")
    ela_command.add_argument("--quality", type=int, default=90, help="re-save JPEG quality (1..100, default 90)")
    ela_command.add_argument("--scaling", choices=("raw", "fixed", "max"), default="max",
                             help="raw maps are display-stretched before saving (default: max)")
    ela_command.set_defaults(handler=_ela)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
