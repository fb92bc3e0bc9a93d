"""What the project promises its users: the README's commands, CI, the notebooks' hygiene."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def quick_start_commands():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    first_block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in first_block.strip().splitlines()]


def test_quick_start_has_exactly_two_commands():
    commands = quick_start_commands()
    assert commands == ["make run", "make test"]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_commands()[1] in [line.strip() for line in ci]


def test_every_notebook_has_a_colab_badge_and_binder_opens_notebook_01():
    for notebook in NOTEBOOKS:
        assert f"colab.research.google.com/github/pmsp-forensics/pmsp-tutorial/blob/main/notebooks/{notebook.name}" in README
    assert "mybinder.org/v2/gh/pmsp-forensics/pmsp-tutorial/main?urlpath=lab/tree/notebooks/01_error_level_analysis.ipynb" in README


def test_environment_yml_installs_the_package_and_the_dependencies():
    text = (ROOT / "environment.yml").read_text()
    for name in ("tensorflow", "keras", "jupyterlab", "ipywidgets", "matplotlib", "seaborn", "pillow", "scikit-learn", "nbval", "-e ."):
        assert name in text, name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_hygiene(path):
    notebook = json.loads(path.read_text())
    cells = notebook["cells"]
    assert cells[0]["cell_type"] == "markdown" and "Run time" in "".join(cells[0]["source"])
    bootstrap = "".join(cells[1]["source"])
    assert '"google.colab" in sys.modules' in bootstrap and "pmsp_utils.setup(seed=" in bootstrap
    assert "widgets" not in notebook["metadata"], "saved widget state"
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert all(cell["execution_count"] is not None for cell in code), "committed without a clean run"
    assert [cell["execution_count"] for cell in code] == list(range(1, len(code) + 1)), "not from a clean Restart and Run All"
    assert not [o for cell in code for o in cell["outputs"] if o["output_type"] == "error"]
    assert not any("image/svg+xml" in o.get("data", {}) for cell in code for o in cell["outputs"])
    assert path.stat().st_size < 3_000_000


def test_native_log_lines_are_stripped_from_notebook_outputs():
    import nbformat

    from pmsp_utils.notebooks import strip_native_logs

    noise = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             "I0000 00:00:1795575492.487535   23181 port.cc:153] oneDNN custom operations are on.\n")
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=noise),
                    nbformat.v4.new_output("stream", name="stderr", text=noise + "UserWarning: a real warning\n"),
                    nbformat.v4.new_output("stream", name="stdout", text=noise)]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    strip_native_logs(notebook)
    assert [output["text"] for output in cell.outputs] == ["UserWarning: a real warning\n", noise]  # stdout is left alone


def test_notebook_test_markers_are_cell_tags_not_comments():
    """nbval reads the tags in lax mode too; students' cells carry no test comments."""
    import json
    from pathlib import Path

    tagged = 0
    for path in sorted(Path(__file__).resolve().parent.parent.glob("notebooks/[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            assert "NBVAL_" not in "".join(cell["source"]), f"{path.name}: a # NBVAL_ comment; use the nbval-* cell tags"
            tagged += bool({"nbval-check-output", "nbval-ignore-output"} & set(cell["metadata"].get("tags", [])))
    assert tagged >= 20


def test_network_and_ela_defaults_are_typed_in_one_place():
    """The output stride's and ELA quality's defaults live in pmsp_utils.model_settings; every other default reads them
    (a literal 32 or 90 as a default elsewhere is a second place that could disagree)."""
    import re

    root = Path(__file__).resolve().parents[1] / "pmsp_utils"
    typed = re.compile(r"(output_stride|quality|ela_quality)\s*:\s*int\s*=\s*(32|90)\b|\"ela_quality\": 90|\"output_stride\": 32|default=90\b")
    found = [f"{path.relative_to(root)}:{number}: {line.strip()[:80]}" for path in sorted(root.rglob("*.py"))
             if path.name != "model_settings.py" for number, line in enumerate(path.read_text().splitlines(), 1)
             if typed.search(line.split("#")[0])]
    assert not found, f"defaults typed outside pmsp_utils.model_settings: {found}"


def test_legacy_runs_keep_the_settings_they_were_trained_with():
    """Runs saved before a setting was recorded used the paper's stride 32 and ELA quality 90: if a default ever moves,
    LEGACY_SETTINGS must keep these values (pinned here, not read from the defaults)."""
    from pmsp_utils.run_folder import LEGACY_SETTINGS

    assert LEGACY_SETTINGS["output_stride"] == 32 and LEGACY_SETTINGS["ela_quality"] == 90 and LEGACY_SETTINGS["ela_gain"] == 8.0
