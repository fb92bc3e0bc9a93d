"""NOI1: local noise level from the wavelet diagonal detail (Mahdian and Saic 2009).

Spliced material often carries a different noise level. The finest diagonal
(HH) wavelet sub-band of the luminance holds mostly noise; its level in a block
is estimated robustly with the median absolute value divided by 0.6745 (Donoho's
estimator). Blocks whose level differs from the rest stand out. Following the
common implementation (Zampoglou et al.'s toolbox), the map is that estimate
per block of the sub-band, without the paper's final merging into regions;
a block of 8 sub-band samples covers 16x16 pixels.
"""

from __future__ import annotations

import numpy as np

from .common import block_view, expand_blocks, finish, loaded, luminance
from .wavelets import diagonal_detail


def noi1_map(source, block: int = 8, vanishing_moments: int = 8) -> np.ndarray:
    """The NOI1 heat map: local noise level per 2*block pixels, scaled per image to [0, 1]."""
    image = loaded(source)
    y = luminance(image)
    detail = diagonal_detail(y, vanishing_moments)
    sigma = np.median(np.abs(block_view(detail, block)), axis=2) / 0.6745
    return finish(image, expand_blocks(sigma, 2 * block, y.shape))
