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
                # Horizontal, to the left of the row: a long or two-line label is never cut by the row's height.
                axis.set_ylabel(row_labels[r], fontsize="small", rotation=0, ha="right", va="center", labelpad=6)
    figure.tight_layout()
    return figure


def draw_network(model, *, title: str | None = None):
    """A block diagram of a PMSP model (the paper's Figure 3), drawn from the model's own layers and shapes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    streams = [layer for layer in model.layers if layer.name.endswith("_stream")]
    figure, axis = plt.subplots(figsize=(11, 1.6 + 1.5 * len(streams)))
    axis.set_xlim(-0.15, 11.05)  # a margin, so the first boxes are not clipped
    axis.set_ylim(-0.5, 1.5 * (len(streams) - 1) + 0.5)
    axis.axis("off")

    def box(x, y, text, color, width=1.05):
        axis.add_patch(FancyBboxPatch((x, y - 0.32), width, 0.64, boxstyle="round,pad=0.03", facecolor=color, edgecolor="0.3"))
        axis.text(x + width / 2, y, text, ha="center", va="center", fontsize=7.5)

    def arrow(x0, y0, x1, y1):
        axis.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "color": "0.3"})

    middle = 0.75 * (len(streams) - 1)
    for row, stream in enumerate(streams):
        y = 1.5 * (len(streams) - 1 - row)
        label = stream.name.replace("_stream", "").upper()
        box(0.0, y, f"{label}\n{model.input_shape[0][1] if isinstance(model.input_shape, list) else model.input_shape[1]}²x3", "#dde8f7", 0.8)
        x = 1.0
        for level, output in enumerate(stream.outputs, start=1):
            attended = any(layer.name == f"coord_attention_f{level}" for layer in stream.layers)
            shape = output.shape
            box(x, y, f"F{level}\n{shape[1]}²x{shape[-1]}" + ("\n+ CA" if attended else ""), "#fbe3c8" if attended else "#eeeeee", 0.95)
            arrow(x - 0.2 if level > 1 else 0.8, y, x, y)
            x += 1.1
        arrow(x - 0.15, y, 6.75, middle)
    fusion = next((layer.name.split("_")[1].upper() for layer in model.layers if layer.name.startswith("fusion_")), "-")
    box(6.75, middle, f"fusion\n{fusion}", "#d9f0d3", 0.8)
    box(7.8, middle, "pyramid\npooling\n1,2,3,6", "#d9f0d3", 0.9)
    settings = getattr(model, "pmsp_settings", None)
    decoder = any(layer.name.startswith("decoder_") for layer in model.layers)
    stride = settings.prediction_stride if settings is not None else (8 if decoder else 32)
    box(8.95, middle, "head\nconv" + ("\n+ F3\ndecoder" if decoder else ""), "#d9f0d3", 0.7)
    box(9.9, middle, f"upsample\nx{stride} + σ\n{model.output_shape[1]}²x1", "#f7d9d9", 1.0)
    for x0, x1 in ((7.55, 7.8), (8.7, 8.95), (9.65, 9.9)):
        arrow(x0, middle, x1, middle)
    axis.set_title(title or f"{model.name}: {model.count_params() / 1e6:.2f} M parameters", fontsize=9)
    figure.tight_layout()
    return figure


CONFUSION_COLOURS = {"true positive": (0, 170, 0), "false positive": (220, 0, 0), "false negative": (255, 190, 0), "true negative": (0, 0, 0)}


def confusion_image(prediction: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A colour picture of one binary prediction against its mask (defined in 05_evaluation).

    Green: found (true positive); red: false alarm; amber: missed; black: correctly authentic.
    """
    prediction, truth = np.asarray(prediction, bool), np.asarray(mask, bool)
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {prediction.shape} and mask {truth.shape} differ in shape.")
    picture = np.zeros(truth.shape + (3,), np.uint8)
    for name, where in (("true positive", prediction & truth), ("false positive", prediction & ~truth),
                        ("false negative", ~prediction & truth)):
        picture[where] = CONFUSION_COLOURS[name]
    return picture
