"""Notebook 01's sentences that state a run's outcome, checked against the values its committed outputs print.

Checked sentences (the rest of 01's outcome sentences are written by its code cells from the values):
- section 1: "Most high-frequency coefficients become zero" (more than half of the 64 after quantization at 50);
- section 2: "The first save changes the pixels; later ones hardly do" (each later save changes under a tenth of the first);
- section 3: "It gives exactly the same array" (the inline ELA equals ``pmsp_utils.ela.ela``);
- section 4: ELA "lights the pasted region up" in Grace Hopper's portrait (AUC 0.85 or more) and "hardly" in the
  motorcycle photo (AUC under 0.6), and the two AUCs the text types are the printed ones;
- section 6: re-saving at the final quality (85) "shows nothing" (mean AUC within 0.05 of chance), re-saving near the
  camera JPEG's quality (70) works best, and the paper's 90 "sits in between and works only partly";
- summary: the per-image AUC range it types is the lowest and highest the notebook prints.
"""

from __future__ import annotations

from pathlib import Path

from course_text import cells, markdown, printed

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
    assert 0.55 < at_ninety < best_auc - 0.05, "the text says quality 90 sits in between and works only partly"


def test_the_summary_range_is_the_printed_one():
    lowest, highest = printed(NOTEBOOK, "lowest and highest per-image pixel AUC")[-2:]
    assert f"per-image pixel AUC from {lowest:.2f} to {highest:.2f}" in markdown(NOTEBOOK)
