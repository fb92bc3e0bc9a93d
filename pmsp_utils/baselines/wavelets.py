"""Daubechies wavelets and the diagonal (HH) detail of a one-level 2-D transform, in NumPy."""

from __future__ import annotations

from functools import lru_cache
from math import comb

import numpy as np


@lru_cache(maxsize=None)
def daubechies(vanishing_moments: int) -> np.ndarray:
    """The 2N low-pass coefficients of the Daubechies wavelet dbN (minimum phase, sum sqrt(2)).

    Built by spectral factorisation: |Q|^2 = sum_k C(N-1+k, k) y^k with
    y = (2 - z - 1/z) / 4; the roots inside the unit circle give Q, and
    H(z) = ((1 + z^-1) / 2)^N Q(z). db1 is Haar; db2 is (1+-sqrt3, 3+-sqrt3) / (4 sqrt2).
    """
    n = vanishing_moments
    if not 1 <= n <= 12:
        raise ValueError(f"vanishing_moments must be 1..12, got {n}.")
    binomial = np.array([1.0])
    for _ in range(n):
        binomial = np.convolve(binomial, [0.5, 0.5])
    q = np.array([1.0])
    if n > 1:
        p_coefficients = [comb(n - 1 + k, k) for k in range(n)]  # P(y), lowest power first
        for y in np.roots(p_coefficients[::-1]):
            # y = (2 - z - 1/z)/4  <=>  z^2 - (2 - 4y) z + 1 = 0; keep the root inside the unit circle
            roots = np.roots([1.0, -(2.0 - 4.0 * y), 1.0])
            q = np.convolve(q, [1.0, -roots[np.argmin(np.abs(roots))]])
    h = np.real(np.convolve(binomial, q))
    return h * np.sqrt(2.0) / h.sum()


def diagonal_detail(image: np.ndarray, vanishing_moments: int = 8) -> np.ndarray:
    """The HH sub-band of a one-level 2-D wavelet transform, aligned with the image.

    Symmetric extension; coefficient (i, j) is centred on pixels (2i + 0.5, 2j + 0.5),
    so the sub-band has shape (ceil(H / 2), ceil(W / 2)) and block b of it covers
    pixel block b of twice the size.
    """
    low = daubechies(vanishing_moments)
    high = low[::-1] * (-1.0) ** np.arange(low.size)
    pad = low.size - 1
    extended = np.pad(np.asarray(image, np.float64), pad, mode="symmetric")
    start = low.size // 2  # valid output i is centred on pixel i - (L - 1) / 2
    rows = _filter_axis(extended, high, axis=0)[start::2][: (image.shape[0] + 1) // 2]
    return _filter_axis(rows, high, axis=1)[:, start::2][:, : (image.shape[1] + 1) // 2]


def _filter_axis(array: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """'valid' correlation of every line along ``axis`` with ``taps``."""
    moved = np.moveaxis(array, axis, -1)
    length = moved.shape[-1] - taps.size + 1
    out = np.zeros(moved.shape[:-1] + (length,))
    for index, tap in enumerate(taps):
        out += tap * moved[..., index : index + length]
    return np.moveaxis(out, -1, axis)
