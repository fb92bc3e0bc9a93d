"""CFA1: colour filter array artefacts (after Ferrara, Bianchi, De Rosa and Piva 2012).

A camera records one colour per pixel through a Bayer filter and interpolates
the rest. In the green channel, the interpolated lattice (half the pixels, a
quincunx) is then predictable from its four neighbours, the recorded lattice
is not: the local variance of the prediction error differs between the two.
Where material was pasted, resampled or re-rendered, that difference fades.

Steps, as in the paper, with the simplifications named:
1. prediction error of green from its 4 neighbours (bilinear kernel; the paper
   estimates the camera's kernel);
2. local variance of the error on each lattice, Gaussian-weighted (sigma 1, 7x7);
3. per block, L = log(geometric mean of the recorded lattice's variance /
   that of the interpolated lattice's); the recorded lattice is taken to be the
   one with the larger mean error over the image;
4. a two-component Gaussian mixture fitted to L by EM: authentic blocks around
   a positive mean, tampered ones around 0 (the paper's model); the map is the
   posterior probability of "tampered". Blocks are 8x8 pixels (the paper's
   fine-grained 2x2 blocks are then averaged for display).
"""

from __future__ import annotations

import numpy as np

from .common import block_view, channels, expand_blocks, finish, loaded

_NEIGHBOURS = np.array([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]])


def _convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Same-size 2-D correlation with reflect padding (small kernels, NumPy only)."""
    half_rows, half_cols = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(image, ((half_rows, half_rows), (half_cols, half_cols)), mode="reflect")
    out = np.zeros_like(image, dtype=np.float64)
    for row in range(kernel.shape[0]):
        for col in range(kernel.shape[1]):
            if kernel[row, col]:
                out += kernel[row, col] * padded[row : row + image.shape[0], col : col + image.shape[1]]
    return out


def _gaussian_window(size: int = 7, sigma: float = 1.0) -> np.ndarray:
    axis = np.arange(size) - size // 2
    window = np.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * sigma**2))
    return window / window.sum()


def cfa_feature(green: np.ndarray, block: int = 8) -> np.ndarray:
    """The per-block log ratio L of the two lattices' local error variances (large = CFA traces present)."""
    error = green - _convolve(green, _NEIGHBOURS)
    rows, cols = np.indices(green.shape)
    lattices = [(rows + cols) % 2 == parity for parity in (0, 1)]
    window = _gaussian_window()
    squared = error**2
    variances = []
    for lattice in lattices:
        weight = _convolve(lattice.astype(np.float64), window)
        variances.append(_convolve(squared * lattice, window) / np.maximum(weight, 1e-12))
    recorded = int(np.argmax([squared[lattice].mean() for lattice in lattices]))
    log_variance = [np.log(np.maximum(variance, 1e-6)) for variance in variances]
    means = []
    for index in (recorded, 1 - recorded):
        tiles = block_view(np.where(lattices[index], log_variance[index], 0.0), block)
        counts = block_view(lattices[index].astype(np.float64), block).sum(axis=2)
        means.append(tiles.sum(axis=2) / counts)
    return means[0] - means[1]


def tampered_posterior(feature: np.ndarray, iterations: int = 50) -> np.ndarray:
    """EM for L ~ pi N(0, s1) [tampered] + (1 - pi) N(mu, s0) [authentic]; returns P(tampered | L)."""
    values = feature.ravel()
    spread = max(float(values.std()), 1e-3)
    mu, s0, s1, prior = float(values.mean()), spread, spread, 0.5
    for _ in range(iterations):
        tampered = prior * np.exp(-0.5 * (values / s1) ** 2) / s1
        authentic = (1 - prior) * np.exp(-0.5 * ((values - mu) / s0) ** 2) / s0
        posterior = tampered / np.maximum(tampered + authentic, 1e-300)
        prior = float(np.clip(posterior.mean(), 1e-3, 1 - 1e-3))
        weights = 1.0 - posterior
        mu = float((weights * values).sum() / max(weights.sum(), 1e-12))
        s0 = max(float(np.sqrt((weights * (values - mu) ** 2).sum() / max(weights.sum(), 1e-12))), 1e-3)
        s1 = max(float(np.sqrt((posterior * values**2).sum() / max(posterior.sum(), 1e-12))), 1e-3)
    return posterior.reshape(feature.shape)


def cfa1_map(source, block: int = 8) -> np.ndarray:
    """The CFA1 heat map: per block, the probability that CFA traces are missing, scaled to [0, 1]."""
    image = loaded(source)
    array = channels(image)
    green = array[..., 1] if array.shape[2] == 3 else array[..., 0]
    feature = cfa_feature(green, block)
    return finish(image, expand_blocks(tampered_posterior(feature), block, green.shape))
