"""Run by test_model.py in a fresh process per Keras backend: build, forward, train a step, compare.

usage: KERAS_BACKEND=tensorflow python backend_check.py WORKDIR weights+check   (save every variant's weights, then check)
       KERAS_BACKEND=jax python backend_check.py WORKDIR check                   (started at once: wait for them, then check)

Every output-stride and decoder variant is checked at 192x192 (and takes one training step, on JAX the default
network only): its output,
after weights saved by the first backend are loaded into the second, must agree;
and with its batch normalisations folded for inference, it must predict the same.
An ensemble of two of them (one on the mirrored input) must give the mean of the members' maps.
"""

import json
import sys
import time
from pathlib import Path

import keras
import numpy as np

from pmsp_utils.network import build_ensemble, build_pmsp, fold_batch_norm

# Every stride (32, 16, 8), both decoders, one stream and two: the paper's network (stride 32, no decoder), the network
# pmsp train builds by default (stride 16, F3 decoder), both reading both streams fused by ADD (and the two members of
# the ensemble below); stride 8, whose dilated backbone is the deepest, on the RGB stream only, which halves its cost.
VARIANTS = {"os32": {"output_stride": 32}, "os16_f3": {"output_stride": 16, "decoder": "f3"},
            "os8": {"output_stride": 8, "streams": "rgb"}}
work, mode = Path(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
inputs = {"rgb": rng.uniform(0, 255, (2, 192, 192, 3)).astype("float32"), "ela": rng.uniform(0, 30, (2, 192, 192, 3)).astype("float32")}
target = (rng.random((2, 192, 192, 1)) < 0.1).astype("float32")
reports, models = {}, {}
saved = 0
if mode == "weights+check":  # this backend initialises and saves the weights, then says so, then checks them too
    for name, variant in VARIANTS.items():
        keras.utils.set_random_seed(0)
        build_pmsp(192, dropout=0.0, verbose=False, **variant).save_weights(work / f"{name}.weights.h5")
        saved += 1
    (work / "weights.ready").write_text(str(saved))
else:  # the other backend, started at the same time, waits for them
    deadline = time.monotonic() + 600
    while not (work / "weights.ready").exists():
        if time.monotonic() > deadline:
            sys.exit("no weights.ready after 600 s: the process saving the weights failed")
        time.sleep(0.2)
for name, variant in VARIANTS.items():
    model = build_pmsp(192, dropout=0.0, verbose=False, **variant)
    model.load_weights(work / f"{name}.weights.h5")
    # Batch statistics (training=True) make the fresh network's output depend on every layer.
    feeds = {tensor.name: inputs[tensor.name] for tensor in model.inputs}  # the streams this variant reads
    output = keras.ops.convert_to_numpy(model(feeds, training=True))
    np.save(work / f"{keras.backend.backend()}_{name}.npy", output)
    # TensorFlow takes its step eagerly: tracing it costs 23 s a variant here, and every training test runs the traced
    # step already. JAX keeps its compiled step, the one the GPU runs use, for the network pmsp train builds (os16_f3):
    # compiling it costs about 15 s a variant, and the other two share its layers.
    tensorflow = keras.backend.backend() == "tensorflow"
    trains = tensorflow or name == "os16_f3"
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy", run_eagerly=tensorflow)
    before = keras.ops.convert_to_numpy(model.get_layer("head_logits").kernel).copy()
    loss = float(model.train_on_batch(feeds, target)) if trains else None
    after = keras.ops.convert_to_numpy(model.get_layer("head_logits").kernel)
    for layer in model._flatten_layers(include_self=False):  # statistics far from the identity, then fold
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, layer.moving_variance.shape).astype("float32"))
    predicted = keras.ops.convert_to_numpy(model(feeds, training=False))
    folded = fold_batch_norm(model)
    folded_error = float(np.abs(keras.ops.convert_to_numpy(folded(feeds, training=False)) - predicted).max())
    reports[name] = {"loss": loss, "changed": bool(np.abs(after - before).max() > 0) if trains else None, "shape": list(output.shape),
                     "spread": float(output.std()), "folded": folded.pmsp_folded, "folded_error": folded_error,
                     "predicted_spread": float(predicted.std())}
    models[name] = model
mirrored = {key: value[:, :, ::-1] for key, value in inputs.items()}
by_hand = 0.5 * (keras.ops.convert_to_numpy(models["os16_f3"](mirrored, training=False))[:, :, ::-1]
                 + keras.ops.convert_to_numpy(models["os32"](inputs, training=False)))
pair = build_ensemble({"os16_f3": (models["os16_f3"], "mirror"), "os32": (models["os32"], "image")})
ensemble_error = float(np.abs(keras.ops.convert_to_numpy(pair(inputs, training=False)) - by_hand).max())
print(json.dumps({"backend": keras.backend.backend(), "saved": saved, "variants": reports, "ensemble_error": ensemble_error}))
