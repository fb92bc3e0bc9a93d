"""The drift guard: a committed notebook must have been executed with the weights, cards and studies that ship now."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pmsp_utils.notebooks import drift, find_notebooks, shipped_artifacts

NOTEBOOKS = find_notebooks()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_notebooks_describe_what_ships(notebook):
    changed = drift(notebook)
    assert not changed, (f"{notebook.name} was executed with other shipped files ({'; '.join(changed[:5])}); "
                         "re-run it with `make notebooks` (or pmsp notebooks --only ... --in-place) and commit the outputs.")


def test_a_notebook_executed_with_other_weights_is_named(tmp_path):
    """A fake package whose card changes after the notebook was executed: the guard says which file."""
    package = tmp_path / "pkg"
    (package / "weights").mkdir(parents=True)
    (package / "weights" / "casia1.json").write_text('{"validation": {"per_image_f1@0.5": 0.653}}')
    (package / "weights" / "casia1.npz").write_bytes(b"weights")
    notebook = tmp_path / "05_evaluation.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {"pmsp": {"executed_with": shipped_artifacts(package)}}}))
    assert drift(notebook, package) == []
    (package / "weights" / "casia1.json").write_text('{"validation": {"per_image_f1@0.5": 0.700}}')
    (package / "weights" / "single.npz").write_bytes(b"new")
    assert drift(notebook, package) == ["weights/casia1.json changed", "weights/single.npz is new"]
    notebook.write_text(json.dumps({"cells": [], "metadata": {}}))
    assert "records nothing" in drift(notebook, package)[0]


LOCAL_PATH = re.compile(r"(/home/|/Users/|/tmp/|/work/|/root/|[A-Z]:\\\\Users\\\\)[^\s\"']*")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_no_committed_output_holds_a_local_path(notebook):
    cells = json.loads(Path(notebook).read_text())["cells"]
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            text = json.dumps({key: value for key, value in output.items() if key != "data"} | {"data": {
                key: value for key, value in output.get("data", {}).items() if key.startswith("text")}})
            found = LOCAL_PATH.search(text)
            assert found is None, f"{notebook.name} cell {index} prints a local path: {found.group(0)[:80]}"


# Notebook 06's figures from benchmarks/RESULTS.md and RESULTS_ARCHIVE.md are printed by its own cells now; tests/test_course_06.py
# holds them equal to the files' rows.


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_each_notebook_ends_with_linked_references(notebook):
    cells = json.loads(Path(notebook).read_text())["cells"]
    text = "".join(cells[-1]["source"])
    assert text.startswith("## References"), f"{notebook.name}: the last cell is not its references"
    items = [line for line in text.splitlines() if line.startswith("- ")]
    assert items and "Pyramid Multi-Scale Pooling Module" in items[0], f"{notebook.name}: the paper is not the first reference"
    unlinked = [item[:60] for item in items if not re.search(r"\]\(https://[^)\s]+\)", item) and "Bootstrap*" not in item]
    assert not unlinked, f"{notebook.name}: references without a link: {unlinked}"


TRACKER_WORDS = re.compile(r"\b(issue|ticket|session) \d+\b|\bissue \d+'s\b", re.IGNORECASE)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_no_tracker_words_reach_students(notebook):
    cells = json.loads(Path(notebook).read_text())["cells"]
    for index, cell in enumerate(cells):
        found = TRACKER_WORDS.search("".join(cell["source"]))
        assert found is None, f"{notebook.name} cell {index} speaks of the project's tracker: {found.group(0)!r}"
