"""Interactive explorers for the notebooks. Each widget calls a pure, tested function and draws it.

Defined in 01_error_level_analysis (the ELA explorer); 02_forgery_datasets (the synthetic
explorer); 05_evaluation (the threshold explorer).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .ela import DEFAULT_QUALITY, SCALINGS, ElaResult, ela_result
from .images import ImageSource
from .metrics import f1_score, pixel_auc
from .viz import confusion_image, ela_for_display


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
            [_row([self.image, self.scaling]), _row([self.quality, self.zoom]), self.output]
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
        panels = [("image", view.image), (f"ELA q={view.quality}, {view.scaling}", ela_for_display(view.ela))]
        if view.mask is not None:
            panels.append(("ground truth", view.mask))
        title = f"{view.name}: pixel AUC of ELA (this image) = {view.auc:.3f}" if view.auc is not None else view.name
        # Set the output record directly: works in a kernel and in plain pytest alike.
        self.output.outputs = (_figure_output(panels, title),)

    def _ipython_display_(self) -> None:
        display_with_picture(self.widget, self.output, type(self).__name__)


# --- the synthetic generator's knobs (02_forgery_datasets) ----------------------------


@dataclass(frozen=True)
class SyntheticView:
    """One generated image under chosen knobs, with its raw ELA and how well ELA finds the region."""

    forgery: object
    ela: np.ndarray
    auc: float | None


def synthetic_config(
    kind: str = "splicing",
    area: float = 0.05,
    host_quality: int = 80,
    final_quality: int = 85,
    double_jpeg: bool = True,
    resample: bool = False,
    rotate: bool = False,
    feather: bool = False,
    blur: bool = False,
    noise: bool = False,
    color_match: bool = False,
    size: int = 576,
):
    """A :class:`SyntheticConfig` that pins every knob (probabilities 0 or 1, fixed qualities)."""
    from pmsp_utils.data.synthetic import SyntheticConfig

    if kind not in {"splicing", "copy-move", "authentic"}:
        raise ValueError(f"kind must be 'splicing', 'copy-move' or 'authentic', got {kind!r}.")
    return SyntheticConfig(
        size=size,
        splicing=1.0 if kind == "splicing" else 0.0,
        copy_move=1.0 if kind == "copy-move" else 0.0,
        area=(area * 0.8, min(0.4, area * 1.25)),
        uncompressed_host=1.0 if host_quality >= 100 else 0.0,
        host_quality=(host_quality, host_quality),
        donor_double_jpeg=float(double_jpeg),
        resample=float(resample),
        rotate=float(rotate),
        feather=float(feather),
        blur=float(blur),
        noise=float(noise),
        color_match=float(color_match),
        final_quality=(final_quality, final_quality),
    )


def synthetic_view(config, seed: int = 0, index: int = 0) -> SyntheticView:
    """Generate item ``index`` of the set with ``seed`` under ``config``, with its raw ELA at 90."""
    from pmsp_utils.data.synthetic import SyntheticForgerySet
    from pmsp_utils.ela import ela

    forgery = SyntheticForgerySet(index + 1, seed=seed, config=config)[index]
    ela_map = ela(forgery.data)
    auc = pixel_auc(ela_map.mean(axis=2), forgery.mask) if forgery.mask.any() else None
    return SyntheticView(forgery, ela_map, auc)


class SyntheticExplorer:
    """The generator's knobs as widgets; the image, its mask and its ELA redraw on release."""

    def __init__(self, seed: int = 0, size: int = 576) -> None:
        import ipywidgets as widgets

        self.size = size
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=10_000, description="seed")
        self.kind = widgets.Dropdown(options=["splicing", "copy-move"], description="kind")
        self.area = widgets.FloatLogSlider(value=0.05, base=10, min=np.log10(0.005), max=np.log10(0.4), step=0.05, description="area", continuous_update=False)
        self.host_quality = widgets.IntSlider(value=80, min=50, max=100, description="camera q", continuous_update=False)
        self.final_quality = widgets.IntSlider(value=85, min=50, max=100, description="final q", continuous_update=False)
        self.switches = {
            name: widgets.Checkbox(value=name == "double_jpeg", description=name.replace("_", " "), indent=False)
            for name in ("double_jpeg", "resample", "rotate", "feather", "blur", "noise", "color_match")
        }
        self.output = widgets.Output()
        self.view: SyntheticView | None = None
        controls = [self.seed, self.kind, self.area, self.host_quality, self.final_quality, *self.switches.values()]
        for control in controls:
            control.observe(lambda change: self.update(), names="value")
        self.widget = widgets.VBox([
            _row([self.seed, self.kind]),
            _row([self.area, self.host_quality, self.final_quality]),
            _row(list(self.switches.values())),
            self.output,
        ])
        self.update()

    def config(self):
        """The :class:`SyntheticConfig` the controls describe."""
        return synthetic_config(
            self.kind.value, self.area.value, self.host_quality.value, self.final_quality.value,
            size=self.size, **{name: box.value for name, box in self.switches.items()},
        )

    def update(self) -> SyntheticView:
        self.view = synthetic_view(self.config(), seed=self.seed.value)
        forgery = self.view.forgery
        title = f"raw ELA pixel AUC {self.view.auc:.2f}" if self.view.auc is not None else "authentic"
        self.output.outputs = (_figure_output([("image", forgery.image), ("mask", forgery.mask), ("ELA q=90", ela_for_display(self.view.ela))], title),)
        return self.view

    def _ipython_display_(self) -> None:
        display_with_picture(self.widget, self.output, type(self).__name__)


@dataclass(frozen=True)
class ThresholdView:
    """F1 of one probability map at one threshold, and the whole F1-against-threshold curve."""

    threshold: float
    f1: float
    best_threshold: float
    best_f1: float
    thresholds: np.ndarray
    f1_curve: np.ndarray
    confusion: np.ndarray


def threshold_view(probability: np.ndarray, mask: np.ndarray, threshold: float = 0.5, steps: int = 99) -> ThresholdView:
    """Per-image F1 at ``threshold``, the curve over ``steps`` thresholds in (0, 1) and its best point (an oracle)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}.")
    thresholds = np.linspace(0.0, 1.0, steps + 2)[1:-1]
    curve = np.array([f1_score(probability >= value, mask) for value in thresholds])
    best = int(np.argmax(curve))
    claimed = probability >= threshold
    return ThresholdView(threshold, f1_score(claimed, mask), float(thresholds[best]), float(curve[best]), thresholds, curve,
                         confusion_image(claimed, mask))


class ThresholdExplorer:
    """Choose an image and a threshold: the prediction's confusion picture and its F1 redraw."""

    def __init__(self, items: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], threshold: float = 0.5) -> None:
        """``items``: name -> (image, probability map, mask)."""
        import ipywidgets as widgets

        if not items:
            raise ValueError("the threshold explorer needs at least one (image, probability, mask) item.")
        self.items = dict(items)
        self.image = widgets.Dropdown(options=list(self.items), description="image")
        self.threshold = widgets.FloatSlider(value=threshold, min=0.01, max=0.99, step=0.01, description="threshold", continuous_update=False)
        self.output = widgets.Output()
        self.view: ThresholdView | None = None
        for control in (self.image, self.threshold):
            control.observe(lambda change: self.update(), names="value")
        self.widget = widgets.VBox([_row([self.image, self.threshold]), self.output])
        self.update()

    def update(self) -> ThresholdView:
        image, probability, mask = self.items[self.image.value]
        self.view = threshold_view(probability, mask, self.threshold.value)
        view = self.view
        title = (f"F1 {view.f1:.3f} at threshold {view.threshold:.2f}; best (oracle) {view.best_f1:.3f} at {view.best_threshold:.2f}")
        self.output.outputs = (_figure_output(
            [("image", image), ("probability", probability), ("green found, red false alarm, amber missed", view.confusion)], title),)
        return view

    def _ipython_display_(self) -> None:
        display_with_picture(self.widget, self.output, type(self).__name__)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: Inches per picture panel: about 400 pixels at the notebook's resolution.
PANEL_INCHES = 4.2


def _row(children):
    """A row of controls that wraps onto the next line on narrow screens; every control keeps a usable width."""
    import ipywidgets as widgets

    for child in children:
        sliders = (widgets.IntSlider, widgets.FloatSlider, widgets.FloatLogSlider)
        child.layout.min_width = "300px" if isinstance(child, sliders) else "140px" if isinstance(child, widgets.Checkbox) else "220px"
    return widgets.HBox(list(children), layout=widgets.Layout(flex_flow="row wrap"))


def display_with_picture(widget, output, name: str) -> None:
    """Display a live widget together with a PNG of its first view and a readable label.

    A notebook front end with a widget manager shows the live widget; GitHub, nbviewer
    and a notebook opened before running show the picture (the headless runner drops
    the widget view from saved outputs, whose state is not saved), never a raw
    ``VBox(children=...)`` line.
    """
    from IPython.display import display

    if hasattr(widget, "_repr_mimebundle_"):  # ipywidgets 8
        bundle = dict(widget._repr_mimebundle_())
    else:  # ipywidgets 7 (Colab ships 7.x): the same view record, built by hand
        bundle = {WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}}
    first = output.outputs[0]["data"] if output.outputs else {}
    if "image/png" in first:
        bundle["image/png"] = first["image/png"]
    bundle["text/plain"] = f"<{name}: {first.get('text/plain', 'interactive view').strip('<>')} (run the notebook to interact)>"
    display(bundle, raw=True)


def _figure_output(panels, title: str) -> dict:
    """Draw panels side by side and return them as a PNG display record for an Output widget."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(PANEL_INCHES * len(panels), PANEL_INCHES * 0.95))
    for axis, (name, picture) in zip(np.atleast_1d(axes), panels):
        axis.imshow(picture, cmap="gray" if np.ndim(picture) == 2 else None)
        axis.set_title(name)
        axis.axis("off")
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return {"output_type": "display_data", "data": {"image/png": base64.b64encode(buffer.getvalue()).decode(), "text/plain": f"<{title}>"}, "metadata": {}}
