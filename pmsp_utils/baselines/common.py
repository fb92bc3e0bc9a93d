"""Shared steps of the baselines: reading, block maps, scaling, orientation."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..images import ImageSource, LoadedImage, load_image


def loaded(source: ImageSource | LoadedImage) -> LoadedImage:
    return source if isinstance(source, LoadedImage) else load_image(source)


def channels(image: LoadedImage) -> np.ndarray:
    """The stored image as float64 (H, W, C), C = 3 for RGB and 1 for greyscale."""
    array = np.asarray(image.image, dtype=np.float64)
    return array[..., None] if array.ndim == 2 else array


def luminance(image: LoadedImage) -> np.ndarray:
    """ITU-R BT.601 luma (what JPEG and YCbCr use), float64 (H, W)."""
    array = channels(image)
    if array.shape[2] == 1:
        return array[..., 0]
    return array @ np.array([0.299, 0.587, 0.114])


def expand_blocks(values: np.ndarray, block: int, shape: tuple[int, int]) -> np.ndarray:
    """Repeat each block value over its ``block`` x ``block`` pixels; edge pixels take the nearest block."""
    height, width = shape
    rows = np.minimum(np.arange(height) // block, values.shape[0] - 1)
    cols = np.minimum(np.arange(width) // block, values.shape[1] - 1)
    return values[rows][:, cols]


def to_unit(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] per image (a constant map becomes all zeros)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if not np.isfinite(low) or not np.isfinite(high) or high <= low:
        return np.zeros(values.shape, np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def finish(image: LoadedImage, values: np.ndarray) -> np.ndarray:
    """Scale a stored-orientation map to [0, 1] and turn it to display orientation."""
    unit = to_unit(values)
    if image.orientation in (0, 1):
        return unit
    return np.asarray(image.to_display(Image.fromarray(unit, mode="F")), dtype=np.float32)


def block_view(array: np.ndarray, block: int) -> np.ndarray:
    """Whole ``block`` x ``block`` tiles of a 2-D array, shape (rows, cols, block * block)."""
    rows, cols = array.shape[0] // block, array.shape[1] // block
    if rows == 0 or cols == 0:
        raise ValueError(f"the image is too small for {block}x{block} blocks ({array.shape[1]}x{array.shape[0]}).")
    tiles = array[: rows * block, : cols * block].reshape(rows, block, cols, block)
    return tiles.transpose(0, 2, 1, 3).reshape(rows, cols, block * block)
