"""The ELA explorer: the pure view function, then the widget driven by setting .value."""

import numpy as np
import pytest

from pmsp_utils.ela import ela
from pmsp_utils.metrics import pixel_auc
from pmsp_utils.widgets import ElaExplorer, explorer_view, zoom_window


def test_zoom_window():
    assert zoom_window((100, 200), 1) == (0, 0, 100, 200)
    assert zoom_window((100, 200), 2) == (25, 50, 50, 100)
    assert zoom_window((100, 200), 4, center=(0, 0)) == (0, 0, 25, 50)
    assert zoom_window((100, 200), 4, center=(100, 200)) == (75, 150, 25, 50)
    with pytest.raises(ValueError, match="zoom"):
        zoom_window((10, 10), 0)


def test_explorer_view(photo):
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[20:60, 30:90] = 1
    view = explorer_view("crop", photo, quality=70, scaling="fixed", zoom=2, mask=mask)
    top, left, height, width = view.window
    np.testing.assert_array_equal(view.ela, ela(photo, quality=70, scaling="fixed")[top : top + height, left : left + width])
    assert view.image.shape == view.ela.shape and view.mask.shape == view.ela.shape[:2]
    assert view.auc == pytest.approx(pixel_auc(ela(photo, quality=70, scaling="fixed").mean(axis=2), mask))
    with pytest.raises(ValueError, match="mask shape"):
        explorer_view("crop", photo, mask=mask[:10])


@pytest.fixture()
def explorer(photo):
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[10:50, 10:50] = 1
    return ElaExplorer({"photo": photo, "flipped": photo[:, ::-1].copy()}, {"photo": mask})


def test_widget_starts_with_a_view(explorer):
    assert explorer.view.name == "photo" and explorer.view.quality == 90 and explorer.view.auc is not None
    assert len(explorer.output.outputs) == 1


def test_setting_values_recomputes(explorer, photo):
    explorer.quality.value = 55
    assert explorer.view.quality == 55
    np.testing.assert_array_equal(explorer.view.ela, ela(photo, quality=55))
    explorer.scaling.value = "max"
    assert explorer.view.scaling == "max" and explorer.view.ela.max() == 255
    explorer.zoom.value = 4
    assert explorer.view.zoom == 4 and explorer.view.ela.shape[0] == photo.shape[0] // 4
    explorer.image.value = "flipped"
    assert explorer.view.name == "flipped" and explorer.view.mask is None and explorer.view.auc is None
    assert len(explorer.output.outputs) == 1, "each redraw replaces the previous figure"


def test_sliders_update_on_release_only(explorer):
    assert explorer.quality.continuous_update is False
    assert explorer.zoom.continuous_update is False


def test_empty_explorer_is_refused():
    with pytest.raises(ValueError, match="at least one image"):
        ElaExplorer({})


# --- the synthetic generator's explorer ------------------------------------------------

from pmsp_utils.widgets import SyntheticExplorer, synthetic_config, synthetic_view  # noqa: E402


def test_synthetic_config_pins_every_knob():
    config = synthetic_config("copy-move", area=0.1, host_quality=70, final_quality=90, blur=True)
    assert (config.splicing, config.copy_move, config.blur, config.feather) == (0.0, 1.0, 1.0, 0.0)
    assert config.host_quality == (70, 70) and config.final_quality == (90, 90)
    with pytest.raises(ValueError, match="kind must be"):
        synthetic_config("removal")


def test_synthetic_view_is_reproducible():
    config = synthetic_config(size=96)
    first, second = synthetic_view(config, seed=3), synthetic_view(config, seed=3)
    assert first.forgery.data == second.forgery.data and first.auc == second.auc
    assert first.forgery.provenance["final_quality"] == 85 and first.forgery.provenance["kind"] == "splicing"


def test_synthetic_explorer_redraws_on_value_changes():
    explorer = SyntheticExplorer(size=96)
    assert explorer.view.forgery.provenance["kind"] == "splicing"
    explorer.kind.value = "copy-move"
    assert explorer.view.forgery.provenance["kind"] == "copy-move"
    explorer.final_quality.value = 60
    assert explorer.view.forgery.provenance["final_quality"] == 60
    explorer.switches["rotate"].value = True
    assert explorer.view.forgery.provenance["donor_angle"] != 0.0
    explorer.seed.value = 7
    assert explorer.config().rotate == 1.0 and len(explorer.output.outputs) == 1


def test_threshold_view_and_explorer():
    from pmsp_utils.viz import CONFUSION_COLOURS, confusion_image
    from pmsp_utils.widgets import ThresholdExplorer, threshold_view

    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 1
    probability = np.where(mask == 1, 0.7, 0.2).astype(np.float32)
    probability[0, 0] = 0.9  # one false alarm above every threshold below 0.9
    view = threshold_view(probability, mask, 0.5)
    assert view.f1 == pytest.approx(2 * 100 / (2 * 100 + 1))
    assert view.best_f1 == pytest.approx(view.f1) and 0.2 < view.best_threshold <= 0.7  # any threshold between the two levels
    assert threshold_view(probability, mask, 0.8).f1 == 0.0  # only the false alarm is claimed
    assert tuple(view.confusion[0, 0]) == CONFUSION_COLOURS["false positive"]
    assert tuple(view.confusion[10, 10]) == CONFUSION_COLOURS["true positive"]
    assert tuple(confusion_image(np.zeros((2, 2)), np.ones((2, 2)))[0, 0]) == CONFUSION_COLOURS["false negative"]
    with pytest.raises(ValueError, match="threshold must be between"):
        threshold_view(probability, mask, 1.0)

    image = np.zeros((20, 20, 3), np.uint8)
    explorer = ThresholdExplorer({"a": (image, probability, mask), "b": (image, 1 - probability, mask)})
    assert explorer.view.f1 == pytest.approx(view.f1)
    explorer.threshold.value = 0.8
    assert explorer.view.f1 == 0.0
    explorer.image.value = "b"  # inverted map: at 0.8 it claims the authentic pixels
    assert explorer.view.f1 == 0.0 and explorer.view.threshold == 0.8
    assert len(explorer.output.outputs) == 1


def test_explorers_display_a_picture_and_a_label_beside_the_live_widget(explorer, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw=False: shown.append((bundle, raw)))
    explorer._ipython_display_()
    bundle, raw = shown[0]
    assert raw and "application/vnd.jupyter.widget-view+json" in bundle and bundle["image/png"]
    assert bundle["text/plain"].startswith("<ElaExplorer: ") and "VBox(" not in bundle["text/plain"]


def test_saved_notebooks_keep_the_picture_and_drop_the_widget_view():
    import nbformat

    from pmsp_utils.notebooks import strip_widget_state

    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("explorer")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                                                 "image/png": "iVBOR", "text/plain": "<ElaExplorer: a view>"}),
                    nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "y"},
                                                                 "text/plain": "VBox(children=(HBox(...),))"})]
    notebook.cells.append(cell)
    notebook.metadata["widgets"] = {"state": {}}
    strip_widget_state(notebook)
    first, second = (output["data"] for output in notebook.cells[0].outputs)
    assert "widgets" not in notebook.metadata and set(first) == {"image/png", "text/plain"}
    assert second == {"text/plain": "(an interactive widget: run the notebook to use it)"}


def test_the_picture_display_works_without_ipywidgets_8_mimebundles(explorer, monkeypatch):
    """Colab ships ipywidgets 7, whose widgets have no _repr_mimebundle_: the view record is built by hand."""
    import IPython.display

    from pmsp_utils.widgets import display_with_picture

    class Seven:
        model_id = "abc123"

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw=False: shown.append(bundle))
    display_with_picture(Seven(), explorer.output, "ElaExplorer")
    assert shown[0]["application/vnd.jupyter.widget-view+json"]["model_id"] == "abc123" and shown[0]["image/png"]
