"""Average the weights of several models of one architecture (a "model soup", Wortsman et al., ICML 2022) into a run
folder that ``pmsp evaluate``, ``benchmarks/generalization.py`` and the ship script read like any other run.

    python benchmarks/average_weights.py OUT_RUN TEMPLATE_RUN MODEL[@WEIGHT] MODEL[@WEIGHT] ...

TEMPLATE_RUN gives the architecture and the split (its ``config.json`` and ``splits/`` are copied); each MODEL is a
shipped name (an ensemble gives its first member), a run folder, a ``.keras`` checkpoint or a whole model's
``.weights.h5``, filled into that architecture layer by layer by name (:func:`pmsp_utils.models.init_weights_from`).
Every variable, batch-normalisation statistics included, becomes the weighted mean (weights default to 1, normalised
to sum 1). Averaging makes sense for models fine-tuned from one start: they lie in one basin of the loss.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the run folder to write (must not exist)")
    parser.add_argument("template", type=Path, help="a run folder whose config.json and splits/ describe the network")
    parser.add_argument("models", nargs="+", help="MODEL or MODEL@WEIGHT")
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out}: exists; choose a new folder (nothing is overwritten).")

    from pmsp_utils.environment import keras_environment
    from pmsp_utils.models import init_weights_from
    from pmsp_utils.network import build_pmsp
    from pmsp_utils.run_folder import settings_of_run
    from pmsp_utils.safe_write import write_text_atomic

    keras_environment()
    settings = settings_of_run(args.template)
    specs = [entry.rpartition("@")[0] if "@" in entry else entry for entry in args.models]
    weights = np.array([float(entry.rpartition("@")[2]) if "@" in entry else 1.0 for entry in args.models])
    if (weights <= 0).any():
        parser.error("every weight must be positive.")
    weights = weights / weights.sum()
    model, total = None, None
    for spec, weight in zip(specs, weights):
        model = build_pmsp(**settings.architecture(), weights=None, verbose=False)
        try:  # strict: a layer the source lacks would enter the mean as random values
            print(init_weights_from(model, spec, strict=True), flush=True)
        except (ValueError, FileNotFoundError) as error:
            parser.error(str(error))
        values = [weight * np.asarray(variable, np.float64) for variable in model.weights]
        total = values if total is None else [sum_ + value for sum_, value in zip(total, values)]
    for variable, value in zip(model.weights, total):
        variable.assign(value.astype(np.float32))
    args.out.mkdir(parents=True)
    shutil.copy(args.template / "config.json", args.out / "config.json")
    if (args.template / "splits").is_dir():
        shutil.copytree(args.template / "splits", args.out / "splits")
    model.save_weights(args.out / "best.weights.h5")
    write_text_atomic(args.out / "average.json", json.dumps({"models": specs, "weights": weights.tolist()}, indent=2) + "\n")
    print(f"wrote {args.out} (the mean of {len(specs)} models)")


if __name__ == "__main__":
    main()
