"""Notebook 03 against the package and against its own committed outputs.

1. **The code students read is the code the package runs.** The cells that start with ``#@save`` (Coordinate Attention,
   the pyramid pooling module) are run from the notebook's source and must compute what ``pmsp_utils.network``'s copies
   compute with the same weights: each alone, and inside the whole network (``build_pmsp`` given the cells'
   definitions, as the notebook builds it). An edited cell is caught.
2. **Sentences that state a run's outcome**, checked against the values the committed notebook prints:
   - section 1: "about 8.7 times fewer parameters and multiply-adds";
   - section 3 and the summary: "The trained block after F3 does not mark the forgery by itself: about as many of its
     channels turn the region up as down, and the median channel leaves it as it is"; section 3's "around 0.25" for
     an untrained block;
   - section 4: "ADD keeps 0.60× of CONCAT's parameters here, not 0.5×", "The pyramid's 1×1 reductions do halve",
     "Over the whole model ADD saves about 2.2 M of 12.4 M parameters", "under that rule ADD keeps about 0.38×";
   - section 5: a map drawn "from ImageNet weights" is one whose layers the file filled, and when the file left a layer
     fresh the text under the figure names it and says the map drawn "is not F5";
   - section 7: "the two maps should agree to float rounding", "The attention of section 3 barely told the region
     apart; the whole trained network, made of the same layers, draws it";
   - section 8: "At stride 32 even a perfect network loses part of the score, and most of it on small regions",
     the example drawn is "a typical small region": under 5% of its image, its stride-32 F1 the one nearest the mean of
     the masks under 5%, which is the table's under-5% figure,
     the receptive field "is the same at every output stride";
   - section 9: folding "computes the same map".
   Written by the notebook from its values (not checked here): section 1's timing, section 3's verdict on the
   trained block, section 6's parameter budget, section 5's note on a file without F5's layer, the decoder's cost, section 9's speed.
3. Every package file and test the Markdown names exists.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from course_text import cells, markdown, printed

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_building_the_network.ipynb"


def saved_definitions(edit=None) -> dict:
    """What the notebook's ``#@save`` cells define, run from its source (``edit`` may change a cell's text first)."""
    namespace: dict = {}
    for cell in cells(NOTEBOOK):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and source.startswith("#@save"):
            exec(compile(edit(source) if edit else source, f"{NOTEBOOK.name} (#@save cell)", "exec"), namespace)
    return namespace


def _randomise(layer_or_model, rng) -> None:
    """Weights that are not the initial ones, moving variances positive, so equal outputs mean equal code."""
    for variable in layer_or_model.weights:
        shape = tuple(variable.shape)
        value = rng.uniform(0.5, 2.0, shape) if "moving_variance" in variable.path else rng.normal(0.0, 0.3, shape)
        variable.assign(value.astype("float32"))


def attention_difference(ours_class) -> float:
    """Largest difference between a cell's Coordinate Attention and the package's, same weights, output and factors."""
    keras = pytest.importorskip("keras")
    from pmsp_utils.network.attention import CoordinateAttention

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 12, 18, 64)).astype("float32")
    theirs, ours = CoordinateAttention(name="attention"), ours_class(name="attention")
    theirs.build(x.shape)
    ours.build(x.shape)
    assert [(w.path, tuple(w.shape)) for w in ours.weights] == [(w.path, tuple(w.shape)) for w in theirs.weights]
    assert ours.get_config() == theirs.get_config()
    _randomise(theirs, rng)
    ours.set_weights(theirs.get_weights())
    pairs = [(ours(x, training=False), theirs(x, training=False))]
    pairs += list(zip(ours.attention_maps(x, training=False), theirs.attention_maps(x, training=False)))
    return max(float(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).max()) for a, b in pairs)


def pyramid_difference(ours_function) -> float:
    keras = pytest.importorskip("keras")
    from pmsp_utils.network.pyramid import pyramid_pooling

    rng = np.random.default_rng(1)
    inputs = keras.Input((12, 12, 32))
    ours, theirs = (keras.Model(inputs, function(inputs, channels=8)) for function in (ours_function, pyramid_pooling))
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    _randomise(theirs, rng)
    ours.set_weights(theirs.get_weights())
    x = rng.normal(size=(2, 12, 12, 32)).astype("float32")
    return float(np.abs(keras.ops.convert_to_numpy(ours(x, training=False)) - keras.ops.convert_to_numpy(theirs(x, training=False))).max())


# --- 1. the cells are the package's code -------------------------------------------------------------------------


def test_the_notebook_defines_both_layers_in_saved_cells():
    pytest.importorskip("keras")
    defined = saved_definitions()
    assert callable(defined.get("CoordinateAttention")) and callable(defined.get("pyramid_pooling"))


def test_the_cells_coordinate_attention_is_the_packages():
    pytest.importorskip("keras")
    assert attention_difference(saved_definitions()["CoordinateAttention"]) < 1e-5


def test_the_cells_pyramid_is_the_packages():
    pytest.importorskip("keras")
    assert pyramid_difference(saved_definitions()["pyramid_pooling"]) < 1e-5


def test_an_edited_cell_is_caught():
    """What a student's edit (section 3's exercise) does to the comparison: it fails."""
    pytest.importorskip("keras")
    height_only = saved_definitions(lambda source: source.replace("inputs * attention_height * attention_width", "inputs * attention_height"))
    assert attention_difference(height_only["CoordinateAttention"]) > 1e-3
    nearest = saved_definitions(lambda source: source.replace('interpolation="bilinear"', 'interpolation="nearest"'))
    assert pyramid_difference(nearest["pyramid_pooling"]) > 1e-3


def test_the_network_built_from_the_cells_is_the_packages():
    """build_pmsp given the cells' layers (as sections 6 and 7 build it): the same weights, counts and map."""
    keras = pytest.importorskip("keras")
    from pmsp_utils.network import build_pmsp
    from pmsp_utils.network.counting import multiply_adds

    defined = saved_definitions()
    settings = {"input_size": 192, "output_stride": 16, "decoder": "f3", "verbose": False}
    ours = build_pmsp(**settings, attention_layer=defined["CoordinateAttention"], pyramid=defined["pyramid_pooling"])
    theirs = build_pmsp(**settings)
    assert [(w.path, tuple(w.shape)) for w in ours.weights] == [(w.path, tuple(w.shape)) for w in theirs.weights]
    assert ours.count_params() == theirs.count_params() and multiply_adds(ours) == multiply_adds(theirs)
    assert sum(type(layer).__name__ == "CoordinateAttention" and type(layer).__module__ != "pmsp_utils.network.attention"
               for layer in ours.get_layer("rgb_stream").layers) == 3  # the cell's class, after F3, F4 and F5
    _randomise(theirs, np.random.default_rng(2))
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(3)
    inputs = {name: rng.uniform(0, 255, (1, 192, 192, 3)).astype("float32") for name in ("rgb", "ela")}
    difference = np.abs(keras.ops.convert_to_numpy(ours(inputs, training=False)) - keras.ops.convert_to_numpy(theirs(inputs, training=False)))
    assert difference.max() < 1e-4


# --- 2. sentences against the committed outputs ------------------------------------------------------------------


def test_section_1_separable_saving():
    parameters, work = printed(NOTEBOOK, "standard / separable:")
    assert round(parameters, 1) == round(work, 1) == 8.7 and "about 8.7 times fewer parameters and multiply-adds" in markdown(NOTEBOOK)


def test_section_3_the_trained_block_does_not_mark_the_forgery():
    channels, up, down, median, lowest, highest = printed(NOTEBOOK, "F3 attention over all")
    assert up + down == channels
    assert min(up, down) > channels / 4  # "about as many of its channels turn the region up as down"
    assert abs(median - 1) < 0.05  # "the median channel leaves it as it is"
    assert lowest < 1 < highest
    assert "does not mark the forgery by itself" in markdown(NOTEBOOK)


def test_section_3_an_untrained_block_sits_around_a_quarter():
    mean, lowest, highest = printed(NOTEBOOK, "an untrained block's factors a_h x a_w:")
    assert round(mean, 2) == 0.25 and lowest < mean < highest and "around 0.25" in markdown(NOTEBOOK)


def test_section_4_add_against_concat():
    ratio = printed(NOTEBOOK, "ADD / CONCAT, parameters after the fusion:")[0]
    pyramid_only = printed(NOTEBOOK, "ADD / CONCAT, parameters of the pyramid's own layers:")[0]
    add, concat, saved = printed(NOTEBOOK, "whole model:")
    quarter = printed(NOTEBOOK, "ADD / CONCAT after the fusion, branches of a quarter")[-1]
    assert 0.5 < ratio < 0.7 and f"{ratio:.2f}" == "0.60"  # "not quite half", "0.60× ... not 0.5×"
    assert abs(pyramid_only - 0.5) < 0.01  # "The pyramid's 1×1 reductions do halve"
    assert (round(saved, 1), round(concat, 1)) == (2.2, 12.4) and add < concat
    assert quarter < ratio and round(quarter, 2) == 0.38
    text = markdown(NOTEBOOK)
    assert "about 2.2 M of 12.4 M" in text and "0.60×" in text and "about 0.38×" in text


def test_section_5_a_map_called_imagenet_came_from_filled_layers():
    outputs = "\n".join("".join(output.get("text", "")) for cell in cells(NOTEBOOK) for output in cell.get("outputs", []))
    drawn = re.search(r"the map drawn: (.*)", outputs)
    assert drawn, "section 5 prints no 'the map drawn:' line; re-execute the notebook"
    if "ImageNet" in drawn.group(1):
        fresh = re.search(r"not in the file \(kept fresh\): (.*)", outputs)
        layer = re.search(r"(conv_\w+?)_relu", drawn.group(1)).group(1)
        assert fresh is None or layer not in fresh.group(1).split(", "), f"the map drawn comes from {layer}, which the file left fresh"
        if fresh:
            note = generated_markdown("The file given,")
            assert all(f"`{name}`" in note for name in fresh.group(1).split(", ")) and f"the map drawn is not F5 but `{layer}_relu`" in note


def generated_markdown(start: str) -> str:
    """The Markdown a code cell of the notebook displayed, from the first output that starts with ``start``."""
    for cell in cells(NOTEBOOK):
        for output in cell.get("outputs", []):
            text = "".join(output.get("data", {}).get("text/markdown", ""))
            if text.startswith(start):
                return text
    raise LookupError(f"notebook 03 displays no Markdown starting with {start!r}; re-execute it")


def test_section_7_the_cells_network_draws_the_shipped_map():
    assert printed(NOTEBOOK, "largest difference from the package's model:")[0] < 1e-4  # "agree to float rounding"
    inside, outside, *_, threshold, f1 = printed(NOTEBOOK, "mean probability inside the region:")  # ..., "F1 at 0.5: f1"
    median = printed(NOTEBOOK, "F3 attention over all")[3]
    assert inside > threshold > outside and f1 > 0.5  # "the whole trained network ... draws it"
    assert abs(median - 1) < 0.05  # "The attention of section 3 barely told the region apart"
    assert "barely told the region apart; the whole trained network, made of the same layers, draws it" in markdown(NOTEBOOK)


def test_section_8_what_stride_32_costs():
    scores = {stride: printed(NOTEBOOK, f"perfect map at stride {stride}:") for stride in (32, 16, 8)}
    _, everything, small, _ = scores[32]  # "F1 <all> on all, <small> on regions under 5%"
    assert everything < 1 and small < everything  # "loses part of the score, and most of it on small regions"
    assert scores[8][1] > scores[16][1] > everything
    fields = printed(NOTEBOOK, "receptive field of F5 (px) at output strides 32, 16, 8:")
    assert len(fields) == 3 and len(set(fields)) == 1  # "the same at every output stride"
    # "A typical small region": the mask drawn is under 5%, and its stride-32 F1 sits near the under-5% mean
    # "<n> masks under 5%: <mean>; the one nearest it covers <area>% of its image; its best-map F1 at stride 32, 16, 8: <a> <b> <c>"
    values = printed(NOTEBOOK, "mean best-map F1 at stride 32 of the")
    mean, area, at_32 = values[2], values[3], values[-3]
    assert round(mean, 3) == round(small, 3), "the example's reference mean is not the table's under-5% figure"
    assert area < 5 and abs(at_32 - mean) < 0.05, f"the example ({area}% of its image, F1 {at_32}) is not typical of {mean}"


def test_section_9_folding_keeps_the_map():
    folded, per_stream, difference = _folding_line()
    assert folded > 2 * per_stream and difference < 1e-3


def _folding_line() -> tuple[float, float, float]:
    for cell in cells(NOTEBOOK):
        for output in cell.get("outputs", []):
            match = re.search(r"(\d+) normalisations folded \((\d+) in each stream\); largest difference between the two maps: (\S+)",
                              "".join(output.get("text", "")))
            if match:
                return float(match.group(1)), float(match.group(2)), float(match.group(3))
    raise LookupError("section 9 prints no 'normalisations folded' line; re-execute the notebook")


# --- 3. names in the prose -----------------------------------------------------------------------------------------


def test_every_file_and_test_the_prose_names_exists():
    text = markdown(NOTEBOOK)
    for path in set(re.findall(r"\b((?:pmsp_utils|tests|benchmarks)/[\w/]+\.(?:py|md))", text)):
        assert (ROOT / path).is_file(), f"notebook 03 names {path}, which does not exist"
    for path, test in set(re.findall(r"\b(tests/[\w/]+\.py)::(\w+)", text)):
        assert f"def {test}(" in (ROOT / path).read_text(), f"notebook 03 names {path}::{test}, which does not exist"


# --- each check fails on a planted contradiction ----------------------------------------------------------------


@pytest.mark.parametrize("check, before, after", [
    ("test_section_1_separable_saving", "{'parameters': 8.69", "{'parameters': 7.69"),
    ("test_section_3_the_trained_block_does_not_mark_the_forgery", " weight the region up, ", " weight the region up (planted: 30 of them), "),
    ("test_section_3_an_untrained_block_sits_around_a_quarter", "around 0.25", "around 0.35"),
    ("test_section_4_add_against_concat", "parameters after the fusion: 0.60", "parameters after the fusion: 0.50"),
    ("test_section_5_a_map_called_imagenet_came_from_filled_layers", "has no weights for `conv_pw_13`", "has no weights for `conv_pw_12`"),
    ("test_section_7_the_cells_network_draws_the_shipped_map", "difference from the package's model: ",
     "difference from the package's model: 1 + "),
    ("test_section_8_what_stride_32_costs", "at output strides 32, 16, 8: 315", "at output strides 32, 16, 8: 314"),
    ("test_section_8_what_stride_32_costs", "its best-map F1 at stride 32, 16, 8: 0.", "its best-map F1 at stride 32, 16, 8: 0.9"),
    ("test_section_9_folding_keeps_the_map", "normalisations folded (27 in each stream)", "normalisations folded (47 in each stream)"),
    ("test_every_file_and_test_the_prose_names_exists", "pmsp_utils/network/folding.py", "pmsp_utils/model/folding.py"),
])
def test_each_check_fails_on_a_planted_contradiction(check, before, after, tmp_path, monkeypatch):
    notebook = json.loads(NOTEBOOK.read_text())
    planted = json.dumps(notebook).replace(json.dumps(before)[1:-1], json.dumps(after)[1:-1])
    assert planted != json.dumps(notebook), f"{before!r} is not in the notebook any more; update the planted contradiction"
    if "planted: 30" in after:  # the counts themselves: few channels up, many down
        planted = re.sub(r"F3 attention over all 256 channels: \d+ weight the region up \(planted: 30 of them\), \d+ down",
                         "F3 attention over all 256 channels: 30 weight the region up, 226 down", planted)
    copy = tmp_path / NOTEBOOK.name
    copy.write_text(planted)
    monkeypatch.setattr(sys.modules[__name__], "NOTEBOOK", copy)
    with pytest.raises((AssertionError, LookupError)):
        globals()[check]()
