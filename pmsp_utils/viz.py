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


def _flow_axis(width: float, height: float, size: tuple[float, float]):
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=size)
    axis.set_xlim(-0.2, width + 0.2)
    axis.set_ylim(-0.6, height + 0.6)
    axis.axis("off")
    return figure, axis


def _box(axis, x, y, text, color, width=1.6, height=0.62):
    from matplotlib.patches import FancyBboxPatch

    axis.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.03", facecolor=color, edgecolor="0.3"))
    axis.text(x, y, text, ha="center", va="center", fontsize=7.5)


def _arrow(axis, start, end):
    axis.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "0.3"})


def _skip(axis, points, end):
    """A dashed path through ``points`` with an arrow into ``end``: an identity branch routed around the boxes."""
    xs, ys = zip(*points)
    axis.plot(xs, ys, color="0.55", linestyle="--", linewidth=1)
    axis.annotate("", xy=end, xytext=points[-1], arrowprops={"arrowstyle": "->", "color": "0.55", "linestyle": "--"})


def draw_coordinate_attention(layer, input_shape: tuple[int, int, int]):
    """The paper's Figure 4 as a schematic drawn from a built :class:`CoordinateAttention` layer (Explained in 03).

    The shapes come from ``input_shape`` (H, W, C) and the layer's own sub-layers
    (the squeeze width, the two attending convolutions).
    """
    height, width, channels = input_shape
    hidden = layer.squeeze.filters
    figure, axis = _flow_axis(8.0, 6.0, (9, 5.2))
    _box(axis, 4.0, 6.0, f"input x\n{height}x{width}x{channels}", "#dde8f7")
    _box(axis, 2.0, 5.0, f"average over W\n{height}x1x{channels}", "#eeeeee")
    _box(axis, 6.0, 5.0, f"average over H\n1x{width}x{channels}", "#eeeeee")
    _box(axis, 4.0, 4.0, f"concatenate\n({height}+{width})x1x{channels}", "#eeeeee", width=2.0)
    _box(axis, 4.0, 3.0, f"1x1 conv '{layer.squeeze.name}' to {hidden}\n+ batch norm + h-swish (shared)", "#fbe3c8", width=3.2)
    _box(axis, 2.0, 2.0, f"1x1 conv to {layer.attend_height.filters}\n+ sigmoid: a_h {height}x1", "#d9f0d3", width=2.2)
    _box(axis, 6.0, 2.0, f"1x1 conv to {layer.attend_width.filters}\n+ sigmoid: a_w 1x{width}", "#d9f0d3", width=2.2)
    _box(axis, 4.0, 1.0, "y = x * a_h * a_w", "#f7d9d9", width=2.2)
    _box(axis, 4.0, 0.0, f"output\n{height}x{width}x{channels}", "#dde8f7")
    for start, end in (((3.4, 5.75), (2.3, 5.3)), ((4.6, 5.75), (5.7, 5.3)), ((2.3, 4.7), (3.4, 4.3)), ((5.7, 4.7), (4.6, 4.3)),
                       ((4.0, 3.7), (4.0, 3.3)), ((3.4, 2.7), (2.4, 2.3)), ((4.6, 2.7), (5.6, 2.3)), ((2.4, 1.7), (3.4, 1.3)),
                       ((5.6, 1.7), (4.6, 1.3)), ((4.0, 0.7), (4.0, 0.3))):
        _arrow(axis, start, end)
    _skip(axis, [(3.2, 6.0), (0.3, 6.0), (0.3, 1.0)], (2.9, 1.0))  # x itself, to the product
    axis.set_title(f"Coordinate Attention ({layer.name}): the paper's Figure 4, from the layer", fontsize=9)
    figure.tight_layout()
    return figure


def draw_pyramid(model):
    """The paper's Figure 6(e) as a schematic drawn from a built PMSP model's pyramid layers (``ppm_*``) (Explained in 03)."""
    pools = sorted((layer for layer in model.layers if layer.name.startswith("ppm_pool_")), key=lambda layer: int(layer.name.rsplit("_", 1)[1]))
    concat = model.get_layer("ppm_concat")
    source = concat.input[0].shape
    figure, axis = _flow_axis(10.0, len(pools) + 0.6, (10, 1.2 + 0.9 * len(pools)))
    middle = (len(pools)) / 2
    _box(axis, 0.9, middle, f"fused F5\n{source[1]}x{source[2]}x{source[3]}", "#dde8f7", width=1.6)
    for row, pool in enumerate(pools):
        y = len(pools) - row
        bins = int(pool.name.rsplit("_", 1)[1])
        reduce = model.get_layer(f"ppm_reduce_{bins}")
        _box(axis, 3.2, y, f"average pool\n{bins}x{bins} bins ({pool.pool_size[0]}x{pool.pool_size[1]} cells)", "#eeeeee", width=2.2)
        _box(axis, 5.6, y, f"1x1 conv to {reduce.filters}\n+ BN + ReLU", "#fbe3c8", width=1.9)
        _box(axis, 7.7, y, f"bilinear up\nto {source[1]}x{source[2]}", "#eeeeee", width=1.6)
        _arrow(axis, (1.7, middle), (2.1, y))
        _arrow(axis, (4.3, y), (4.65, y))
        _arrow(axis, (6.55, y), (6.9, y))
        _arrow(axis, (8.5, y), (9.05, middle))
    _box(axis, 9.5, middle, f"concatenate\n{concat.output.shape[-1]} ch", "#d9f0d3", width=1.2)
    _skip(axis, [(0.9, middle - 0.31), (0.9, 0.3), (9.5, 0.3)], (9.5, middle - 0.31))  # F5 itself joins the concatenation
    axis.set_title("Pyramid pooling module: the paper's Figure 6(e), from the model's ppm_* layers", fontsize=9)
    figure.tight_layout()
    return figure
