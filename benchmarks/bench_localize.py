"""``pmsp localize`` speed: seconds per 576x576 JPEG once the model is loaded (target <= 0.3 s on a 2-core CPU).

End to end as the command does it: read the JPEG, ELA at full resolution,
resize to the model, forward pass, resize back, write the probability and mask PNGs and the
overlay JPEG, with the model as the command loads it (batch normalisation
folded into the convolutions). References in the same run: the bare forward
pass of the same model on a ready batch of one, so the overhead of everything
else shows as a ratio; and the same model unfolded (as training builds it),
so the folding's speed-up shows as a ratio.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np


def report(quick: bool = False, weights: str = "casia1") -> list[str]:
    """Rows of the table; ``weights``: a shipped name (timed at 384 and at 576) or a run folder (at its own size)."""
    import keras

    from pmsp_utils import pretrained
    from pmsp_utils.models import load_model
    from pmsp_utils.localize_outputs import write_outputs
    from pmsp_utils.network import ensemble_members
    from pmsp_utils.pipeline import localize
    from synthetic_photos import make_images

    count, rounds = (4, 2) if quick else (16, 3)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        paths = make_images(Path(folder), (576, 576), count)
        out = Path(folder) / "out"
        out.mkdir()
        shipped = weights in pretrained.available()
        for input_size in (384, 576) if shipped else (None,):
            plain = load_model(weights, input_size=input_size).model  # a run folder: None, its own size
            model = load_model(weights, input_size=input_size, inference=True).model  # as pmsp localize loads it
            input_size = model.pmsp_settings.input_size
            batch = {name: np.zeros((1, input_size, input_size, 3), np.float32) for name in ("rgb", "ela")}
            for network in (plain, model):  # warm up
                network.predict_on_batch(batch)
                localize(network, paths[0])
            own = model.pmsp_settings.flip  # the model's own TTA setting: what pmsp localize does by default
            lite = _lite_copy(weights, input_size if shipped else None, folder)  # the light runtime's copy, as pmsp localize uses it
            times = {key: [] for key in ("own", "toggled", "forward", "unfolded", "lite")}
            for _ in range(rounds):
                runs = ((model, own, "own"), (model, not own, "toggled"), (plain, own, "unfolded")) + (((lite, own, "lite"),) if lite else ())
                for network, flip, key in runs:
                    start = time.perf_counter()
                    for index, path in enumerate(paths):
                        result = localize(network, path, flip=flip)
                        write_outputs(out, f"image{index}", path, result.image, result.probability, 0.5)
                    times[key].append((time.perf_counter() - start) / count)
                start = time.perf_counter()
                for _ in paths:
                    model.predict_on_batch(batch)
                times["forward"].append((time.perf_counter() - start) / count)
            best, toggled, bare, unfolded = (min(times[key]) for key in ("own", "toggled", "forward", "unfolded"))
            lite_time = min(times["lite"]) if times["lite"] else float("nan")
            members = ensemble_members(model)
            what = f"ensemble ({', '.join(members)})" if members else f"stride {model.pmsp_settings.output_stride}"
            rows.append(f"| {input_size}, {what}, flip {'on' if own else 'off'} | {best:.3f} | {toggled:.3f} | {bare:.3f} | "
                        f"{best / bare:.2f} | {unfolded:.3f} | {unfolded / best:.2f} | {lite_time:.3f} | {best / lite_time:.2f} |")
            print(rows[-1], flush=True)
    return [
        "",
        f"`pmsp localize` on {count} 576x576 JPEGs ({'shipped ' if shipped else 'run '}{weights}, Keras {keras.__version__} on {keras.backend.backend()}, "
        f"CPU, best of {rounds} rounds; end to end = read, ELA, the model's input policy, forward (once per ensemble member; twice with flipped TTA), "
        "back to the image's size, the probability and mask PNGs and the overlay JPEG written; target <= 0.3 s/image with the model's own TTA setting; "
        "the model loaded as the command loads it, batch normalisation folded, against the same model unfolded):",
        "",
        "| model input, its TTA setting | end to end, its own setting (s/image) | end to end, flip toggled | "
        "bare forward pass (s/image) | end to end / forward | unfolded, its own setting | folding's speed-up | "
        "LiteRT copy, its own setting | LiteRT's speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def _lite_copy(weights: str, input_size: int | None, folder: str):
    """The folded model exported to LiteRT in ``folder`` (pmsp_utils.runtime), or None without ai-edge-litert."""
    from pmsp_utils.models import load_model
    from pmsp_utils.runtime import LiteModel, export_lite, litert_available

    if not litert_available():
        return None
    loaded = load_model(weights, input_size=input_size, inference=True)
    path = export_lite(loaded, Path(folder) / "model.tflite")
    model = LiteModel(path, loaded.settings)
    return model

