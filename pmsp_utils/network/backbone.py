"""A MobileNetV1 stream (width 1.0, ReLU6), the paper's section 3.2. Defined in 03_building_the_network.

The layers carry the names and shapes of ``keras.applications.MobileNet`` so
ImageNet weights load by name. The stream returns five feature maps F1..F5 at
strides 2, 4, 8, 16 and 32, and can put Coordinate Attention in line after F3,
F4 and F5 (the attended F3 feeds the next block) or inside the depthwise blocks.
With ``output_stride`` 16 or 8 the last stages keep their resolution and dilate
their depthwise convolutions instead (PSPNet, DeepLab), so F4/F5 sit at stride
16 or 8.
"""

from __future__ import annotations

import keras
from keras import layers

from ..model_settings import DEFAULT_OUTPUT_STRIDE, OUTPUT_STRIDES
from .attention import CoordinateAttention

# (pointwise filters, stride) of the 13 depthwise separable blocks, as in keras.applications.MobileNet.
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
#: The layer that ends each feature level F1..F5 (before any attention).
FEATURE_LAYERS = {"F1": "conv_pw_1_relu", "F2": "conv_pw_3_relu", "F3": "conv_pw_5_relu", "F4": "conv_pw_11_relu", "F5": "conv_pw_13_relu"}
_LAST_BLOCK = {1: "F1", 3: "F2", 5: "F3", 11: "F4", 13: "F5"}
_ATTENDED_LEVELS = ("F3", "F4", "F5")
_FIRST_BLOCK_OF_F3 = 4


def conv_block(x, filters: int = 32, strides: int = 2):
    """The first, standard 3x3 convolution (``conv1``)."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, strides=strides, name="conv1")(x)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    return layers.ReLU(6.0, name="conv1_relu")(x)


def depthwise_separable_block(x, filters: int, strides: int, block: int, attention_inside: bool = False, dilation: int = 1,
                              attention_layer=CoordinateAttention):
    """A 3x3 depthwise convolution (dilated by ``dilation``) then a 1x1 pointwise one, each with BN and ReLU6."""
    if strides == 2:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block}")(x)
    x = layers.DepthwiseConv2D(3, padding="same" if strides == 1 else "valid", strides=strides, dilation_rate=dilation,
                               use_bias=False, name=f"conv_dw_{block}")(x)
    x = layers.BatchNormalization(name=f"conv_dw_{block}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block}_relu")(x)
    if attention_inside:
        x = attention_layer(name=f"coord_attention_dw_{block}")(x)
    x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"conv_pw_{block}")(x)
    x = layers.BatchNormalization(name=f"conv_pw_{block}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block}_relu")(x)


def block_strides_and_dilations(output_stride: int = DEFAULT_OUTPUT_STRIDE) -> list[tuple[int, int]]:
    """(stride, dilation) of each of the 13 blocks for a stream whose F5 is at ``output_stride`` (8, 16 or 32).

    As in DeepLab's MobileNet (TF-slim ``mobilenet_v1_base``): once the running
    stride reaches ``output_stride``, a block that would halve the map keeps
    stride 1 and every later depthwise convolution is dilated by the stride it
    gave up, so each sees the same neighbourhood of the image as before. No
    weight changes: ImageNet weights load as they are.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride!r}.")
    current, rate, plan = 2, 1, []  # conv1 already has stride 2
    for _, strides in BLOCKS:
        if current == output_stride:
            plan.append((1, rate))
            rate *= strides
        else:
            plan.append((strides, rate))
            current *= strides
    return plan


def mobilenet_v1_stream(input_shape: tuple[int, int, int], name: str, attention: str = "features", output_stride: int = DEFAULT_OUTPUT_STRIDE,
                        attention_layer=CoordinateAttention) -> keras.Model:
    """One stream as a Keras model: input (H, W, 3) in [-1, 1], outputs [F1, F2, F3, F4, F5].

    ``attention``: ``"none"``; ``"features"`` (Coordinate Attention after F3, F4
    and F5, the paper's placement); ``"blocks"`` (inside every depthwise block of
    the F3 to F5 stages, after the depthwise convolution). ``output_stride``: 32
    (MobileNetV1 as published), 16 or 8 (the last stages dilated instead of strided). ``attention_layer``: the
    Coordinate Attention class to build with (this package's; notebook 03 passes the one its cell defines).
    """
    if attention not in {"none", "features", "blocks"}:
        raise ValueError(f"attention must be 'none', 'features' or 'blocks', got {attention!r}.")
    plan = block_strides_and_dilations(output_stride)
    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = conv_block(inputs)
    features = []
    for block, ((filters, _), (strides, dilation)) in enumerate(zip(BLOCKS, plan), start=1):
        x = depthwise_separable_block(x, filters, strides, block, attention_inside=attention == "blocks" and block >= _FIRST_BLOCK_OF_F3,
                                      dilation=dilation, attention_layer=attention_layer)
        level = _LAST_BLOCK.get(block)
        if level is None:
            continue
        if attention == "features" and level in _ATTENDED_LEVELS:
            x = attention_layer(name=f"coord_attention_{level.lower()}")(x)
        features.append(x)
    return keras.Model(inputs, features, name=name)
