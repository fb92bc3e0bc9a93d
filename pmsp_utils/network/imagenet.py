"""Backbone weights: ImageNet (Keras' own download and cache) or a local legacy ``.h5``, by layer name.

Defined in 03_building_the_network. ImageNet initialisation decides everything
for this task: a plain version of the model reached pixel AUC 0.89 on CASIA v1
from ImageNet weights and 0.40 from random ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

IMAGENET_FILE = "mobilenet_1_0_224_tf_no_top.h5"
IMAGENET_ORIGIN = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/" + IMAGENET_FILE


class WeightsUnavailableError(OSError):
    """ImageNet weights could not be had; the message says how to provide them (an OSError: a file that could not be
    fetched, which the command line reports in one line)."""


@dataclass
class WeightReport:
    """Which layers a weights file filled, which it lacked, and which did not fit."""

    source: str
    filled: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # layers with weights that the file does not have
    mismatched: list[str] = field(default_factory=list)  # in the file, but of another shape

    def __str__(self) -> str:
        total = len(self.filled) + len(self.missing) + len(self.mismatched)
        lines = [f"{self.source}: filled {len(self.filled)} of {total} backbone layers with weights"]
        if self.missing:
            lines.append(f"  not in the file (kept fresh): {', '.join(self.missing)}")
        if self.mismatched:
            lines.append(f"  other shape in the file (kept fresh): {', '.join(self.mismatched)}")
        return "\n".join(lines)


def imagenet_weights_path() -> Path:
    """Keras' MobileNet 1.0/224 ImageNet weights: from the Keras cache, or downloaded once into it."""
    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / IMAGENET_FILE
    if cached.is_file():
        return cached
    try:
        return Path(keras.utils.get_file(IMAGENET_FILE, IMAGENET_ORIGIN, cache_subdir="models"))
    except Exception as error:  # get_file wraps network failures in several exception types
        raise WeightsUnavailableError(
            f"Could not download the ImageNet weights ({type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}). "
            f"Without internet, download {IMAGENET_ORIGIN} elsewhere and set PMSP_IMAGENET_WEIGHTS to its path, or put it "
            f"at {cached}, or pass weights='path/to/mobilenet_1_0_224_tf_no_top.h5' (pmsp train: --weights none starts "
            "from random weights)."
        ) from None


def available_imagenet_weights() -> Path | None:
    """ImageNet weights already on this machine, without downloading: ``PMSP_IMAGENET_WEIGHTS`` or the Keras cache.

    Notebooks use this so they never download on their own; ``weights="imagenet"`` is the explicit way.
    """
    explicit = os.environ.get("PMSP_IMAGENET_WEIGHTS")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"PMSP_IMAGENET_WEIGHTS={explicit!r} is not a file.")
        return path
    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / IMAGENET_FILE
    return cached if cached.is_file() else None


def read_h5_weights(path: str | Path) -> dict[str, list[np.ndarray]]:
    """The per-layer weights of a legacy Keras ``.h5`` file (weights-only or a whole saved model)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file.")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not an HDF5 weights file ({error}).") from None
    with handle:
        group = handle["model_weights"] if "model_weights" in handle else handle
        if "layer_names" not in group.attrs:
            raise ValueError(
                f"{path}: not a legacy Keras .h5 weights file (no layer_names). Keras 3 '.weights.h5' "
                "files load with model.load_weights(); this loader reads Keras 2 style files by layer name."
            )
        weights = {}
        for raw_name in group.attrs["layer_names"]:
            name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
            layer = group[name]
            names = [w.decode() if isinstance(w, bytes) else w for w in layer.attrs.get("weight_names", [])]
            if names:
                weights[name] = [np.asarray(layer[w]) for w in names]
    return weights


def _streams(model: keras.Model) -> list[keras.Model]:
    streams = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name.endswith("_stream")]
    return streams or [model]


def load_backbone_weights(model: keras.Model, source: str | Path) -> WeightReport:
    """Fill every stream's MobileNet layers from ``"imagenet"`` or a local ``.h5``, by layer name.

    Layers that are not MobileNet's (attention, pyramid, head) keep their
    initialisation and are not counted. Returns what was filled.
    """
    path = imagenet_weights_path() if str(source) == "imagenet" else Path(source)
    stored = read_h5_weights(path)
    report = WeightReport(source="ImageNet (Keras)" if str(source) == "imagenet" else str(path))
    for stream in _streams(model):
        for layer in stream.layers:
            if not layer.weights or not layer.name.startswith("conv"):
                continue
            label = f"{stream.name}/{layer.name}" if stream is not model else layer.name
            values = stored.get(layer.name)
            if values is None:
                report.missing.append(label)
            elif [tuple(v.shape) for v in values] != [tuple(w.shape) for w in layer.weights]:
                report.mismatched.append(label)
            else:
                layer.set_weights(values)
                report.filled.append(label)
    if not report.filled:
        raise ValueError(f"{path}: no layer of the file matches the MobileNet backbone by name; is it MobileNetV1 weights?")
    return report
