"""Plotting helpers shared by the notebooks: grids of images, ELA and masks."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def ela_for_display(ela_map: np.ndarray, percentile: float = 99.5) -> np.ndarray:
    """Stretch an ELA map to [0, 1] so its ``percentile`` is white (display only).

    A plain max stretch lets a few outlier pixels keep the whole map dark.
    """
    ela_map = np.asarray(ela_map, dtype=np.float32)
    top = float(np.percentile(ela_map, percentile))
    if top <= 0:
        top = float(ela_map.max()) or 1.0
    return np.clip(ela_map / top, 0.0, 1.0)


def show_grid(
    rows: Sequence[Sequence[np.ndarray]],
    column_titles: Sequence[str] = (),
    row_labels: Sequence[str] = (),
    *,
    size: float = 2.6,
    cmap: str = "gray",
):
    """Draw a grid of images (rows of equal length); returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows * 0.8), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c >= len(row):
                axis.axis("off")
                continue
            image = row[c]
            image = np.asarray(image)
            top = 255 if image.dtype == np.uint8 and image.max() > 1 else 1
            axis.imshow(image, cmap=cmap if image.ndim == 2 else None, vmin=0, vmax=top)
            if r == 0 and c < len(column_titles):
                axis.set_title(column_titles[c])
            if c == 0 and r < len(row_labels):
                axis.set_ylabel(row_labels[r], fontsize="small")
    figure.tight_layout()
    return figure
