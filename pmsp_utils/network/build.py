"""The dual-stream PMSP network, the paper's sections 3.2 and 3.3 (Figures 3 to 6). Defined in 03_building_the_network.

RGB and ELA each go through a MobileNetV1 stream with Coordinate Attention after
F3, F4 and F5; the two F5 maps are fused (element-wise ADD by default), pooled by
the pyramid module, turned into one logit per F5 cell by a small head, upsampled
bilinearly to the input size, and squashed into a tampered probability.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from ..model_settings import (ATTENTION_PLACEMENTS, DECODERS, DEFAULT_ELA_GAIN, DEFAULT_OUTPUT_STRIDE, FUSIONS, OUTPUT_STRIDES, STREAMS, ModelSettings,
                             check_input_size, nearest_valid_sizes, prediction_stride)
from .attention import CoordinateAttention
from .backbone import mobilenet_v1_stream
from .pyramid import BINS, pyramid_pooling
from .imagenet import load_backbone_weights

__all__ = ["ATTENTION_PLACEMENTS", "BINS", "DECODERS", "DEFAULT_ELA_GAIN", "FUSIONS", "OUTPUT_STRIDES", "STREAMS",
           "build_pmsp", "check_input_size", "nearest_valid_sizes", "prediction_stride"]
DECODER_LOW_CHANNELS = 48  # DeepLabV3+'s reduction of the low-level features


def preprocess_rgb(x, name: str = "rgb_scale"):
    """0..255 RGB to MobileNet's [-1, 1]."""
    return layers.Rescaling(1.0 / 127.5, offset=-1.0, name=name)(x)


def preprocess_ela(x, gain: float = DEFAULT_ELA_GAIN, name: str = "ela_scale"):
    """Raw ELA (0..255, mostly below 32) times ``gain``, clipped, to [-1, 1]."""
    x = layers.Rescaling(gain / 127.5, name=f"{name}_gain")(x)
    x = layers.ReLU(max_value=2.0, name=f"{name}_clip")(x)
    return layers.Rescaling(1.0, offset=-1.0, name=name)(x)


def build_pmsp(
    input_size: int = 576,
    *,
    attention: str = "features",
    fusion: str = "add",
    streams: str = "both",
    weights: str | Path | None = None,
    pyramid_channels: int = 256,
    head_channels: int = 128,
    dropout: float = 0.1,
    ela_gain: float = DEFAULT_ELA_GAIN,
    output_stride: int = DEFAULT_OUTPUT_STRIDE,
    decoder: str = "none",
    verbose: bool = True,
    attention_layer=CoordinateAttention,
    pyramid=pyramid_pooling,
) -> keras.Model:
    """Build the PMSP network for square inputs of ``input_size`` (a multiple of 192; 576 as in the paper).

    Inputs: ``rgb`` and/or ``ela``, float (B, H, W, 3) in 0..255 (raw ELA for
    ``ela``); output: ``probability`` (B, H, W, 1), the tampered probability per pixel.

    ``attention``: ``"features"`` (after F3, F4, F5; the paper), ``"blocks"``
    (inside the depthwise blocks) or ``"none"``. ``fusion``: ``"add"`` (the
    paper) or ``"concat"``. ``streams``: ``"both"``, ``"rgb"`` or ``"ela"``.
    ``weights``: ``"imagenet"`` (Keras' download and cache), a path to a legacy
    ``.h5`` file, or None (fresh). The backbone layers it fills are reported.
    ``output_stride``: 32 (the paper: one logit per F5 cell), 16 or 8 (the last
    MobileNet stages dilated instead of strided, as in PSPNet); the input size
    must then be a multiple of ``output_stride * 6``. ``decoder``: ``"none"`` (the
    paper) or ``"f3"`` (beyond the paper: the pyramid output is refined with the
    attended F3 features at stride 8, as DeepLabV3+ does, so the map has one
    logit per 8x8 pixels whatever ``output_stride`` is). ``attention_layer`` and ``pyramid``: the Coordinate
    Attention class and the pyramid pooling function to build with; the package's by default, and notebook 03
    passes the ones its cells define (the same code, held equal by tests/test_course_03.py).
    """
    check_input_size(input_size, output_stride=output_stride)
    for value, allowed, what in ((attention, ATTENTION_PLACEMENTS, "attention"), (fusion, FUSIONS, "fusion"), (streams, STREAMS, "streams"),
                                 (decoder, DECODERS, "decoder")):
        if value not in allowed:
            raise ValueError(f"{what} must be one of {allowed}, got {value!r}.")
    shape = (input_size, input_size, 3)
    inputs, third, fifth = [], [], []
    for stream in ("rgb", "ela") if streams == "both" else (streams,):
        image = keras.Input(shape=shape, name=stream)
        scaled = preprocess_rgb(image) if stream == "rgb" else preprocess_ela(image, ela_gain)
        backbone = mobilenet_v1_stream(shape, name=f"{stream}_stream", attention=attention, output_stride=output_stride,
                                       attention_layer=attention_layer)
        inputs.append(image)
        features = backbone(scaled)
        third.append(features[2])
        fifth.append(features[-1])
    x = pyramid(_fuse(fifth, fusion, "fusion"), channels=pyramid_channels)
    x = layers.Conv2D(head_channels, 3, padding="same", use_bias=False, name="head_conv")(x)
    x = layers.BatchNormalization(name="head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    if decoder == "f3":
        x = _decoder(x, _fuse(third, fusion, "decoder_fusion"), output_stride, head_channels)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Conv2D(1, 1, name="head_logits")(x)
    x = layers.UpSampling2D(size=prediction_stride(output_stride, decoder), interpolation="bilinear", name="upsample")(x)
    probability = layers.Activation("sigmoid", dtype="float32", name="probability")(x)
    name = f"pmsp_{streams}_{fusion}_{attention}" if streams == "both" else f"pmsp_{streams}_{attention}"
    if output_stride != DEFAULT_OUTPUT_STRIDE or decoder != "none":
        name += f"_os{output_stride}" + ("" if decoder == "none" else f"_{decoder}")
    model = keras.Model(inputs, probability, name=name)
    # What inference needs to feed it; a trained model's settings come from its run, card or .keras file instead.
    model.pmsp_settings = ModelSettings(input_size=input_size, attention=attention, fusion=fusion, streams=streams,
                                        output_stride=output_stride, decoder=decoder, ela_gain=ela_gain)
    if weights is not None:
        report = load_backbone_weights(model, weights)
        if verbose:
            print(report)
    return model


def _fuse(maps, fusion: str, name: str):
    """The streams' maps fused element-wise (ADD) or stacked (CONCAT); one stream passes through."""
    if len(maps) == 1:
        return maps[0]
    if fusion == "add":
        return layers.Add(name=f"{name}_add")(maps)
    return layers.Concatenate(name=f"{name}_concat")(maps)


def _decoder(high, low, output_stride: int, channels: int):
    """DeepLabV3+'s light decoder on F3 (stride 8): reduce F3 to 48 channels, upsample the pyramid
    output to F3's grid, concatenate, then one depthwise separable 3x3 convolution."""
    low = layers.Conv2D(DECODER_LOW_CHANNELS, 1, use_bias=False, name="decoder_low_conv")(low)
    low = layers.BatchNormalization(name="decoder_low_bn")(low)
    low = layers.ReLU(name="decoder_low_relu")(low)
    if output_stride > 8:
        high = layers.UpSampling2D(size=output_stride // 8, interpolation="bilinear", name="decoder_upsample")(high)
    x = layers.Concatenate(name="decoder_concat")([high, low])
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="decoder_dw")(x)
    x = layers.BatchNormalization(name="decoder_dw_bn")(x)
    x = layers.ReLU(name="decoder_dw_relu")(x)
    x = layers.Conv2D(channels, 1, use_bias=False, name="decoder_pw")(x)
    x = layers.BatchNormalization(name="decoder_pw_bn")(x)
    return layers.ReLU(name="decoder_pw_relu")(x)
