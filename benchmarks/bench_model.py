"""Model speed: the PMSP network against a plain model in the same process.

Plain model: two ``keras.applications.MobileNet`` streams, F5 added, the same
pyramid pooling and head, no attention. Images per second of a forward pass
(``predict_on_batch``) and of a training step (``train_on_batch``, BCE + Adam)
at batch 4, interleaved rounds, best of each. Target: at least 0.85x the plain
model's speed.
"""

from __future__ import annotations

import time

import numpy as np


def plain_model(size: int):
    """keras.applications.MobileNet streams, added, pyramid pooling, the PMSP head; no attention."""
    import keras
    from keras import layers

    from pmsp_utils.network.build import preprocess_ela, preprocess_rgb
    from pmsp_utils.network.pyramid import pyramid_pooling

    inputs, fifth = [], []
    for stream in ("rgb", "ela"):
        image = keras.Input((size, size, 3), name=stream)
        scaled = preprocess_rgb(image) if stream == "rgb" else preprocess_ela(image)
        backbone = keras.applications.MobileNet(input_shape=(size, size, 3), include_top=False, weights=None, name=f"plain_{stream}")
        inputs.append(image)
        fifth.append(backbone(scaled))
    x = pyramid_pooling(layers.Add()(fifth))
    x = layers.Conv2D(128, 3, padding="same", use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Conv2D(1, 1)(layers.Dropout(0.1)(x))
    x = layers.UpSampling2D(32, interpolation="bilinear")(x)
    return keras.Model(inputs, layers.Activation("sigmoid", dtype="float32")(x), name="plain")


def interleaved_rates(models: dict, size: int, batch: int = 4, steps: int = 3, rounds: int = 2) -> dict:
    """{(pass, name): best images per second} of forward passes and training steps, the models interleaved round by round."""
    import keras

    rng = np.random.default_rng(0)
    inputs = {"rgb": rng.uniform(0, 255, (batch, size, size, 3)).astype("float32"), "ela": rng.uniform(0, 30, (batch, size, size, 3)).astype("float32")}
    target = (rng.random((batch, size, size, 1)) < 0.1).astype("float32")
    for model in models.values():
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
        model.predict_on_batch(inputs)  # compile and warm up both paths
        model.train_on_batch(inputs, target)
    best = {(kind, name): 0.0 for kind in ("forward", "train") for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            for _ in range(steps):
                model.predict_on_batch(inputs)
            best["forward", name] = max(best["forward", name], steps * batch / (time.perf_counter() - start))
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(inputs, target)
            best["train", name] = max(best["train", name], steps * batch / (time.perf_counter() - start))
    return best


def measure(size: int = 576, batch: int = 4, steps: int = 3, rounds: int = 2) -> dict:
    """{'forward': (ours, plain), 'train': (ours, plain)} in images per second."""
    import keras

    from pmsp_utils.network import build_pmsp

    keras.utils.set_random_seed(0)
    models = {"ours": build_pmsp(size, verbose=False), "plain": plain_model(size)}
    best = interleaved_rates(models, size, batch, steps, rounds)
    return {kind: (best[kind, "ours"], best[kind, "plain"]) for kind in ("forward", "train")} | {
        "parameters": (models["ours"].count_params(), models["plain"].count_params())}


def report(size: int = 576, quick: bool = False) -> list[str]:
    import keras

    figures = measure(size, steps=1 if quick else 3, rounds=1 if quick else 2)
    ours_parameters, plain_parameters = figures["parameters"]
    lines = [
        "",
        f"Model at {size}x{size}, batch 4, Keras {keras.__version__} on {keras.backend.backend()}, CPU "
        f"(PMSP {ours_parameters / 1e6:.2f} M parameters; plain {plain_parameters / 1e6:.2f} M):",
        "",
        "| pass | PMSP (img/s) | plain model (img/s) | ratio (target >= 0.85) |",
        "|---|---|---|---|",
    ]
    for kind, label in (("forward", "forward (predict_on_batch)"), ("train", "training step (train_on_batch)")):
        ours, plain = figures[kind]
        lines.append(f"| {label} | {ours:.2f} | {plain:.2f} | {ours / plain:.2f} |")
        print(lines[-1], flush=True)
    return lines
