"""The ``pmsp`` command line.

- ``pmsp notebooks``: execute the tutorial notebooks headlessly (the suite's main job).
- ``pmsp ela IMAGE... --out DIR``: write ELA maps of images as PNG files.
- ``pmsp train --data synthetic|casia1|casia2|folder [--root PATH] --run-dir DIR``: train, or ``--resume``.
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


def _train(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from dataclasses import fields

    from .train import TrainConfig, train, training_records

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    values["weights"] = None if args.weights in {"none", "None", ""} else args.weights
    config = TrainConfig(**values)
    config.check()
    train_records, validation_records, _, protocol = training_records(config, include_authentic=args.include_authentic)
    _, history = train(config, train_records, validation_records, args.run_dir, resume=args.resume, split_protocol=protocol)
    if history:
        best = min(history, key=lambda row: row["val_loss"])
        print(f"best epoch {int(best['epoch']) + 1}: val_loss {best['val_loss']:.4f}, val per-image F1@0.5 {best['val_f1']:.3f}, "
              f"val pooled AUC {best['val_auc']:.3f}")
    print(f"run directory: {args.run_dir} (model.keras, best.weights.h5, history.csv, config.json, splits/)")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


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

    train_command = commands.add_parser("train", help="train the network (the paper's recipe by default)")
    train_command.add_argument("--data", choices=("synthetic", "casia1", "casia2", "folder"), default="synthetic")
    train_command.add_argument("--root", help="folder of the dataset (default: PMSP_DATA_DIR/<data>)")
    train_command.add_argument("--run-dir", required=True, type=Path, help="where checkpoints, history and the model go")
    train_command.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    train_command.add_argument("--epochs", type=_positive_int, default=50)
    train_command.add_argument("--batch-size", type=_positive_int, default=4)
    train_command.add_argument("--input-size", type=_positive_int, default=576, help="a multiple of 192 (default 576)")
    train_command.add_argument("--learning-rate", type=_positive_float, default=1e-4)
    train_command.add_argument("--patience", type=_positive_int, default=5, help="early stopping on validation loss")
    train_command.add_argument("--loss", choices=("bce", "bce+dice", "focal"), default="bce")
    train_command.add_argument("--positive-weight", type=_positive_float, default=1.0, help="weight of tampered pixels in BCE")
    train_command.add_argument("--schedule", choices=("constant", "cosine", "plateau"), default="constant",
                               help="plateau: learning rate x0.3 after 2 epochs without a better validation loss")
    train_command.add_argument("--init-from", help="start from a whole model's .weights.h5, e.g. another run's best.weights.h5")
    train_command.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute (on a GPU)")
    train_command.add_argument("--no-augment", dest="augment", action="store_false", help="no flips")
    train_command.add_argument("--seed", type=int, default=0)
    train_command.add_argument("--weights", default="imagenet", help="'imagenet', a legacy .h5 path, or 'none'")
    train_command.add_argument("--attention", choices=("features", "blocks", "none"), default="features")
    train_command.add_argument("--fusion", choices=("add", "concat"), default="add")
    train_command.add_argument("--streams", choices=("both", "rgb", "ela"), default="both")
    train_command.add_argument("--synthetic-count", type=_positive_int, default=400)
    train_command.add_argument("--workers", type=_positive_int, default=2)
    train_command.add_argument("--max-train-images", type=_positive_int, default=None)
    train_command.add_argument("--include-authentic", action="store_true", help="also train on authentic images (all-zero masks)")
    train_command.set_defaults(handler=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
