"""The output-stride and decoder variants of the network, side by side in one process (issue 10).

For each variant at one input size (384 by default, batch 4, TensorFlow on the
CPU): parameters, multiply-adds (from the layer shapes), forward images per
second (``predict_on_batch``) and training images per second
(``train_on_batch``, BCE + Adam), interleaved rounds, best of each; and the
ceiling of its output grid: the mean per-image F1 at 0.5 of the best map the
grid allows (``pmsp_utils.metrics.perfect_map_f1``) on a set of masks
(a user's CASIA v1 copy under ``PMSP_DATA_DIR`` when present, else the
synthetic set). Ratios are against the paper's variant (stride 32, no decoder)
measured in the same rounds.

    python benchmarks/bench_variants.py [--size 384] [--record]
"""

from __future__ import annotations

import argparse

import numpy as np

VARIANTS = {
    "stride 32 (paper)": {"output_stride": 32, "decoder": "none"},
    "stride 16": {"output_stride": 16, "decoder": "none"},
    "stride 8": {"output_stride": 8, "decoder": "none"},
    "stride 32 + F3 decoder": {"output_stride": 32, "decoder": "f3"},
    "stride 16 + F3 decoder": {"output_stride": 16, "decoder": "f3"},
}


def ceiling_masks(limit: int = 200) -> tuple[list[np.ndarray], str]:
    """Masks to compute the grid ceilings on: CASIA v1 (tampered) if a copy is reachable, else synthetic."""
    from pmsp_utils.environment import dataset_folder
    from pmsp_utils.data.sources import load_source

    if dataset_folder("casia1") is not None:
        records = [record for record in load_source("casia1") if record.is_tampered]
        label = f"{min(limit, len(records))} CASIA v1 tampered masks"
    else:
        records = [record for record in load_source("synthetic", synthetic_count=200, size=384) if record.is_tampered]
        label = f"{min(limit, len(records))} synthetic tampered masks"
    records = sorted(records, key=lambda record: record.name)[:: max(1, len(records) // limit)][:limit]
    return [record.load_mask() for record in records], label


def measure(size: int = 384, batch: int = 4, steps: int = 3, rounds: int = 2) -> dict[str, dict]:
    import keras

    from pmsp_utils.network import build_pmsp
    from pmsp_utils.network.counting import multiply_adds

    from bench_model import interleaved_rates

    models = {}
    for name, settings in VARIANTS.items():
        keras.utils.set_random_seed(0)
        models[name] = build_pmsp(size, verbose=False, **settings)
    best = interleaved_rates(models, size, batch, steps, rounds)
    return {name: {"parameters": model.count_params(), "multiply_adds": multiply_adds(model),
                   "forward": best["forward", name], "train": best["train", name]} for name, model in models.items()}


def report(size: int = 384, quick: bool = False) -> list[str]:
    import keras

    from pmsp_utils.metrics import perfect_map_f1
    from pmsp_utils.model_settings import prediction_stride

    figures = measure(size, steps=1 if quick else 3, rounds=1 if quick else 2)
    masks, label = ceiling_masks(20 if quick else 200)
    reference = figures["stride 32 (paper)"]
    lines = ["", f"Variants at {size}x{size}, batch 4, Keras {keras.__version__} on {keras.backend.backend()}, CPU; "
             f"ceiling: mean per-image F1@0.5 of the best map of each grid on {label} (resize policy):", "",
             "| variant | grid | parameters | multiply-adds | forward img/s | train img/s | train ratio | ceiling F1 |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in figures.items():
        stride = prediction_stride(**VARIANTS[name])
        ceiling = float(np.mean([perfect_map_f1(mask, input_size=size, stride=stride) for mask in masks]))
        lines.append(f"| {name} | {size // stride}x{size // stride} | {row['parameters'] / 1e6:.2f} M | {row['multiply_adds'] / 1e9:.2f} G | "
                     f"{row['forward']:.2f} | {row['train']:.2f} | {row['train'] / reference['train']:.2f} | {ceiling:.3f} |")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print("\n".join(report(args.size, args.quick)))
