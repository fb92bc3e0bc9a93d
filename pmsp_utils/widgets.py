"""Interactive explorers for the notebooks. Each widget calls a pure, tested function and draws it.

Defined in 01_error_level_analysis (the ELA explorer).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .ela import DEFAULT_QUALITY, SCALINGS, ElaResult, ela_result
from .images import ImageSource
from .metrics import pixel_auc
from .viz import ela_for_display


@dataclass(frozen=True)
class ExplorerView:
    """What the ELA explorer shows for one setting: crops of the image, its ELA and the mask."""

    name: str
    quality: int
    scaling: str
    zoom: int
    window: tuple[int, int, int, int]  # top, left, height, width in image pixels
    image: np.ndarray
    ela: np.ndarray
    mask: np.ndarray | None
    auc: float | None
    conversions: tuple[str, ...]


def zoom_window(shape: tuple[int, int], zoom: int, center: tuple[float, float] | None = None) -> tuple[int, int, int, int]:
    """The (top, left, height, width) window that magnifies ``shape`` by ``zoom`` around ``center``."""
    if zoom < 1:
        raise ValueError(f"zoom must be at least 1, got {zoom}.")
    height, width = max(1, shape[0] // zoom), max(1, shape[1] // zoom)
    center = center or (shape[0] / 2, shape[1] / 2)
    top = int(np.clip(round(center[0] - height / 2), 0, shape[0] - height))
    left = int(np.clip(round(center[1] - width / 2), 0, shape[1] - width))
    return top, left, height, width


def explorer_view(
    name: str,
    source: ImageSource,
    quality: int = DEFAULT_QUALITY,
    scaling: str = "raw",
    zoom: int = 1,
    mask: np.ndarray | None = None,
    center: tuple[float, float] | None = None,
) -> ExplorerView:
    """Compute what the explorer draws: ELA at ``quality``/``scaling``, cropped for ``zoom``.

    The pixel AUC (per image, channel-mean ELA as the score) is computed on the
    whole image, not the crop, when a mask is given.
    """
    result: ElaResult = ela_result(source, quality=quality, scaling=scaling)
    top, left, height, width = window = zoom_window(result.ela.shape[:2], zoom, center)
    crop = np.s_[top : top + height, left : left + width]
    auc = None
    if mask is not None:
        if mask.shape != result.ela.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} differs from the image's {result.ela.shape[:2]}.")
        auc = pixel_auc(result.ela.mean(axis=2), mask)
    return ExplorerView(
        name=name,
        quality=quality,
        scaling=scaling,
        zoom=zoom,
        window=window,
        image=result.image[crop],
        ela=result.ela[crop],
        mask=None if mask is None else mask[crop],
        auc=auc,
        conversions=result.conversions,
    )


class ElaExplorer:
    """Image, JPEG quality, scaling and zoom; recomputed when a slider is released.

    ``images`` maps names to sources (paths, bytes or arrays); ``masks``
    optionally maps the same names to ground-truth masks. Display it by making
    it the last expression of a cell. ``.view`` holds the last computed
    :class:`ExplorerView`.
    """

    def __init__(
        self,
        images: Mapping[str, ImageSource],
        masks: Mapping[str, np.ndarray] | None = None,
        *,
        quality: int = DEFAULT_QUALITY,
        scaling: str = "raw",
    ) -> None:
        import ipywidgets as widgets

        if not images:
            raise ValueError("ElaExplorer needs at least one image.")
        self.images = dict(images)
        self.masks = dict(masks or {})
        self.image = widgets.Dropdown(options=list(self.images), description="image")
        self.quality = widgets.IntSlider(value=quality, min=1, max=100, description="quality", continuous_update=False)
        self.scaling = widgets.Dropdown(options=list(SCALINGS), value=scaling, description="scaling")
        self.zoom = widgets.IntSlider(value=1, min=1, max=8, description="zoom", continuous_update=False)
        self.output = widgets.Output()
        self.view: ExplorerView | None = None
        for control in (self.image, self.quality, self.scaling, self.zoom):
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox(
            [widgets.HBox([self.image, self.scaling]), widgets.HBox([self.quality, self.zoom]), self.output]
        )
        self.update()

    def _on_change(self, change) -> None:
        self.update()

    def update(self) -> ExplorerView:
        """Recompute the view from the controls and redraw it."""
        name = self.image.value
        self.view = explorer_view(
            name,
            self.images[name],
            quality=self.quality.value,
            scaling=self.scaling.value,
            zoom=self.zoom.value,
            mask=self.masks.get(name),
        )
        self._draw(self.view)
        return self.view

    def _draw(self, view: ExplorerView) -> None:
        import matplotlib.pyplot as plt

        panels = [("image", view.image), (f"ELA q={view.quality}, {view.scaling}", ela_for_display(view.ela))]
        if view.mask is not None:
            panels.append(("ground truth", view.mask))
        figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0))
        for axis, (title, picture) in zip(np.atleast_1d(axes), panels):
            axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
            axis.set_title(title)
            axis.axis("off")
        if view.auc is not None:
            figure.suptitle(f"{view.name}: pixel AUC of ELA (this image) = {view.auc:.3f}", fontsize="medium")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        # Set the output record directly: works in a kernel and in plain pytest alike.
        self.output.outputs = (
            {
                "output_type": "display_data",
                "data": {"image/png": base64.b64encode(buffer.getvalue()).decode(), "text/plain": f"<ELA of {view.name}>"},
                "metadata": {},
            },
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
