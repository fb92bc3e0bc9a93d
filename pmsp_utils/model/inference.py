"""An image in, a tampered-probability map at the image's own size out. Defined in 03_building_the_network.

ELA is always computed on the image at its full resolution (where the JPEG
grid is); then one of two explicit policies brings it to the network:

- ``"resize"`` (default, how the network is trained): RGB and ELA are resized
  bilinearly to the model's square input (the aspect ratio is not kept), and
  the probability map is resized back to the image's size.
- ``"tile"``: the image is cut into overlapping model-sized tiles at full
  resolution (no resampling of the forensic traces), predicted in batches, and
  the overlapping predictions are averaged. Memory stays bounded by one batch
  of tiles plus two float32 maps of the image's size, so large photos work.
  Note the network sees a different scale than in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..ela import DEFAULT_QUALITY, ElaSettings, ela_of_loaded
from ..images import ImageSource, LoadedImage, load_image

POLICIES = ("resize", "tile")


@dataclass(frozen=True)
class Localization:
    """A probability map (H, W) in [0, 1] with the image and ELA it came from."""

    probability: np.ndarray
    image: np.ndarray
    ela: np.ndarray
    policy: str
    conversions: tuple[str, ...]


def input_names(model) -> list[str]:
    """The names of a model's inputs ("rgb", "ela")."""
    return [tensor.name.split(":")[0] for tensor in model.inputs]


def input_size(model) -> int:
    """The model's square input size."""
    return int(model.inputs[0].shape[1])


def _resized(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a uint8 image array to (width, height) = ``size``."""
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def _predict(model, batches: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(model.predict_on_batch(batches), dtype=np.float32)[..., 0]


def localize(
    model,
    source: ImageSource | LoadedImage,
    *,
    policy: str = "resize",
    quality: int = DEFAULT_QUALITY,
    overlap: float = 0.25,
    batch_size: int = 4,
) -> Localization:
    """Predict the tampered probability of every pixel of ``source`` (see the module docstring for policies)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}.")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}.")
    loaded = source if isinstance(source, LoadedImage) else load_image(source)  # callers scoring several methods read once
    result = ela_of_loaded(loaded, ElaSettings(quality=quality))
    image, ela_map = result.image, result.ela
    names, size = input_names(model), input_size(model)
    height, width = image.shape[:2]
    sources = {"rgb": image, "ela": ela_map}
    if policy == "resize":
        inputs = {name: _resized(sources[name], (size, size))[None] for name in names}
        small = _predict(model, inputs)[0]
        probability = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR))
    else:
        probability = _tiled(model, sources, names, size, overlap, batch_size)
    return Localization(np.clip(probability, 0.0, 1.0), image, ela_map, policy, result.conversions)


def _tile_starts(length: int, size: int, stride: int) -> list[int]:
    if length <= size:
        return [0]
    starts = list(range(0, length - size, stride))
    return starts + [length - size]


def _tiled(model, sources, names, size, overlap, batch_size) -> np.ndarray:
    height, width = sources["rgb"].shape[:2]
    padded = {name: _pad_to(sources[name], size) for name in names}
    full_height, full_width = padded[names[0]].shape[:2]
    stride = max(1, int(size * (1.0 - overlap)))
    corners = [(top, left) for top in _tile_starts(full_height, size, stride) for left in _tile_starts(full_width, size, stride)]
    total = np.zeros((full_height, full_width), np.float32)
    count = np.zeros((full_height, full_width), np.float32)
    for first in range(0, len(corners), batch_size):
        chunk = corners[first : first + batch_size]
        inputs = {name: np.stack([padded[name][t : t + size, l : l + size] for t, l in chunk]).astype(np.float32) for name in names}
        for (top, left), tile in zip(chunk, _predict(model, inputs)):
            total[top : top + size, left : left + size] += tile
            count[top : top + size, left : left + size] += 1.0
    return (total / count)[:height, :width]


def _pad_to(array: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad an image so both sides are at least ``size``."""
    pad_height, pad_width = max(0, size - array.shape[0]), max(0, size - array.shape[1])
    if not pad_height and not pad_width:
        return array
    return np.pad(array, ((0, pad_height), (0, pad_width), (0, 0)), mode="reflect" if min(array.shape[:2]) > 1 else "edge")
