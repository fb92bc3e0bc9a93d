"""Notebook 01's sentences that state a run's outcome, checked against the values its committed outputs print.

Checked sentences (the rest of 01's outcome sentences are written by its code cells from the values):
- section 1: "Most high-frequency coefficients become zero" (more than half of the 64 after quantization at 50);
- section 2: "The first save changes the pixels; later ones hardly do" (each later save changes under a tenth of the first);
- section 3: "It gives exactly the same array" (the inline ELA equals ``pmsp_utils.ela.ela``);
- section 4: ELA "lights the pasted region up" in Grace Hopper's portrait (AUC 0.85 or more) and "hardly" in the
  motorcycle photo (AUC under 0.6), and the two AUCs the text types are the printed ones;
- section 6: re-saving at the final quality (85) "shows nothing" (mean AUC within 0.05 of chance), re-saving near the
  camera JPEG's quality (70) works best, and at the paper's 90 the mean AUC "lies between theirs: it works only partly";
- section 7 (written by its code cell, checked here because the rule must be one): the camera JPEG at 98 and the PNG
  case are worded by the same rule, "close to chance on average" exactly when the mean is within 0.1 of 0.5, "swings"
  exactly when the standard deviation is 0.1 or more (else "varies little");
- summary: the per-image AUC range it types "at ELA quality 90" is the lowest and highest the notebook prints, at 90.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from course_text import cells, markdown, planted, printed

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_error_level_analysis.ipynb"


def _output_lines(notebook: Path) -> list[str]:
    return [line.strip() for cell in cells(notebook) for output in cell.get("outputs", [])
            for line in "".join(output.get("text", "")).splitlines()]


def test_quantization_zeroes_most_coefficients():
    zero, total = printed(NOTEBOOK, "coefficients that are zero after quantization at quality 50:")
    assert total == 64 and zero > total / 2


def test_a_second_save_at_the_same_quality_hardly_changes_the_pixels():
    changes = printed(NOTEBOOK, "mean absolute change per save at quality 75:")
    assert len(changes) >= 3 and max(changes[1:]) < changes[0] / 10


def test_the_inline_ela_is_the_packages():
    assert "inline ELA equals pmsp_utils.ela.ela: True" in _output_lines(NOTEBOOK)


def test_ela_lights_up_one_pasted_region_and_hardly_another():
    hopper = printed(NOTEBOOK, "pixel AUC of ELA, hopper + flower, PNG:")[0]
    motorcycle = printed(NOTEBOOK, "pixel AUC of ELA, motorcycle + rocket, PNG:")[0]
    assert hopper >= 0.85 and motorcycle < 0.6
    text = markdown(NOTEBOOK)
    assert f"Grace Hopper's portrait, AUC {hopper:.2f}" in text and f"motorcycle photo, {motorcycle:.2f}" in text


def test_the_quality_sweep_says_what_the_text_says():
    best, best_auc, ninety, at_ninety, eighty_five, at_eighty_five = printed(NOTEBOOK, "best ELA quality:")
    assert (ninety, eighty_five) == (90, 85)
    assert abs(best - 70) <= 5, "the text says re-saving near the camera JPEG's quality (70) works best"
    assert abs(at_eighty_five - 0.5) <= 0.05, "the text says re-saving at the final quality (85) shows nothing"
    assert at_eighty_five + 0.05 < at_ninety < best_auc - 0.05, "the text says quality 90's AUC lies between the two, working only partly"
    assert "its mean AUC (printed above) lies between theirs: it works only partly" in markdown(NOTEBOOK)


def test_the_summary_range_is_the_printed_one():
    label = "lowest and highest per-image pixel AUC at ELA quality 90"
    lowest, highest = printed(NOTEBOOK, label)[-2:]
    assert f"per-image pixel AUC from {lowest:.2f} to {highest:.2f} at ELA quality 90" in markdown(NOTEBOOK)


def generated_markdown(notebook: Path, start: str) -> str:
    """The Markdown a code cell displayed, from the first output that contains ``start``."""
    for cell in cells(notebook):
        for output in cell.get("outputs", []):
            text = "".join(output.get("data", {}).get("text/markdown", ""))
            if start in text:
                return text
    raise LookupError(f"{notebook.name} displays no Markdown containing {start!r}; re-execute it")


def check_one_wording_rule(notebook: Path) -> None:
    text = generated_markdown(notebook, "A camera JPEG at 98 leaves")
    sentences = {"camera JPEG at 98": text.split("A camera JPEG at 98 leaves")[1].split("Without any JPEG history")[0],
                 "no JPEG history (PNG)": text.split("Without any JPEG history")[1]}
    for case, sentence in sentences.items():
        mean, spread = printed(notebook, case)[-2:]
        assert ("close to chance" in sentence) == (abs(mean - 0.5) < 0.1), f"{case}: mean {mean}, worded {sentence!r}"
        assert ("swings" in sentence) == (spread >= 0.1) and ("varies little" in sentence) == (spread < 0.1), \
            f"{case}: standard deviation {spread}, worded {sentence!r}"


def test_the_limit_cases_are_worded_by_one_rule():
    check_one_wording_rule(NOTEBOOK)


def test_a_planted_contradiction_is_caught(tmp_path):
    """The camera JPEG at 98's spread printed as 0.05: the sentence that says it swings no longer agrees."""
    copy = planted(NOTEBOOK, tmp_path, r"(camera JPEG at 98 +\d\.\d+ ± )\d\.\d+", r"\g<1>0.05", regex=True)
    with pytest.raises(AssertionError):
        check_one_wording_rule(copy)
