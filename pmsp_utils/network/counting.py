"""Parameters and multiply-adds, counted from a built Keras model. Defined in 03_building_the_network.

Multiply-adds count the convolutions' and dense layers' multiplications (one
per weight per output position), the usual convention (MobileNet's paper);
element-wise work (batch norm, activations, pooling, the attention product) is
left out.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from .attention import CoordinateAttention


def _spatial(shape) -> int:
    return math.prod(int(d) for d in shape[1:-1])


def layer_multiply_adds(layer) -> int:
    """Multiply-adds of one layer for one image (0 for layers without multiplications)."""
    if isinstance(layer, keras.Model):
        return multiply_adds(layer)
    if isinstance(layer, layers.DepthwiseConv2D):
        kernel = math.prod(layer.kernel_size)
        return _spatial(layer.output.shape) * kernel * int(layer.input.shape[-1]) * layer.depth_multiplier
    if isinstance(layer, layers.Conv2D):
        kernel = math.prod(layer.kernel_size)
        return _spatial(layer.output.shape) * kernel * int(layer.input.shape[-1]) // layer.groups * layer.filters
    if isinstance(layer, layers.Dense):
        return math.prod(int(d) for d in layer.output.shape[1:-1]) * int(layer.input.shape[-1]) * layer.units
    if isinstance(layer, CoordinateAttention) or hasattr(layer, "attention_maps"):  # the package's, or notebook 03's own cell
        _, height, width, channels = (int(d) if d is not None else 0 for d in layer.input.shape)
        hidden = layer.squeeze.filters
        return (height + width) * channels * hidden + (height + width) * hidden * channels
    return 0


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of a whole (possibly nested) model for one image."""
    return sum(layer_multiply_adds(layer) for layer in model.layers)


def count_after(model: keras.Model, prefixes: tuple[str, ...]) -> tuple[int, int]:
    """(parameters, multiply-adds) of the top-level layers whose names start with ``prefixes``."""
    chosen = [layer for layer in model.layers if layer.name.startswith(prefixes)]
    return sum(layer.count_params() for layer in chosen), sum(layer_multiply_adds(layer) for layer in chosen)
