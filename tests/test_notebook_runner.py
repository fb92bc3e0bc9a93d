"""pmsp notebooks' runner: several notebooks at once (make run's --jobs 2), each in its own kernel and environment."""

from __future__ import annotations

import json
from pathlib import Path
import os

import nbformat
import pytest

from pmsp_utils.notebooks import recorded_seconds, run_notebooks


def write_notebook(path, source: str, recorded: float | None = None):
    """A one-cell notebook; ``recorded``: the seconds its saved outputs say the cell took (nbclient's timing)."""
    cell = nbformat.v4.new_code_cell(source)
    if recorded is not None:
        cell.metadata["execution"] = {"iopub.execute_input": "2026-12-03T10:00:00.000000Z",
                                      "shell.execute_reply": f"2026-12-03T10:00:{recorded:09.6f}Z"}
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


RECORD = """import json, os, time
start = time.time()
time.sleep(3)
json.dump({"start": start, "end": time.time(), "progress": os.environ.get("PMSP_PROGRESS"), "smoke": os.environ.get("PMSP_SMOKE")},
          open("{name}.json", "w"))
"""


def test_two_notebooks_run_at_once_longest_first_and_come_back_in_order(tmp_path, monkeypatch):
    monkeypatch.delenv("PMSP_PROGRESS", raising=False)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    short = write_notebook(folder / "01_short.ipynb", RECORD.replace("{name}", "short"), recorded=1.0)
    unrecorded = write_notebook(folder / "02_unrecorded.ipynb", RECORD.replace("{name}", "unrecorded"))
    long = write_notebook(folder / "03_long.ipynb", RECORD.replace("{name}", "long"), recorded=40.0)
    assert (recorded_seconds(long), recorded_seconds(short), recorded_seconds(unrecorded)) == (40.0, 1.0, 0.0)
    said = []
    runs = run_notebooks([short, unrecorded, long], tmp_path / "out", smoke=True, jobs=2, echo=said.append)
    assert [run.source.name for run in runs] == ["01_short.ipynb", "02_unrecorded.ipynb", "03_long.ipynb"]  # the order asked for
    assert all(run.executed.exists() for run in runs)
    started = [line for line in said if line.startswith("running")]
    assert started[-1] == "running 02_unrecorded.ipynb ...", said  # the two with recorded times went first
    times = {name: json.loads((folder / f"{name}.json").read_text()) for name in ("short", "unrecorded", "long")}
    assert times["short"]["start"] < times["long"]["end"] and times["long"]["start"] < times["short"]["end"]  # at once
    assert {(entry["progress"], entry["smoke"]) for entry in times.values()} == {("0", "1")}  # each kernel's settings
    assert "PMSP_PROGRESS" not in os.environ  # ... and not this process's


def test_a_failing_notebook_fails_the_run_with_its_error(tmp_path):
    from pmsp_utils.notebooks import NotebookError

    folder = tmp_path / "notebooks"
    folder.mkdir()
    good = write_notebook(folder / "01_good.ipynb", "x = 1")
    bad = write_notebook(folder / "02_bad.ipynb", "raise RuntimeError('the cell that broke')")
    with pytest.raises(NotebookError, match=r"02_bad.ipynb: cell 0 failed with RuntimeError: the cell that broke"):
        run_notebooks([good, bad], tmp_path / "out", smoke=True, jobs=2, echo=lambda line: None)


def test_the_timeout_stops_a_long_cell_and_a_failing_cell_is_one_plain_line(tmp_path, capsys):
    """pmsp notebooks --timeout is enforced (nbclient alone does not, with a kernel manager it was handed), and a
    failing cell is named in one line without terminal colour codes."""
    import time

    import nbformat

    from pmsp_utils.cli import main

    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(30)")]), folder / "01_sleep.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")]),
                   folder / "02_fail.ipynb")
    started = time.monotonic()
    assert main(["notebooks", "--notebooks", str(folder), "--only", "01_sleep.ipynb", "--out", str(tmp_path / "out"), "--timeout", "2"]) == 1
    assert time.monotonic() - started < 25
    assert "01_sleep.ipynb: cell 0 ran past --timeout 2 s and was stopped" in capsys.readouterr().err
    assert main(["notebooks", "--notebooks", str(folder), "--only", "02_fail.ipynb", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "02_fail.ipynb: cell 1 failed with ZeroDivisionError: division by zero" in err
    assert "\x1b[" not in err and "unexpected" not in err


def test_one_broken_notebook_does_not_stop_the_others_and_each_failure_is_named(tmp_path, capsys):
    """A notebook that was not JSON stopped the batch with "Notebook does not appear to be JSON" naming no file, and a
    failing one dropped the rest of the batch; --out naming a file failed only after a kernel had run, and a notebook
    named twice in --only ran twice at once into one file. A timeout in smoke mode does not advise --smoke."""
    import nbformat

    from pmsp_utils.cli import main

    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]), folder / "01_ok.ipynb")
    (folder / "02_bad.ipynb").write_text("{ nope")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]), folder / "03_fails.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 2")]), folder / "04_ok.ipynb")
    (tmp_path / "a_file").write_text("mine")
    assert main(["notebooks", "--notebooks", str(folder), "--out", str(tmp_path / "a_file"), "--smoke"]) == 2
    assert "--out " in capsys.readouterr().err and (tmp_path / "a_file").read_text() == "mine"
    out = tmp_path / "out"
    assert main(["notebooks", "--notebooks", str(folder), "--out", str(out), "--smoke",
                 "--only", "01_ok.ipynb", "02_bad.ipynb", "03_fails.ipynb", "04_ok.ipynb", "01_ok.ipynb"]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, captured.err
    assert "02_bad.ipynb: not a notebook that can be read" in errors[0] and "restore it" in errors[0]
    assert "03_fails.ipynb: cell 0 failed with ZeroDivisionError" in errors[1]
    assert captured.out.count("running 01_ok.ipynb") == 1
    from pmsp_utils.notebooks import _cell_error

    running = {"cell": 2, "since": None, "timed_out": 2}
    assert "(it ran in smoke mode already)" in str(_cell_error(Path("x.ipynb"), RuntimeError(), running, 3, smoke=True))
    assert "or run the notebook in smoke mode (--smoke)" in str(_cell_error(Path("x.ipynb"), RuntimeError(), running, 3, smoke=None))
    assert {path.name for path in (out / "notebooks").iterdir()} == {"01_ok.ipynb", "04_ok.ipynb", ".pmsp-written.json"}  # and the ledger


def test_a_read_only_notebook_a_json_list_and_a_copy_that_cannot_be_written_are_each_one_line(tmp_path, capsys, monkeypatch):
    """--in-place replaced a read-only notebook (and changed its mode); '[]' said "'list' object has no attribute 'get'";
    an executed copy that could not be written stopped the batch with a raw error about a temporary file."""
    import nbformat

    import pmsp_utils.notebooks as runner
    from pmsp_utils.cli import main

    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("01_locked", "02_ok", "03_unwritable"):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]), folder / f"{name}.ipynb")
    (folder / "04_list.ipynb").write_text("[]")
    locked = folder / "01_locked.ipynb"
    locked.chmod(0o444)
    before = locked.read_bytes()
    real = runner.write_text_atomic

    def refuse_one(path, text):
        if Path(path).name == "03_unwritable.ipynb":
            raise PermissionError(13, "Permission denied")
        return real(path, text)

    monkeypatch.setattr(runner, "write_text_atomic", refuse_one)
    assert main(["notebooks", "--notebooks", str(folder), "--out", str(tmp_path / "out"), "--smoke", "--in-place"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3, errors
    assert "01_locked.ipynb: read-only, so --in-place does not write over it" in errors[0]
    assert "03_unwritable.ipynb: the executed notebook cannot be written (Permission denied)" in errors[1]
    assert "04_list.ipynb: not a notebook that can be read (JSON, but no notebook: it has no list of cells)" in errors[2]
    assert locked.read_bytes() == before and (locked.stat().st_mode & 0o777) == 0o444
    assert "execution_count" in (folder / "02_ok.ipynb").read_text()


def test_no_executed_copy_replaces_a_source_another_copy_or_a_users_file(tmp_path, capsys):
    """The third hostile pass: --out at the project folder wrote the executed copy over its source; two notebooks of one
    name (from two folders) wrote one copy, the second over the first; a user's own file named like a copy was replaced;
    one notebook named by two spellings ran twice. Each is refused before any kernel starts, or run once; a copy pmsp
    wrote (listed in the ledger, or stamped by an older run) is replaced as before."""
    from pmsp_utils.cli import main
    from pmsp_utils.notebooks import NotebookError

    project, first, second = tmp_path / "project" / "notebooks", tmp_path / "a", tmp_path / "b"
    for folder in (project, first, second):
        folder.mkdir(parents=True)
    source = write_notebook(project / "01_t.ipynb", "print('hi')")
    before = source.read_bytes()
    with pytest.raises(NotebookError, match="would be written over the notebook"):
        run_notebooks([source], tmp_path / "project")
    assert source.read_bytes() == before
    twins = [write_notebook(folder / "01_x.ipynb", f"print({index})") for index, folder in enumerate((first, second))]
    with pytest.raises(NotebookError, match="two notebooks named 01_x.ipynb"):
        run_notebooks(twins, tmp_path / "out")
    assert not (tmp_path / "out" / "notebooks" / "01_x.ipynb").exists()
    mine = tmp_path / "mine" / "notebooks" / "01_x.ipynb"
    mine.parent.mkdir(parents=True)
    mine.write_text("MINE")
    assert main(["notebooks", "--only", str(twins[0]), "--out", str(tmp_path / "mine"), "--smoke"]) == 2
    assert mine.read_text() == "MINE" and "pmsp did not write it" in capsys.readouterr().err
    # one notebook by two spellings runs once; a second run replaces the copy it wrote (the ledger lists it)
    runs = run_notebooks([twins[0], first / ".." / "a" / "01_x.ipynb"], tmp_path / "out", smoke=True, echo=lambda line: None)
    assert len(runs) == 1 and json.loads((tmp_path / "out" / "notebooks" / ".pmsp-written.json").read_text()).keys() == {"01_x.ipynb"}
    assert len(run_notebooks([twins[0]], tmp_path / "out", smoke=True, echo=lambda line: None)) == 1
    # a copy written before the ledger existed carries pmsp's stamp: still replaced
    (tmp_path / "out" / "notebooks" / ".pmsp-written.json").unlink()
    assert len(run_notebooks([twins[0]], tmp_path / "out", smoke=True, echo=lambda line: None)) == 1


def test_figures_replace_only_what_pmsp_wrote_and_a_rerun_leaves_only_its_own(tmp_path):
    """The fourth hostile pass: ``<out>/figures/<notebook>/`` had no ledger, so a user's ``cell00_1.png`` there was
    replaced, and a figure an earlier run drew stayed beside the new run's. Now a figure pmsp did not write refuses the
    run before any kernel starts; a rerun replaces its own figures and removes those it no longer draws; a folder from
    before the ledger (its notebook's copy stamped by pmsp) is adopted."""
    from pmsp_utils.notebooks import NotebookError

    plot = "%matplotlib inline\nimport matplotlib.pyplot as plt\nfor _ in range({n}):\n    plt.figure(); plt.plot([0, 1]); plt.show()"
    source = write_notebook(tmp_path / "01_f.ipynb", plot.format(n=2))
    out, quiet = tmp_path / "out", (lambda line: None)
    figures = out / "figures" / "01_f"
    figures.mkdir(parents=True)
    (figures / "cell00_1.png").write_bytes(b"MINE")
    (figures / "notes.txt").write_text("mine")
    with pytest.raises(NotebookError, match="cell00_1.png: already there, and pmsp did not write it"):
        run_notebooks([source], out, smoke=True, echo=quiet)
    assert (figures / "cell00_1.png").read_bytes() == b"MINE" and not (out / "notebooks" / "01_f.ipynb").exists()
    (figures / "cell00_1.png").unlink()
    [run] = run_notebooks([source], out, smoke=True, echo=quiet)
    assert [path.name for path in run.figures] == ["cell00_1.png", "cell00_2.png"]
    write_notebook(source, plot.format(n=1))
    [run] = run_notebooks([source], out, smoke=True, echo=quiet)
    assert sorted(path.name for path in figures.iterdir()) == [".pmsp-written.json", "cell00_1.png", "notes.txt"]
    # a folder written before the ledger existed, beside a stamped executed copy: adopted, not refused
    (figures / ".pmsp-written.json").unlink()
    (out / "notebooks" / ".pmsp-written.json").unlink()
    [run] = run_notebooks([source], out, smoke=True, echo=quiet)
    assert [path.name for path in run.figures] == ["cell00_1.png"]
    # the same with --in-place, where the executed copy is the notebook itself: adopted once a run has stamped it
    (figures / ".pmsp-written.json").unlink()
    with pytest.raises(NotebookError, match="cell00_1.png: already there"):
        run_notebooks([source], out, in_place=True, smoke=True, echo=quiet)  # the notebook was never executed in place
    (figures / "cell00_1.png").unlink()
    run_notebooks([source], out, in_place=True, smoke=True, echo=quiet)
    (figures / ".pmsp-written.json").unlink()
    [run] = run_notebooks([source], out, in_place=True, smoke=True, echo=quiet)
    assert [path.name for path in run.figures] == ["cell00_1.png"]


def test_a_notebook_whose_cells_have_no_ids_is_read_without_nbformats_warning(tmp_path):
    """A notebook written by an older tool (format 4.5, cells without ids) printed nbformat's two-line
    MissingIDFieldWarning into `pmsp notebooks`' output; its cells are given ids instead."""
    import json
    import warnings

    import nbformat

    from pmsp_utils.notebooks import _read_notebook

    path = tmp_path / "01_old.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": "print(1)", "outputs": [], "execution_count": None},
        {"cell_type": "markdown", "metadata": {}, "source": "text"}]}))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        notebook = _read_notebook(path)
        nbformat.writes(notebook)
    assert not [warning for warning in seen if "MissingIDField" in type(warning.message).__name__], [str(w.message) for w in seen]
    assert all(cell.get("id") for cell in notebook.cells) and len({cell.id for cell in notebook.cells}) == 2
