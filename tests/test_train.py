"""Training: runs sharing one trained run (resume equivalence, checkpoints, init-from), bad settings, the command line's errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="training needs Keras: pip install -e '.[keras]'")

from pmsp_utils.cli import main  # noqa: E402
from pmsp_utils.train import read_history, train  # noqa: E402
from tiny_training import QUIET, tiny, train_interrupted  # noqa: E402

pytestmark = pytest.mark.slow  # real training runs: make test-fast skips them, make test runs them


@pytest.fixture(scope="module")
def trained_runs(tiny_records, tmp_path_factory):
    """One run of :func:`tiny`'s three epochs, trained once for the module, with copies of its folder as a kill after
    its first and second epochs left it ("one_epoch", "two_epochs"): a test copies the one it needs
    (:func:`copy_run`) before resuming or damaging it; "whole" holds the uninterrupted run and its model."""
    folder = tmp_path_factory.mktemp("shared_runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PMSP_CACHE_DIR", str(folder / "cache"))
        model, _, copies = train_interrupted(tiny(), tiny_records, folder / "whole", after=(1, 2))
    copies[1].rename(folder / "one_epoch")
    copies[2].rename(folder / "two_epochs")
    return folder, model

def copy_run(trained_runs, name: str, destination):
    """A private copy of a shared run, free to resume or damage."""
    import shutil

    return Path(shutil.copytree(trained_runs[0] / name, destination))

@pytest.fixture(scope="module")
def resumed_from_a_stale_state(tiny_records, trained_runs, tmp_path_factory):
    """The run interrupted after two epochs, resumed to its three, after a crash between writing the checkpoint and
    ``state.json`` (which still says one epoch): (run folder, model, history)."""
    run = copy_run(trained_runs, "two_epochs", tmp_path_factory.mktemp("resumed") / "run")
    stale = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**stale, "epochs_done": 1}))  # as if the crash came before state.json
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PMSP_CACHE_DIR", str(run.parent / "cache"))
        model, history = train(tiny(), *tiny_records, run, resume=True, **QUIET)
    return run, model, history

def test_interrupted_run_resumed_equals_uninterrupted(trained_runs, resumed_from_a_stale_state):
    _, whole = trained_runs
    _, resumed, history = resumed_from_a_stale_state
    assert [int(row["epoch"]) for row in history] == [0, 1, 2]
    for mine, theirs in zip(resumed.weights, whole.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs), rtol=1e-3, atol=1e-4, err_msg=mine.path)

def test_resume_needs_a_checkpoint_and_the_same_settings(tiny_records, trained_runs, tmp_path, cache_folder):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        train(tiny(), *tiny_records, tmp_path / "empty", resume=True, **QUIET)
    copy_run(trained_runs, "one_epoch", tmp_path / "run")
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(tiny(epochs=1), *tiny_records, tmp_path / "run", **QUIET)
    with pytest.raises(ValueError, match="settings differ"):
        train(tiny(epochs=2, learning_rate=0.5), *tiny_records, tmp_path / "run", resume=True, **QUIET)

def test_bad_training_settings(tiny_records, tmp_path):
    for change, message in (({"loss": "hinge"}, "loss must be one of"), ({"batch_size": 0}, "batch_size must be at least 1"),
                            ({"learning_rate": 0}, "learning_rate must be positive"), ({"schedule": "step"}, "schedule")):
        with pytest.raises(ValueError, match=message):
            train(tiny(**change), *tiny_records, tmp_path / "x", **QUIET)
    with pytest.raises(ValueError, match="at least one training and one validation"):
        train(tiny(), tiny_records[0], [], tmp_path / "y", **QUIET)

# --- the command line -----------------------------------------------------------------

def test_train_command_without_data(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PMSP_DATA_DIR", raising=False)
    assert main(["train", "--data", "casia1", "--run-dir", str(tmp_path / "r")]) == 2
    assert "no data for 'casia1': pass --root PATH" in capsys.readouterr().err
    assert main(["train", "--data", "casia1", "--root", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path / "r")]) == 2
    assert "no such folder" in capsys.readouterr().err

def test_train_command_bad_size(tmp_path, capsys, cache_folder):
    assert main(["train", "--input-size", "500", "--synthetic-count", "20", "--weights", "none", "--run-dir", str(tmp_path / "r")]) == 2
    assert "output stride 16" in (said := capsys.readouterr().err) and "multiple of 96. Nearest: 480 or 576" in said
    assert main(["train", "--input-size", "480", "--output-stride", "32", "--synthetic-count", "20", "--weights", "none",
                 "--run-dir", str(tmp_path / "r")]) == 2
    assert "multiple of 192. Nearest: 384 or 576" in capsys.readouterr().err

def test_init_from_and_plateau_schedule(tiny_records, trained_runs, tmp_path, cache_folder, monkeypatch):
    import pmsp_utils.train as training
    from pmsp_utils.models import load_model

    first = load_model(copy_run(trained_runs, "one_epoch", tmp_path / "first")).model
    start = tmp_path / "first" / "best.weights.h5"
    # Only the first epoch counts as an improvement, so the plateau schedule must fire after two epochs without one.
    monkeypatch.setattr(training, "is_better", lambda monitor, logs, state: state["best_epoch"] == 0)
    second, history = train(tiny(epochs=4, init_from=str(start), schedule="plateau", learning_rate=1e-9, patience=5),
                            *tiny_records, tmp_path / "second", **QUIET)
    # With a learning rate of 1e-9 the weights barely move from where they started.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(second.weights[0]), keras.ops.convert_to_numpy(first.weights[0]), atol=1e-5)
    rates = [row["learning_rate"] for row in history]
    factor = training.PLATEAU_FACTOR
    assert rates == pytest.approx([1e-9, 1e-9, 1e-9 * factor, 1e-9 * factor], rel=1e-4)  # lowered at the 2nd epoch without improvement
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        train(tiny(init_from=str(tmp_path / "nothing.weights.h5")), *tiny_records, tmp_path / "third", **QUIET)

# --- reliability (issue 11) --------------------------------------------------------------

def test_a_damaged_checkpoint_or_state_names_the_file(tiny_records, trained_runs, tmp_path, cache_folder):
    run = copy_run(trained_runs, "one_epoch", tmp_path / "run")
    (run / "checkpoint.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="checkpoint.keras: the checkpoint is damaged and cannot be resumed"):
        train(tiny(epochs=2), *tiny_records, run, resume=True, **QUIET)
    (run / "config.json").write_text("")
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        train(tiny(epochs=2), *tiny_records, run, resume=True, **QUIET)

def test_checkpoint_carries_its_own_state(trained_runs, resumed_from_a_stale_state):
    """A crash between writing the checkpoint and state.json cannot repeat an epoch: the state travels in the checkpoint."""
    import zipfile

    with zipfile.ZipFile(trained_runs[0] / "two_epochs" / "checkpoint.keras") as archive:
        assert json.loads(archive.read("pmsp_state.json"))["epochs_done"] == 2
    run, _, history = resumed_from_a_stale_state  # resumed with state.json saying one epoch
    assert [int(row["epoch"]) for row in history] == [0, 1, 2]
    interrupted = read_history(trained_runs[0] / "two_epochs")
    assert history[1]["loss"] == interrupted[1]["loss"]  # epoch 2 (index 1) is the interrupted run's, not run again
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 3


def test_time_budget_stops_at_an_epoch_boundary_and_resume_continues_exactly(tiny_records, trained_runs, tmp_path, cache_folder):
    """``--budget-minutes``: a budget one epoch fits ends the run after that epoch, its checkpoint whole; resuming
    without the budget gives the uninterrupted run's history and weights."""
    _, whole = trained_runs
    run = tmp_path / "budget"
    said = []
    _, history = train(tiny(budget_minutes=1e-4), *tiny_records, run, verbose=0, echo=said.append)
    assert [int(row["epoch"]) for row in history] == [0], said
    assert any(line.startswith("time budget: stopping after epoch 1") for line in said), said
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 1
    model, history = train(tiny(), *tiny_records, run, resume=True, **QUIET)  # a budget is not what the run learns: resumable
    assert [int(row["epoch"]) for row in history] == [0, 1, 2]
    reference = read_history(trained_runs[0] / "whole")
    for mine, theirs in zip(history, reference):
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-3, abs=1e-4)
        assert mine["images_per_second"] > 0
    for mine, theirs in zip(model.weights, whole.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs), rtol=1e-3, atol=1e-4, err_msg=mine.path)


def test_time_budget_counts_the_slowest_epoch():
    from pmsp_utils.train import TimeBudget

    now = [0.0]
    budget = TimeBudget(10, clock=lambda: now[0])  # 600 s
    now[0] = 200.0
    assert not budget.next_epoch_would_overrun(150.0)  # 200 used + 150 fits
    now[0] = 480.0
    assert budget.next_epoch_would_overrun(100.0)  # the slowest epoch (150 s) no longer fits the 120 s left
    assert "8.0 of 10 minutes used" in budget.describe()
