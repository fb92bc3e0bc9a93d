"""The classic baselines of the paper's Table I, scored with the same metrics as the network.

Each takes any image :func:`pmsp_utils.images.load_image` accepts and returns a
float32 heat map at the image's size (display orientation), scaled per image to
[0, 1] where 1 means "most likely tampered":

- ``ela``:  Error Level Analysis (Krawetz 2007), the mean raw difference over the channels;
- ``noi1``: wavelet noise-level inconsistency (Mahdian and Saic 2009);
- ``cfa1``: colour filter array artefacts (Ferrara et al. 2012), simplified.

Defined in 05_evaluation. Per-image [0, 1] scaling is what toolboxes of these
methods do before scoring; it makes a fixed threshold of 0.5 meaningful for
them, and does not change any per-image AUC.
"""

from __future__ import annotations

import numpy as np

from ..images import ImageSource, LoadedImage, load_image
from .cfa import cfa1_map
from .ela_map import ela_map
from .noise import noi1_map
from .wavelets import daubechies

BASELINES = {"ela": ela_map, "noi1": noi1_map, "cfa1": cfa1_map}
CITATIONS = {
    "ela": "N. Krawetz, A picture's worth: digital image analysis and forensics, Black Hat 2007.",
    "noi1": "B. Mahdian and S. Saic, Using noise inconsistencies for blind image forensics, Image and Vision Computing 27(10), 2009.",
    "cfa1": "P. Ferrara, T. Bianchi, A. De Rosa and A. Piva, Image forgery localization via fine-grained analysis of CFA "
            "artifacts, IEEE TIFS 7(5), 2012.",
}


def heatmap(name: str, source: ImageSource | LoadedImage) -> np.ndarray:
    """The heat map of baseline ``name`` ("ela", "noi1" or "cfa1") for one image."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}.")
    loaded = source if isinstance(source, LoadedImage) else load_image(source)
    return BASELINES[name](loaded)


__all__ = ["BASELINES", "CITATIONS", "cfa1_map", "daubechies", "ela_map", "heatmap", "noi1_map"]
