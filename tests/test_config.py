"""The smoke switch, paths, setup() and what importing the package pulls in."""

import subprocess
import sys

import numpy as np
import pytest

import pmsp_utils
from pmsp_utils import environment as config


def set_environment(monkeypatch, **values):
    """Set (or, for None, remove) environment variables for one test."""
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    "smoke, ci, expected",
    [(None, None, False), ("1", None, True), ("0", "true", False), (None, "true", True), ("yes", None, True), (None, "0", False)],
)
def test_smoke_switch(monkeypatch, smoke, ci, expected):
    set_environment(monkeypatch, PMSP_SMOKE=smoke, CI=ci)
    assert config.smoke_mode() is expected


def test_bad_smoke_value(monkeypatch, capsys):
    monkeypatch.setenv("PMSP_SMOKE", "maybe")
    with pytest.raises(ValueError, match="PMSP_SMOKE='maybe' is not a boolean; accepted: 0, 1, false"):
        config.smoke_mode(strict=True)
    monkeypatch.setenv("CI", "1")
    assert config.smoke_mode() is True  # lenient: warns, ignores PMSP_SMOKE, falls back to CI
    assert "warning: PMSP_SMOKE='maybe' is not a boolean" in capsys.readouterr().err


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("PMSP_DATA_DIR", raising=False)
    assert config.data_dir() is None
    monkeypatch.setenv("PMSP_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path
    monkeypatch.setenv("PMSP_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        config.data_dir()


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PMSP_CACHE_DIR", str(tmp_path))
    assert config.cache_dir() == tmp_path
    monkeypatch.delenv("PMSP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.cache_dir() == tmp_path / "xdg" / "pmsp"


def test_setup_fixes_seeds():
    pmsp_utils.setup(seed=3)
    first = np.random.rand(3)
    summary = pmsp_utils.setup(seed=3)
    np.testing.assert_array_equal(first, np.random.rand(3))
    assert summary["seed"] == 3 and summary["pmsp_utils"] == pmsp_utils.__version__


def test_import_does_not_pull_in_keras():
    code = (
        "import sys, pmsp_utils, pmsp_utils.ela, pmsp_utils.data, pmsp_utils.widgets, pmsp_utils.cli;"
        "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dataset_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("PMSP_DATA_DIR", raising=False)
    assert config.dataset_folder("casia1") is None
    monkeypatch.setenv("PMSP_DATA_DIR", str(tmp_path))
    assert config.dataset_folder("casia1") is None
    (tmp_path / "casia1").mkdir()
    assert config.dataset_folder("casia1") == tmp_path / "casia1"


@pytest.mark.parametrize("setting, ci, expected", [("0", None, False), ("1", "true", True), (None, "true", False)])
def test_progress_switch(monkeypatch, setting, ci, expected):
    from pmsp_utils.progress import progress_wanted

    set_environment(monkeypatch, PMSP_PROGRESS=setting, CI=ci)
    assert progress_wanted() is expected


def test_a_malformed_ci_value_only_warns_whatever_reads_it(monkeypatch, capsys):
    """``CI=maybe`` warned "Ignored here." and then stopped ``pmsp evaluate`` with "not a boolean" once its progress bars
    asked whether this is CI: every reader of CI takes it leniently, as the warning says."""
    from pmsp_utils import environment
    from pmsp_utils.progress import progress

    monkeypatch.setenv("CI", "maybe")
    monkeypatch.delenv("PMSP_SMOKE", raising=False)
    assert environment.in_ci() is False and config.smoke_mode() is False
    assert list(progress(range(3), description="counting")) == [0, 1, 2]
    assert "CI='maybe' is not a boolean" in capsys.readouterr().err
