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

from .backbone import mobilenet_v1_stream
from .pyramid import BINS, pyramid_pooling
from .weights import load_backbone_weights

ATTENTION_PLACEMENTS = ("none", "features", "blocks")
FUSIONS = ("add", "concat")
STREAMS = ("both", "rgb", "ela")
STRIDE = 32
DEFAULT_ELA_GAIN = 8.0


def nearest_valid_sizes(size: int, bins: tuple[int, ...] = BINS) -> tuple[int, ...]:
    """The valid input sizes nearest ``size``: multiples of 32 * lcm(bins), i.e. of 192."""
    import math

    step = STRIDE * math.lcm(*bins)
    lower = max(step, int(size) // step * step)
    upper = lower if lower >= size else lower + step
    return (lower,) if lower == upper else (lower, upper)


def check_input_size(size: int, bins: tuple[int, ...] = BINS) -> None:
    """Raise a ValueError naming the nearest valid sizes unless F5 (size / 32) divides into every bin."""
    import math

    step = STRIDE * math.lcm(*bins)
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"input size must be an integer (a multiple of {step}), got {size!r}.")
    if size < step or size % step:
        nearest = " or ".join(str(value) for value in nearest_valid_sizes(size, bins))
        raise ValueError(
            f"input size {size} does not work: F5 is the input divided by {STRIDE} and must divide into the "
            f"pyramid bins {bins}, so the size must be a multiple of {step}. Nearest: {nearest}."
        )


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
    verbose: bool = True,
) -> keras.Model:
    """Build the PMSP network for square inputs of ``input_size`` (a multiple of 192; 576 as in the paper).

    Inputs: ``rgb`` and/or ``ela``, float (B, H, W, 3) in 0..255 (raw ELA for
    ``ela``); output: ``probability`` (B, H, W, 1), the tampered probability per pixel.

    ``attention``: ``"features"`` (after F3, F4, F5; the paper), ``"blocks"``
    (inside the depthwise blocks) or ``"none"``. ``fusion``: ``"add"`` (the
    paper) or ``"concat"``. ``streams``: ``"both"``, ``"rgb"`` or ``"ela"``.
    ``weights``: ``"imagenet"`` (Keras' download and cache), a path to a legacy
    ``.h5`` file, or None (fresh). The backbone layers it fills are reported.
    """
    check_input_size(input_size)
    for value, allowed, what in ((attention, ATTENTION_PLACEMENTS, "attention"), (fusion, FUSIONS, "fusion"), (streams, STREAMS, "streams")):
        if value not in allowed:
            raise ValueError(f"{what} must be one of {allowed}, got {value!r}.")
    shape = (input_size, input_size, 3)
    inputs, fifth = [], []
    for stream in ("rgb", "ela") if streams == "both" else (streams,):
        image = keras.Input(shape=shape, name=stream)
        scaled = preprocess_rgb(image) if stream == "rgb" else preprocess_ela(image, ela_gain)
        backbone = mobilenet_v1_stream(shape, name=f"{stream}_stream", attention=attention)
        inputs.append(image)
        fifth.append(backbone(scaled)[-1])
    if len(fifth) == 1:
        fused = fifth[0]
    elif fusion == "add":
        fused = layers.Add(name="fusion_add")(fifth)
    else:
        fused = layers.Concatenate(name="fusion_concat")(fifth)
    x = pyramid_pooling(fused, channels=pyramid_channels)
    x = layers.Conv2D(head_channels, 3, padding="same", use_bias=False, name="head_conv")(x)
    x = layers.BatchNormalization(name="head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Conv2D(1, 1, name="head_logits")(x)
    x = layers.UpSampling2D(size=STRIDE, interpolation="bilinear", name="upsample")(x)
    probability = layers.Activation("sigmoid", dtype="float32", name="probability")(x)
    name = f"pmsp_{streams}_{fusion}_{attention}" if streams == "both" else f"pmsp_{streams}_{attention}"
    model = keras.Model(inputs, probability, name=name)
    if weights is not None:
        report = load_backbone_weights(model, weights)
        if verbose:
            print(report)
    return model


def load_pmsp(path: str | Path) -> keras.Model:
    """Load a trained model saved as ``.keras`` (safe mode on: no arbitrary code is run)."""
    from . import attention, losses  # noqa: F401  (register CoordinateAttention and the losses for deserialisation)

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file.")
    return keras.models.load_model(path, safe_mode=True)
