"""ELA as a tamper heat map (Krawetz 2007; the paper's section 3.1 and Table I's "ELA" row)."""

from __future__ import annotations

import numpy as np

from ..ela import DEFAULT_QUALITY, ElaSettings, ela_of_loaded
from .common import loaded, to_unit


def ela_map(source, quality: int = DEFAULT_QUALITY) -> np.ndarray:
    """Raw ELA at ``quality``, averaged over the colour channels, scaled per image to [0, 1]."""
    image = loaded(source)
    result = ela_of_loaded(image, ElaSettings(quality=quality))  # already in display orientation
    return to_unit(result.ela.astype(np.float64).mean(axis=2))
