"""Notebook 02's sentences that state a run's outcome, checked against the values its committed outputs print.

Checked sentences (the rest of 02's outcome sentences are written by its code cells from the values: the copy against
a complete one, the region sizes, the knob table's verdict, the grouped split's leak, the step to a full download):
- the header: the committed outputs were made with a copy that "is not a full download" (fewer tampered images than the
  manifest's complete copy);
- section 2: "in this copy 98 ids repeat within one manipulation type" (the number the text types is the one counted);
- section 3: the figure shows, for each kind, "one of the masks that come in several pieces or with holes" (each kind
  has such masks);
- section 5: the shipped synthetic weights' held-out AUC and CASIA AUC, as typed, are the ones printed from the card,
  and "what a model learns here does not all carry over" (CASIA's is lower by more than 0.1);
- section 6: "the masks below include a thin sliver and regions with holes" (a mask whose bounding box is five times
  longer than wide, and two with holes);
- section 8: "the release holds 921 tampered images, and Pham et al.'s masks cover 920 of them", the paper's count
  and the manifest's, as the cell counts them in the download's file lists (one image without a mask between them);
- summary: "a split by name hash puts most of CASIA's test images beside a training image of the same scene", and the
  grouped split "which every shipped CASIA model used".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from course_text import cells, markdown, planted, printed

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_forgery_datasets.ipynb"


def _output_lines(label: str) -> list[str]:
    """Every text-output line of the notebook that starts with ``label``."""
    return [line.strip() for cell in cells(NOTEBOOK) for output in cell.get("outputs", [])
            for line in "".join(output.get("text", "")).splitlines() if line.strip().startswith(label)]


def test_the_committed_copy_is_partial():
    here, complete, *_ = printed(NOTEBOOK, "tampered:")
    assert here < complete
    assert "which is not a full download" in markdown(NOTEBOOK)


def test_the_repeated_ids_the_text_types_are_counted():
    repeated = int(printed(NOTEBOOK, "image ids that repeat within one manipulation type:")[0])
    assert f"in this copy {repeated} ids repeat within one manipulation type" in markdown(NOTEBOOK)


def test_each_kind_has_masks_in_pieces_or_with_holes():
    for kind in ("splicing", "copy-move"):
        count, pieces, holes = printed(NOTEBOOK, f"{kind} masks:")
        assert pieces + holes > 0 and count > 0


def test_the_synthetic_weights_do_not_carry_over():
    held_out, casia = [float(re.search(r"pooled pixel AUC (\d\.\d+)$", line).group(1))
                       for line in _output_lines("model card of the shipped synthetic weights")]
    assert casia < held_out - 0.1
    assert f"{held_out:.3f} on held-out synthetic images and {casia:.3f} on real CASIA v1.0" in markdown(NOTEBOOK)


def test_the_generated_regions_include_a_sliver_and_holes():
    lines = [line for line in _output_lines("splicing") + _output_lines("copy-move") if "bounding box" in line]
    boxes = [tuple(int(side) for side in re.search(r"bounding box (\d+)x(\d+)", line).groups()) for line in lines]
    holes = [int(re.search(r"holes: (\d+)", line).group(1)) for line in lines]
    assert any(max(box) >= 5 * min(box) for box in boxes), "no thin sliver among the masks shown"
    assert sum(hole >= 20 for hole in holes) >= 2, "fewer than two masks with holes"


def test_a_name_hash_split_leaks_and_the_grouped_split_does_not():
    _, _, paper_test_shared, paper_test_count = printed(NOTEBOOK, "paper split:")
    assert paper_test_shared > paper_test_count / 2
    assert printed(NOTEBOOK, "grouped split:")[0::2] == [0, 0]
    for model in ("casia1", "casia1-forged"):
        assert _output_lines(f"shipped {model}:")[0].startswith(f"shipped {model}: grouped split")


def check_the_release_counts(notebook: Path) -> None:
    tampered, masks = printed(notebook, "CASIA v1.0 as the download pins it:")
    assert tampered == masks + 1, f"{tampered} tampered images against {masks} masks: the text says one image lacks a mask"
    text = markdown(notebook)
    assert f"the release holds {tampered:.0f} tampered images, and Pham et al.'s masks cover {masks:.0f} of them" in text
    assert f"The paper says CASIA v1.0 holds {tampered:.0f} tampered images; the manifest says {masks:.0f}." in text


def test_the_papers_count_and_the_manifests_are_explained():
    check_the_release_counts(NOTEBOOK)


def test_a_planted_count_is_caught(tmp_path):
    copy = planted(NOTEBOOK, tmp_path, r"(as the download pins it: )\d+", r"\g<1>925", regex=True)
    with pytest.raises(AssertionError):
        check_the_release_counts(copy)
