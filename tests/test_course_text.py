"""The course's prose against its own outputs: typed numbers a student can see made, run times that hold, and the
sentences that state a run's outcome checked against the values they describe (tests/course_text.py has the rules)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from course_text import (made_by, markdown, measured_run_time, orphans, printed, run_time_agrees, shown_values,
                         stated_run_time, typed_numbers)

from pmsp_utils.notebooks import find_notebooks

NOTEBOOKS = find_notebooks()
NOTEBOOK = {path.name[:2]: path for path in NOTEBOOKS}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_every_typed_number_is_made_in_its_own_notebook(notebook):
    assert typed_numbers(notebook), f"{notebook.name}: no typed numbers found; the pattern is broken"
    missing = orphans(notebook)
    assert not missing, (f"{notebook.name} types numbers none of its own cells show (print them from the code, or from "
                         f"the file they come from): {', '.join(missing)}")


def _fake(tmp_path: Path, text: str, output: str, code: str = "print(x)") -> Path:
    notebook = tmp_path / "99_fake.ipynb"
    cells = [{"cell_type": "markdown", "metadata": {}, "source": [text]},
             {"cell_type": "code", "metadata": {}, "source": [code], "outputs": [{"output_type": "stream", "text": [output]}]},
             {"cell_type": "markdown", "metadata": {}, "source": ["## References\n\n- arXiv 2103.02907"]}]
    notebook.write_text(json.dumps({"cells": cells}))
    return notebook


def test_a_typed_number_is_matched_by_value_and_rounding_word_bounded(tmp_path):
    text = ("Per-image F1 0.59 (section 3.1), 98 ids repeat, 6% of the area; the paper's 0.5922. "
            "`threshold=0.123` and [a link](https://x.org/1.25) are not claims.")
    notebook = _fake(tmp_path, text, "f1 0.5871\nrepeated ids: 98\narea 0.061\n")
    assert [number for _, number in typed_numbers(notebook)] == ["0.59", "98", "6%", "0.5922"]
    assert orphans(notebook) == []
    # A changed output: each claim is caught, and a number that merely contains the typed one does not stand in.
    notebook = _fake(tmp_path, text, "f1 0.5849\nrepeated ids: 198\narea 0.071\nold 10.59\n")
    assert orphans(notebook) == ["cell 0: 0.59", "cell 0: 98", "cell 0: 6%"]


def test_rounding_takes_a_shown_value_with_at_least_the_places_typed():
    shown = shown_values("0.5 0.613 12.36 7%")
    assert made_by("0.61", shown) and made_by("12.4", shown) and made_by("7%", shown) and made_by("0.5", shown)
    assert not made_by("0.51", shown) and not made_by("0.7", shown)  # 0.5 shows one place: only its own value matches
    assert not made_by("0.614", shown) and not made_by("0.62", shown) and not made_by("8%", shown)


def test_a_shipped_file_is_no_source(tmp_path):
    """A number the README states; a notebook typing it must show it (here it does not)."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    number = re.search(r"\b0\.\d{3}\b", readme).group(0)
    assert orphans(_fake(tmp_path, f"The default scores {number}.", "nothing here\n")) == [f"cell 0: {number}"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_the_stated_run_time_holds_for_the_committed_run(notebook):
    stated = stated_run_time(notebook)
    assert stated is not None, f"{notebook.name}: the header states no **Run time**"
    measured = measured_run_time(notebook)
    assert run_time_agrees(stated[1], measured), (
        f"{notebook.name} says its run time is {stated[0]!r}, and the committed run took {measured:.0f} s: "
        "say what it takes (within 50%)")


def test_a_wrong_run_time_is_caught(tmp_path):
    notebook = tmp_path / "99_fake.ipynb"
    timing = lambda start, end: {"execution": {"iopub.execute_input": f"2026-12-07T03:20:{start:02d}.000000Z",  # noqa: E731
                                               "shell.execute_reply": f"2026-12-07T03:{end // 60 + 20}:{end % 60:02d}.000000Z"}}
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["**Run time**: about two minutes on a laptop CPU."]},
             {"cell_type": "code", "metadata": timing(0, 248), "source": [], "outputs": []}]
    notebook.write_text(json.dumps({"cells": cells}))
    assert stated_run_time(notebook)[1] == (120, 120) and measured_run_time(notebook) == 248
    assert not run_time_agrees(*[stated_run_time(notebook)[1], measured_run_time(notebook)])
    cells[1]["metadata"] = timing(0, 150)
    notebook.write_text(json.dumps({"cells": cells}))
    assert run_time_agrees(stated_run_time(notebook)[1], measured_run_time(notebook))


def test_printed_reads_a_labelled_line_and_names_a_missing_one(tmp_path):
    notebook = _fake(tmp_path, "x", "inside the mask: 0.322, outside: 0.368\n")
    assert printed(notebook, "inside the mask:") == [0.322, 0.368]
    with pytest.raises(LookupError, match="no line starting with 'AUC'"):
        printed(notebook, "AUC")
    assert "## References" in markdown(notebook)
