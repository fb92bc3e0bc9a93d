"""Batch normalisation folded into the convolution before it, for inference.

At inference a batch normalisation is a fixed affine map per channel,
``y = gamma * (x - mean) / sqrt(var + eps) + beta``. After a convolution
(or a depthwise convolution) with kernel ``K`` and bias ``b`` it can be folded
into that convolution: the kernel becomes ``K * s`` and the bias
``(b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``, per output
channel. The network computes the same map, up to float rounding, without the
four element-wise passes over each feature map that the normalisation costs;
each MobileNetV1 stream has 27 of them. On a 2-core CPU this makes a forward
pass at 576x576 about 1.2x faster (``benchmarks/RESULTS.md``).

A folded model is for prediction only: it has no batch statistics left to
train. :func:`pmsp_utils.models.load_model` returns one with ``inference=True``,
which ``pmsp localize`` and ``pmsp evaluate`` use.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["Folded", "fold_batch_norm"]

_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


@keras.saving.register_keras_serializable(package="pmsp")
class Folded(keras.layers.Layer):
    """Stands where a batch normalisation was folded into the convolution before it: passes its input on."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def _source_of(layer):
    """The layer whose output ``layer`` reads, when it is called once on one tensor; else None."""
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
        return None
    return nodes[0].input_tensors[0]._keras_history.operation


def _foldable_pairs(model) -> dict[str, keras.layers.BatchNormalization]:
    """Convolution name -> the batch normalisation that alone reads its output, along the channel axis."""
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or layer.axis not in (-1, 3):
            continue
        source = _source_of(layer)
        if (isinstance(source, _CONVOLUTIONS) and source.activation in (None, keras.activations.linear)
                and len(getattr(source, "_outbound_nodes", [])) == 1 and len(source._inbound_nodes) == 1):
            pairs[source.name] = layer
    return pairs


def _folded_weights(convolution, norm) -> list[np.ndarray]:
    """The convolution's kernel and bias with ``norm`` folded in (computed in float64, returned in the kernel's dtype)."""
    weights = convolution.get_weights()
    dtype = weights[0].dtype
    kernel, bias = weights[0].astype(np.float64), (weights[1].astype(np.float64) if convolution.use_bias else 0.0)
    statistics = {w.name: np.asarray(w, dtype=np.float64) for w in norm.weights}
    gamma = statistics["gamma"] if norm.scale else 1.0
    beta = statistics["beta"] if norm.center else 0.0
    scale = gamma / np.sqrt(statistics["moving_variance"] + norm.epsilon)
    if isinstance(convolution, keras.layers.DepthwiseConv2D):  # (kh, kw, C, multiplier): output channel c * m + j
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])[None, None]
    else:  # (kh, kw, C_in, C_out)
        kernel = kernel * scale
    return [kernel.astype(dtype), ((bias - statistics["moving_mean"]) * scale + beta).astype(dtype)]


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """A copy of the functional ``model`` with every batch normalisation that follows a convolution folded into it.

    Nested functional models (the two MobileNetV1 streams) are folded too; other
    layers are copied with their weights. The copy has the same inputs, outputs
    and layer names (a folded normalisation keeps its name as a :class:`Folded`
    pass-through); its attribute ``pmsp_folded`` counts the folded layers.
    """
    pairs = _foldable_pairs(model)
    norms = {norm.name for norm in pairs.values()}
    counted = [len(pairs)]

    def clone(layer):
        if isinstance(layer, keras.Model):
            folded = fold_batch_norm(layer)
            counted.append(folded.pmsp_folded)
            return folded
        if layer.name in norms:
            return Folded(name=layer.name)
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if isinstance(layer, keras.Model) or layer.name in norms or not layer.weights:
            continue
        target = copy.get_layer(layer.name)
        target.set_weights(_folded_weights(layer, pairs[layer.name]) if layer.name in pairs else layer.get_weights())
    copy.pmsp_folded = sum(counted)
    return copy
