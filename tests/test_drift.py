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


def test_numbers_typed_in_notebook_06_match_their_source():
    """06 section 11 quotes the full-scale runs; they must be the rows of benchmarks/RESULTS.md they come from."""
    root = Path(__file__).resolve().parents[1]
    results = (root / "benchmarks" / "RESULTS.md").read_text()
    text = "".join("".join(cell["source"]) for cell in json.loads((root / "notebooks" / "06_ablations.ipynb").read_text())["cells"])
    quoted = {"CONCAT fusion": "0.570", "output stride 16": "0.614", "shipped casia1 (stride 32, ADD; previous session)": "0.594"}
    for row, number in quoted.items():
        line = next(line for line in results.splitlines() if line.startswith(f"| {row} |"))
        assert line.split("|")[4].strip().startswith(number), (row, line)  # the test part's per-image F1
        assert number in text


def test_the_recompression_figures_06_quotes_are_the_pairs_in_results():
    root = Path(__file__).resolve().parents[1]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in (root / "benchmarks" / "RESULTS.md").read_text().splitlines()
            if line.startswith("| JPEG quality") or line.startswith("| none")}
    text = "".join("".join(cell["source"]) for cell in json.loads((root / "notebooks" / "06_ablations.ipynb").read_text())["cells"])
    assert rows["JPEG quality 90"].startswith("0.473") and rows["JPEG quality 50"].startswith("0.439")
    assert "from 0.639 to 0.473 at quality 90 and to 0.439 at quality 50" in text
