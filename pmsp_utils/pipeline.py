"""One way from a decoded image to the network's inputs, and from its output back to the image. Explained in 04_training.

Training and inference both call :func:`to_input` and :func:`from_output`, so the
two cannot drift apart. No Keras here: the functions take and return NumPy arrays.

Two policies bring an image of any size to the model's square input:

- ``"resize"`` (the paper): RGB and ELA are resized bilinearly to the square
  (the aspect ratio is not kept), the mask by nearest neighbour; the map is
  resized back to the image's size.
- ``"pad"``: an image that fits is placed at its own pixels in the top-left
  corner of the square, with zeros around it; a larger one is first resized to
  fit, keeping its aspect ratio. The padding is marked :data:`IGNORE` in the
  mask, so the loss and the metrics skip it, and it is cropped from the map.
  CASIA's 384x256 images then reach a 384x384 network without resampling the
  JPEG grid that ELA reads.
- ``"native"``: nothing is ever resampled. An image that fits is padded exactly
  as with ``"pad"``; a larger one is, in training, cropped to a window of the
  input's size whose corner lies on the 8x8 JPEG grid (:func:`crop_window`), and
  at inference covered by overlapping tiles on that grid whose maps are blended
  with weights that fall towards each tile's edge (:func:`blend_weights`), so no
  seam shows where two tiles meet.

ELA is always computed before this step, on the image at its full resolution.

:func:`localize` is the whole way for one image: decode, ELA with the model's
own settings, :func:`to_input`, the network, :func:`from_output`. A third
policy, ``"tile"``, runs overlapping full-resolution tiles instead, for large
photos (memory bounded by one batch of tiles; the network sees another scale
than in training).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .model_settings import INPUT_POLICIES, ModelSettings
from .images import pillow_to_numpy

#: Mask value of pixels that are not part of the image (padding): skipped by the loss and the metrics.
IGNORE = 255
#: The same, in the float32 targets the losses take (where masks are 0..1, soft targets included).
TARGET_IGNORE = -1.0
#: Input value of padding pixels (RGB and ELA).
PAD_VALUE = 0


def empty_batch(count: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb, ela, targets) for ``count`` images of a ``size`` x ``size`` input, all padding: uint8 RGB and ELA at
    :data:`PAD_VALUE`, float32 targets at :data:`TARGET_IGNORE`; training fills each image's extent (top left)."""
    return (np.full((count, size, size, 3), PAD_VALUE, np.uint8), np.full((count, size, size, 3), PAD_VALUE, np.uint8),
            np.full((count, size, size, 1), TARGET_IGNORE, np.float32))


@dataclass(frozen=True)
class Geometry:
    """Where an image of ``height`` x ``width`` sits in the model's square input."""

    height: int
    width: int
    input_size: int
    policy: str
    placed_height: int  # the image's extent inside the input, after any resize
    placed_width: int


def geometry(height: int, width: int, input_size: int, policy: str) -> Geometry:
    """The placement of an image in the square input under ``policy`` (see the module docstring)."""
    if policy not in INPUT_POLICIES:
        raise ValueError(f"policy must be one of {INPUT_POLICIES}, got {policy!r}.")
    if policy == "resize":
        return Geometry(height, width, input_size, policy, input_size, input_size)
    scale = min(1.0, input_size / max(height, width))
    placed = (max(1, min(input_size, round(height * scale))), max(1, min(input_size, round(width * scale))))
    return Geometry(height, width, input_size, policy, *placed)


#: Above this many pixels a colour array is resized one channel at a time: Pillow holds RGB at 4 bytes a pixel, so a
#: whole-image copy of an 80-megapixel photo costs 320 MB, one channel 80 MB. The result is the same, value for value.
CHANNELWISE_PIXELS = 4_000_000


def _resize(array: np.ndarray, height: int, width: int, resample) -> np.ndarray:
    if array.shape[:2] == (height, width):
        return np.asarray(array)
    if array.ndim == 3 and array.shape[0] * array.shape[1] > CHANNELWISE_PIXELS:
        return np.stack([_resize(array[..., channel], height, width, resample) for channel in range(array.shape[2])], axis=2)
    return pillow_to_numpy(Image.fromarray(np.ascontiguousarray(array)).resize((width, height), resample))


def to_input(image: np.ndarray, ela_map: np.ndarray, mask: np.ndarray | None, input_size: int, policy: str = "resize"):
    """(rgb, ela, mask, geometry) in the model's square input: uint8 (S, S, 3) twice and uint8 (S, S) or None.

    ``image`` and ``ela_map`` are uint8 (H, W, 3) at the image's own size, ``mask``
    uint8 (H, W) with 1 = tampered (or None). With the ``"pad"`` policy the mask is
    :data:`IGNORE` outside the image.
    """
    rgb, ela_small, mask_small, where = to_placed(image, ela_map, mask, input_size, policy)
    if policy in ("pad", "native"):
        rgb, ela_small = _place(rgb, input_size, PAD_VALUE), _place(ela_small, input_size, PAD_VALUE)
        mask_small = None if mask_small is None else _place(mask_small, input_size, IGNORE)
    return rgb, ela_small, mask_small, where


def to_placed(image: np.ndarray, ela_map: np.ndarray, mask: np.ndarray | None, input_size: int, policy: str = "resize"):
    """:func:`to_input` before the padding: (rgb, ela, mask, geometry) at the image's extent inside the input,
    ``geometry.placed_height`` x ``geometry.placed_width``. The training pipeline caches these and places them
    in the square itself (zeros around the image, :data:`IGNORE` in the mask), as :func:`to_input` does."""
    height, width = image.shape[:2]
    if ela_map.shape[:2] != (height, width) or (mask is not None and mask.shape[:2] != (height, width)):
        raise ValueError(f"image {image.shape[:2]}, ELA {ela_map.shape[:2]} and mask {None if mask is None else mask.shape} differ in size.")
    if policy == "native" and max(height, width) > input_size:
        raise ValueError(f"an image of {width}x{height} does not fit a {input_size} input whole under the native policy: "
                         "crop it first (crop_window) or localize it in tiles.")
    where = geometry(height, width, input_size, policy)
    rgb = _resize(image, where.placed_height, where.placed_width, Image.Resampling.BILINEAR)
    ela_small = _resize(ela_map, where.placed_height, where.placed_width, Image.Resampling.BILINEAR)
    mask_small = None if mask is None else _resize(mask, where.placed_height, where.placed_width, Image.Resampling.NEAREST)
    return rgb, ela_small, mask_small, where


def _place(array: np.ndarray, size: int, fill: int) -> np.ndarray:
    canvas = np.full((size, size) + array.shape[2:], fill, dtype=array.dtype)
    canvas[: array.shape[0], : array.shape[1]] = array
    return canvas


def from_output(probability: np.ndarray, where: Geometry) -> np.ndarray:
    """The network's (S, S) map back at the image's own size (H, W), float32 in [0, 1]."""
    probability = np.asarray(probability, dtype=np.float32)
    if where.policy in ("pad", "native"):
        probability = probability[: where.placed_height, : where.placed_width]
    if (where.height, where.width) == probability.shape:
        return np.clip(probability, 0.0, 1.0)
    back = Image.fromarray(np.ascontiguousarray(probability)).resize((where.width, where.height), Image.Resampling.BILINEAR)
    full = pillow_to_numpy(back, np.float32)  # one writable full-size copy, clipped in place
    del back
    return np.clip(full, 0.0, 1.0, out=full)


def valid_region(mask: np.ndarray, ignore: float = IGNORE) -> tuple[slice, slice]:
    """The rows and columns of a model-input mask that hold the image (not ``ignore`` padding: :data:`IGNORE`
    in uint8 masks, -1 in the float targets of the losses).

    Padding is placed to the right and below, so the image is a top-left rectangle.
    """
    inside = np.asarray(mask) != ignore
    rows, columns = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if not len(rows):
        return slice(0, 0), slice(0, 0)
    return slice(0, int(rows[-1]) + 1), slice(0, int(columns[-1]) + 1)


# --- one image through a model ----------------------------------------------------------

LOCALIZE_POLICIES = INPUT_POLICIES + ("tile",)


@dataclass(frozen=True)
class Localization:
    """A probability map (H, W) in [0, 1] with the image and ELA it came from."""

    probability: np.ndarray
    image: np.ndarray
    ela: np.ndarray
    policy: str
    conversions: tuple[str, ...]


def input_names(model) -> list[str]:
    """The names of a model's inputs ("rgb", "ela"); an exported model (:mod:`pmsp_utils.runtime`) lists its own."""
    names = getattr(model, "pmsp_input_names", None)
    return list(names) if names else [tensor.name.split(":")[0] for tensor in model.inputs]


def _settings_of(model, settings: ModelSettings | None):
    """(keras model, settings). Models from ``build_pmsp`` and ``models.load_model`` carry
    their settings (``model.pmsp_settings``); ``settings`` overrides them."""
    if hasattr(model, "settings") and hasattr(model, "model"):  # a LoadedModel
        return model.model, settings or model.settings
    settings = settings or getattr(model, "pmsp_settings", None)
    if settings is None:
        raise ValueError("localize needs the model's settings (input size, ELA quality, input policy), and this model carries "
                         "none: load it with pmsp_utils.models.load_model(...), or pass settings=ModelSettings(...).")
    return model, settings


def predict_inputs(model, inputs: dict[str, np.ndarray], *, flip: bool = False) -> np.ndarray:
    """The network's maps (B, S, S) for a batch of inputs; with ``flip``, averaged with the horizontally flipped batch's."""
    if not flip:
        return np.asarray(model.predict_on_batch(inputs), dtype=np.float32)[..., 0]
    # One call for the batch and its mirror (on a 2-core CPU about 6% faster than two calls).
    count = len(next(iter(inputs.values())))
    both = {name: np.concatenate([values, values[:, :, ::-1]]) for name, values in inputs.items()}
    maps = np.asarray(model.predict_on_batch(both), dtype=np.float32)[..., 0]
    return 0.5 * (maps[:count] + maps[count:, :, ::-1])


#: Share of a tile its neighbour repeats, by policy: "native" blends its seams, so a narrower band does (a 12 MP photo
#: takes 108 tiles of 384 at 1/8 against 165 at 1/4; benchmarks/bench_native.py).
DEFAULT_OVERLAP = {"tile": 0.25, "native": 0.125}


def localize(model, source, *, settings: ModelSettings | None = None, policy: str | None = None, flip: bool | None = None,
             overlap: float | None = None, batch_size: int = 4) -> Localization:
    """Predict the tampered probability of every pixel of ``source`` (a path, bytes, an array or a loaded image).

    ``model``: a :class:`~pmsp_utils.models.LoadedModel` (it carries its settings) or a Keras
    model with ``settings``. ``policy``: None (the model's own), ``"resize"``, ``"pad"`` or
    ``"tile"``. ``flip``: test-time augmentation, the mean of the map and of the
    horizontally flipped input's map; None: the model's own setting.
    """
    from .ela import ElaSettings, ela_of_loaded
    from .images import LoadedImage, load_image

    network, settings = _settings_of(model, settings)
    policy = policy or settings.policy
    flip = settings.flip if flip is None else flip
    if policy not in LOCALIZE_POLICIES:
        raise ValueError(f"policy must be one of {LOCALIZE_POLICIES}, got {policy!r}.")
    overlap = DEFAULT_OVERLAP.get(policy, 0.25) if overlap is None else overlap
    if not 0.0 <= overlap <= 0.9:  # 0.99 would mean a tile every few pixels: hours for one image
        raise ValueError(f"overlap is the share of a tile its neighbour repeats, in [0, 0.9], got {overlap}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size is the number of tiles per forward pass, at least 1, got {batch_size!r}.")
    loaded = source if isinstance(source, LoadedImage) else load_image(source)  # callers scoring several methods read once
    result = ela_of_loaded(loaded, ElaSettings.of_model(settings))
    image, ela_map, conversions = result.image, result.ela, result.conversions
    del result, loaded  # the decoded Pillow image (4 bytes a pixel) is not needed past this point: let it go
    names, size = input_names(network), settings.input_size
    if policy == "tile":
        probability = _tiled(network, {"rgb": image, "ela": ela_map}, names, size, overlap, batch_size, flip)
    elif policy == "native" and max(image.shape[:2]) > size:
        probability = native_tiles(network, {"rgb": image, "ela": ela_map}, names, size, overlap, batch_size, flip)
    else:
        rgb, ela_small, _, where = to_input(image, np.ascontiguousarray(ela_map), None, size, policy)
        arrays = {"rgb": rgb, "ela": ela_small}
        small = predict_inputs(network, {name: arrays[name][None].astype(np.float32) for name in names}, flip=flip)[0]
        probability = from_output(small, where)  # already in [0, 1]
    if policy == "tile":
        probability = np.clip(probability, 0.0, 1.0)
    return Localization(probability, image, ela_map, policy, conversions)


def _tile_starts(length: int, size: int, stride: int) -> list[int]:
    if length <= size:
        return [0]
    starts = list(range(0, length - size, stride))
    return starts + [length - size]


def _tiled(model, sources, names, size, overlap, batch_size, flip) -> np.ndarray:
    height, width = sources["rgb"].shape[:2]
    padded = {name: _pad_to(sources[name], size) for name in names}
    full_height, full_width = padded[names[0]].shape[:2]
    stride = max(1, int(size * (1.0 - overlap)))
    corners = [(top, left) for top in _tile_starts(full_height, size, stride) for left in _tile_starts(full_width, size, stride)]
    total = np.zeros((full_height, full_width), np.float32)
    count = np.zeros((full_height, full_width), np.float32)
    for first in range(0, len(corners), batch_size):
        chunk = corners[first : first + batch_size]
        inputs = {name: np.stack([padded[name][top : top + size, left : left + size] for top, left in chunk]).astype(np.float32) for name in names}
        for (top, left), tile in zip(chunk, predict_inputs(model, inputs, flip=flip)):
            total[top : top + size, left : left + size] += tile
            count[top : top + size, left : left + size] += 1.0
    return (total / count)[:height, :width]


#: The JPEG block: native crops and tiles start on multiples of it, so each window sees the 8x8 grid where the
#: whole image has it.
JPEG_BLOCK = 8


def crop_window(height: int, width: int, size: int, rng: np.random.Generator, *, grid: int = JPEG_BLOCK) -> tuple[int, int]:
    """(top, left) of a random ``size`` window of an image, on the ``grid`` (multiples of 8 by default); 0 along a side
    the window covers whole."""

    def start(length: int) -> int:
        room = max(0, length - size)
        return int(rng.integers(0, room // grid + 1)) * grid if room else 0

    return start(height), start(width)


def blend_weights(size: int, overlap: int) -> np.ndarray:
    """(size, size) float32 weights of one tile's map: 1 in the middle, falling linearly over the ``overlap`` pixels at
    each edge to a small positive floor. Neighbours' maps fade into each other across their shared band instead of
    switching at a line; where one tile alone covers a pixel, its map comes through unchanged (the weights divide out)."""
    ramp = max(1, int(overlap))
    positions = np.arange(size, dtype=np.float32) + 0.5
    one_side = np.clip(np.minimum(positions, size - positions) / ramp, 1e-3, 1.0)
    return np.outer(one_side, one_side).astype(np.float32)


def native_tiles(model, sources, names, size, overlap, batch_size, flip) -> np.ndarray:
    """The map of an image larger than the input, from overlapping tiles at its own pixels (the ``"native"`` policy).

    The image is padded with zeros below and to the right to a multiple of 8, so every tile starts on the JPEG grid;
    tiles overlap by ``overlap`` of their size (rounded to the grid) and their maps are blended with
    :func:`blend_weights`. Memory: one batch of tiles and two float32 maps of the image."""
    height, width = sources["rgb"].shape[:2]
    grid = JPEG_BLOCK
    full_height, full_width = max(size, -(-height // grid) * grid), max(size, -(-width // grid) * grid)
    band = max(grid, int(round(size * overlap / grid)) * grid)
    stride = max(grid, size - band)
    # every start a multiple of 8: the stride is, and the padded length too (so the last, flush with its end, is)
    corners = [(top, left) for top in _tile_starts(full_height, size, stride) for left in _tile_starts(full_width, size, stride)]
    weights = blend_weights(size, band)
    total = np.zeros((full_height, full_width), np.float32)
    count = np.zeros((full_height, full_width), np.float32)

    def window(name, top, left):
        tile = np.full((size, size, 3), PAD_VALUE, np.float32)
        part = sources[name][top : top + size, left : left + size]
        tile[: part.shape[0], : part.shape[1]] = part
        return tile

    for first in range(0, len(corners), batch_size):
        chunk = corners[first : first + batch_size]
        inputs = {name: np.stack([window(name, top, left) for top, left in chunk]) for name in names}
        for (top, left), tile in zip(chunk, predict_inputs(model, inputs, flip=flip)):
            total[top : top + size, left : left + size] += tile * weights
            count[top : top + size, left : left + size] += weights
    return np.clip(total[:height, :width] / count[:height, :width], 0.0, 1.0)


def _pad_to(array: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad an image so both sides are at least ``size``."""
    pad_height, pad_width = max(0, size - array.shape[0]), max(0, size - array.shape[1])
    if not pad_height and not pad_width:
        return array
    return np.pad(array, ((0, pad_height), (0, pad_width), (0, 0)), mode="reflect" if min(array.shape[:2]) > 1 else "edge")
