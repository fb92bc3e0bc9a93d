"""Coordinate Attention (Hou, Zhou and Feng, CVPR 2021), the paper's section 3.2. Defined in 03_building_the_network.

For a feature map x of shape (B, H, W, C):
1. pool along the width and along the height: (B, H, 1, C) and (B, 1, W, C);
2. concatenate the two along the spatial axis: (B, H + W, 1, C);
3. a 1x1 convolution to max(8, C / 32) channels, batch normalisation, h-swish;
4. split back into the height part and the width part;
5. a 1x1 convolution back to C channels and a sigmoid on each: a_h (B, H, 1, C), a_w (B, 1, W, C);
6. multiply: y = x * a_h * a_w.
"""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="pmsp")
class CoordinateAttention(layers.Layer):
    """Coordinate Attention: reweights each position by a row factor and a column factor per channel."""

    def __init__(self, reduction: int = 32, min_channels: int = 8, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reduction = reduction
        self.min_channels = min_channels

    def build(self, input_shape) -> None:
        channels = input_shape[-1]
        hidden = max(self.min_channels, channels // self.reduction)
        self.squeeze = layers.Conv2D(hidden, 1, name="squeeze")
        self.norm = layers.BatchNormalization(name="norm")
        self.attend_height = layers.Conv2D(channels, 1, activation="sigmoid", name="attend_height")
        self.attend_width = layers.Conv2D(channels, 1, activation="sigmoid", name="attend_width")
        joint = (input_shape[0], None, 1, channels)
        self.squeeze.build(joint)
        self.norm.build(joint[:-1] + (hidden,))
        self.attend_height.build(joint[:-1] + (hidden,))
        self.attend_width.build(joint[:-1] + (hidden,))

    def attention_maps(self, inputs, training=None):
        """The two attention factors: a_h of shape (B, H, 1, C) and a_w of shape (B, 1, W, C)."""
        height = inputs.shape[1] if inputs.shape[1] is not None else ops.shape(inputs)[1]
        pooled_height = ops.mean(inputs, axis=2, keepdims=True)  # (B, H, 1, C)
        pooled_width = ops.transpose(ops.mean(inputs, axis=1, keepdims=True), (0, 2, 1, 3))  # (B, W, 1, C)
        joint = ops.concatenate([pooled_height, pooled_width], axis=1)  # (B, H + W, 1, C)
        joint = keras.activations.hard_swish(self.norm(self.squeeze(joint), training=training))
        part_height, part_width = ops.split(joint, [height], axis=1)
        attention_height = self.attend_height(part_height)
        attention_width = ops.transpose(self.attend_width(part_width), (0, 2, 1, 3))
        return attention_height, attention_width

    def call(self, inputs, training=None):
        attention_height, attention_width = self.attention_maps(inputs, training=training)
        return inputs * attention_height * attention_width

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "reduction": self.reduction, "min_channels": self.min_channels}
