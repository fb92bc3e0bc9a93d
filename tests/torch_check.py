"""Run by test_model.py: Keras on PyTorch trains the network one step, and the saved model runs on TensorFlow.

usage: KERAS_BACKEND=torch python torch_check.py WORKDIR train        (one step with the package's loss, saved as .keras)
       KERAS_BACKEND=tensorflow python torch_check.py WORKDIR load    (the same file loaded, the same inputs predicted)

Each prints one JSON line: the backend, the loss, whether the weights moved, and (torch) what the LiteRT export says.
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np

from pmsp_utils.model_settings import ModelSettings
from pmsp_utils.models import load_model, save_model

work, mode = Path(sys.argv[1]), sys.argv[2]
settings = ModelSettings(input_size=96, output_stride=16, decoder="f3")
rng = np.random.default_rng(0)
inputs = {"rgb": rng.uniform(0, 255, (2, 96, 96, 3)).astype("float32"), "ela": rng.uniform(0, 30, (2, 96, 96, 3)).astype("float32")}
report = {"backend": keras.backend.backend()}
if mode == "train":
    from pmsp_utils.network import build_pmsp
    from pmsp_utils.train import make_loss

    keras.utils.set_random_seed(0)
    model = build_pmsp(**settings.architecture(), weights=None, dropout=0.0, verbose=False)
    target = (rng.random((2, 96, 96, 1)) < 0.1).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss("bce+dice"))
    before = keras.ops.convert_to_numpy(model.get_layer("head_logits").kernel).copy()
    report["loss"] = float(model.train_on_batch(inputs, target))
    report["changed"] = bool(np.abs(keras.ops.convert_to_numpy(model.get_layer("head_logits").kernel) - before).max() > 0)
    for layer in model._flatten_layers(include_self=False):  # statistics far from the identity: maps that vary
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, layer.moving_variance.shape).astype("float32"))
    save_model(model, work / "torch.keras", settings)
    try:
        from pmsp_utils.runtime import litert_available, load_for_inference

        if litert_available():
            load_for_inference(work / "torch.keras", runtime="litert", echo=lambda message: None)
            report["litert"] = "exported"
    except ValueError as error:
        report["litert"] = str(error)
loaded = load_model(work / "torch.keras")
maps = keras.ops.convert_to_numpy(loaded.model(inputs, training=False))
report["spread"] = float(maps.std())
np.save(work / f"{report['backend']}.npy", maps)
print(json.dumps(report))
