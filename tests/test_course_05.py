"""Notebook 05's sentences that state a run's outcome, checked against the values its committed outputs print.

Sentences checked here (the others that state an outcome are written by the notebook's code from the values: the
paper's CASIA v1.0 row beside ours, CFA1 below chance image by image, the spread of per-image F1 and its rank
correlation with the area, the paired comparison of the default with the pair, the pair's example image, the
robustness summary and the cross-dataset summary):

Section 1: "A made-up prediction that finds about half of a region, puts 12 pixels past its right edge".
Section 2/3: "The pooled F1 hardly notices the missed image (25 of 6425 tampered pixels); the per-image F1 halves";
"weighted recall = ... accuracy ... Checked on the example of section 1".
Section 4: "the median is a few percent" (of each CASIA v1.0 test image tampered); "from a predictor that flags almost
nothing"; the paper's AUC "close to chance" and the scorer's too.
Section 5: "no image below was seen by either (the cell checks it)"; "What still differs": the paper's AUC is near
chance, and "a map as good as ours does not produce it"; our test images hold both kinds (33 copy-moves, 19 splicings)
and "the default's per-image F1 differs a lot between them".
Section 9, "What the network marks when it misses": "In the first two, all of the flagged area lies outside the edit
... the boy and the cow ... copied within each photo"; "In the second row above it marks the tiger"; "The third worst
case fails another way: on a woven fabric".
Section 10: "the curves use every second image of the test part, at two or three levels per kind".
Questions: "CFA1's pooled AUC is below 0.5".
Summary: "The classic baselines, scored with the same code, trail the network by a wide margin, as in the paper's
Table I"; "a mean of two networks can be worse than one of them on a given image"; "Where the network misses the edit,
what it flags instead is often a salient object".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from course_text import cells, markdown, planted

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_evaluation.ipynb"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def line(notebook: Path, label: str) -> str:
    """The first text-output line of the notebook that starts with ``label``, after it (numbers and names both)."""
    for cell in cells(notebook):
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) or "".join(output.get("data", {}).get("text/plain", ""))
            for row in text.splitlines():
                if row.strip().startswith(label):
                    return row.strip()[len(label):]
    raise LookupError(f"{notebook.name} prints no line starting with {label!r}; re-execute it or fix the label")


def numbers(notebook: Path, label: str) -> list[float]:
    return [float(number) for number in NUMBER.findall(line(notebook, label))]


def value(notebook: Path, label: str, name: str) -> float:
    """The number after ``name`` on the line that starts with ``label``."""
    found = re.search(re.escape(name) + r"\s*(-?\d+(?:\.\d+)?)", line(notebook, label))
    assert found, f"{name!r} not on the line {label!r}"
    return float(found.group(1))


def _example_prediction(notebook):
    """Section 1: "finds about half of a region, puts 12 pixels past its right edge"."""
    assert 0.4 <= value(notebook, "precision", "recall") <= 0.6
    beside, right_of_edge, _ = numbers(notebook, "flagged beside the region:")
    assert beside == right_of_edge == 12


def _pooled_hardly_notices(notebook):
    """Section 2: "The pooled F1 hardly notices the missed image (25 of 6425 ...); the per-image F1 halves"."""
    assert value(notebook, "large region", "F1") == 1.0 and value(notebook, "small region", "F1") == 0.0
    assert value(notebook, "per-image F1", "") == pytest.approx(0.5 * value(notebook, "large region", "F1"))
    assert value(notebook, "per-image F1", "pooled F1") >= 0.99
    assert numbers(notebook, "tampered pixels:") == [6400, 25, 6425]


def _weighted_recall_on_the_example(notebook):
    """Section 3: "Checked on the example of section 1": the accuracy printed is section 1's."""
    recall, accuracy = numbers(notebook, "weighted recall")
    assert recall == accuracy and round(accuracy, 3) == value(notebook, "precision", "accuracy")


def _weak_scorer(notebook):
    """Section 4: "from a predictor that flags almost nothing", its AUC close to chance, like the paper's 0.5922."""
    accuracy, precision, recall, f1, auc = numbers(notebook, "pooled   ")
    assert recall < 0.01 and auc < 0.6


def _median_share(notebook):
    """Section 4: "the median is a few percent" of each CASIA v1.0 test image."""
    median = numbers(notebook, "tampered share of an image:")[0]
    assert 1 <= median <= 10


def _unseen_by_both(notebook):
    """Section 5: "no image below was seen by either (the cell checks it)"."""
    assert line(notebook, "none of them in the casia1 pair's training or validation lists:").strip() == "True"


def _ours_not_near_chance(notebook):
    """Section 5, "What still differs": the paper's AUC near chance: "a map as good as ours does not produce it"."""
    assert numbers(notebook, "ours, casia1-forged, weighted")[-1] >= 0.8
    assert numbers(notebook, "Meng et al., Table II, CASIA v1.0")[-1] < 0.6


def _kinds_differ(notebook):
    """Section 5, "What still differs": the test images are "33 copy-moves and 19 splicings", and "the default's
    per-image F1 differs a lot between them" (section 8's table: images, then A's F1, per kind)."""
    copy_moves, splicings = numbers(notebook, "copy-move ")[:2], numbers(notebook, "splicing ")[:2]
    assert (copy_moves[0], splicings[0]) == (33, 19) and copy_moves[0] + splicings[0] == numbers(notebook, "all tampered ")[0]
    assert abs(splicings[1] - copy_moves[1]) >= 0.15


def _salient_objects(notebook):
    """Section 9: the worst cases flag the boy and the cow, outside copy-moved background; the tiger row; the fabric."""
    first, second, third = (line(notebook, f"worst case {rank}:") for rank in (1, 2, 3))
    for text, photo in ((first, "Sp_S_NNN_A_cha0085_cha0085_0026"), (second, "Sp_S_NNN_R_ani0096_ani0096_0050")):
        assert photo in text, f"the worst cases changed: {text}; re-read the figure and rewrite the section"
        assert float(re.search(r"F1 ([\d.]+)", text).group(1)) == 0.0
        assert float(re.search(r"([\d.]+)% of that outside", text).group(1)) == 100
    assert "txt0069" in third
    tiger = line(notebook, "row 2:")
    assert "Sp_S_NNN_A_ani0037_ani0037_0009" in tiger and float(re.search(r"([\d.]+)% of the flagged area outside", tiger).group(1)) >= 80


def _robustness_subset(notebook):
    """Section 10: "every second image of the test part, at two or three levels per kind"."""
    text = next(row for cell in cells(notebook) for output in cell.get("outputs", [])
                for row in "".join(output.get("text", "")).splitlines() if "(every second)" in row)
    chosen, total = (float(number) for number in NUMBER.findall(text)[:2])
    assert chosen == -(-total // 2)
    for kind in ("jpeg", "resize", "blur", "noise"):
        assert line(notebook, kind).count("F1") - 1 in (2, 3)  # "none" first, then the levels


def _cfa1_below_chance(notebook):
    """Questions: "CFA1's pooled AUC is below 0.5"."""
    assert numbers(notebook, "CFA1 pooled AUC:")[0] < 0.5


def _baselines_trail(notebook):
    """Summary: the baselines "trail the network by a wide margin": per-image F1 at 0.5 over twice any baseline's
    oracle F1, pooled AUC higher by more than 0.2 (Table I's columns: images, F1@0.5, oracle F1, pooled F1, AUC)."""
    network = numbers(notebook, "casia1-forged ")  # our network's row, under its model name
    for baseline in ("ELA", "NOI1", "CFA1"):
        row = numbers(notebook, baseline + " ")
        assert network[1] > 2 * row[2] and network[4] > row[4] + 0.2, baseline


def _mean_below_a_member(notebook):
    """Summary: "a mean of two networks can be worse than one of them on a given image" (section 8's example)."""
    members = [value(notebook, f"example F1 at 0.5, member {name}", ":") for name in ("stride16", "synthetic_start")]
    assert value(notebook, "example F1 at 0.5, the pair", ":") < max(members)


CHECKS = {
    "puts 12 pixels past its right edge": _example_prediction,
    "the per-image F1 halves": _pooled_hardly_notices,
    "Checked on the example of section 1": _weighted_recall_on_the_example,
    "a predictor that flags almost nothing": _weak_scorer,
    "the median is a few percent": _median_share,
    "so no image below was seen by either (the cell checks it)": _unseen_by_both,
    "a map as good as ours does not produce it": _ours_not_near_chance,
    "the default's per-image F1 differs a lot between them": _kinds_differ,
    "the network marks the boy and the cow": _salient_objects,
    "the curves use every second image of the test part, at two or three levels per kind": _robustness_subset,
    "CFA1's pooled AUC is below 0.5": _cfa1_below_chance,
    "trail the network by a wide margin": _baselines_trail,
    "a mean of two networks can be worse than one of them on a given image": _mean_below_a_member,
}


@pytest.mark.parametrize("sentence", CHECKS)
def test_the_sentence_holds_for_the_committed_outputs(sentence):
    assert sentence in markdown(NOTEBOOK), f"05 no longer says {sentence!r}: update tests/test_course_05.py"
    CHECKS[sentence](NOTEBOOK)


@pytest.mark.parametrize("sentence, old, new", [
    ("puts 12 pixels past its right edge", "recall 0.545", "recall 0.845"),
    ("a predictor that flags almost nothing", "0.185   0.004", "0.185   0.104"),
    ("CFA1's pooled AUC is below 0.5", "CFA1 pooled AUC: 0.4", "CFA1 pooled AUC: 0.6"),
    ("the default's per-image F1 differs a lot between them", "19      0.712", "19      0.552"),
    ("the network marks the boy and the cow", "100% of that outside", "40% of that outside"),
    ("a mean of two networks can be worse than one of them on a given image", "the pair: 0.5", "the pair: 0.9"),
])
def test_a_planted_contradiction_is_caught(tmp_path, sentence, old, new):
    with pytest.raises(AssertionError):
        CHECKS[sentence](planted(NOTEBOOK, tmp_path, old, new))
