"""Training: a tiny end-to-end run, resume equivalence, the metric core, the command line's errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="training needs Keras: pip install -e '.[keras]'")

from pmsp_utils.cli import main  # noqa: E402
from pmsp_utils.data.synthetic import SyntheticConfig, SyntheticForgerySet  # noqa: E402
from pmsp_utils.train import TrainConfig, read_history, train  # noqa: E402

pytestmark = pytest.mark.slow  # real training runs: make test-fast skips them, make test runs them

QUIET = {"verbose": 0, "echo": lambda message: None}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    dataset = SyntheticForgerySet(12, seed=5, config=SyntheticConfig(size=192, splicing=0.6, copy_move=0.4)).write(folder, show_progress=False)
    tampered = [record for record in dataset if record.is_tampered]
    return tampered[:6], tampered[6:8]


@pytest.fixture(scope="module")
def trained_runs(records, tmp_path_factory):
    """Runs that several tests read or resume, each trained once for the module (one epoch, two epochs of
    :func:`tiny`'s defaults): a test copies the one it needs (:func:`copy_run`) before resuming or damaging it."""
    folder = tmp_path_factory.mktemp("shared_runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PMSP_CACHE_DIR", str(folder / "cache"))
        for name, epochs in (("one_epoch", 1), ("two_epochs", 2)):
            train(tiny(epochs=epochs), *records, folder / name, **QUIET)
    return folder


def copy_run(trained_runs, name: str, destination):
    """A private copy of a shared run, free to resume or damage."""
    import shutil

    return Path(shutil.copytree(trained_runs / name, destination))


def tiny(**changes) -> TrainConfig:
    """A small CPU run; one RGB stream (half the work, the same pipeline) unless a test asks for both."""
    settings = dict(data="synthetic", input_size=96, batch_size=2, epochs=3, learning_rate=1e-3, weights=None,
                    patience=10, workers=1, augment=True, streams="rgb")
    return TrainConfig(**{**settings, **changes})


def test_tiny_training_run_lowers_the_loss(records, tmp_path, cache_folder):
    model, history = train(tiny(epochs=4, augment=False, streams="both"), *records, tmp_path / "run", **QUIET)
    losses = [row["loss"] for row in history]
    assert len(history) == 4 and losses[-1] < losses[0]
    for name in ("config.json", "environment.json", "history.csv", "checkpoint.keras", "best.weights.h5", "model.keras",
                 "state.json", "snapshots.npz", "splits/train.txt", "splits/validation.txt"):
        assert (tmp_path / "run" / name).exists(), name
    assert json.loads((tmp_path / "run" / "environment.json").read_text())["backend"] == keras.backend.backend()
    assert {"val_f1", "val_auc", "val_loss"} <= set(history[0])
    snapshots = np.load(tmp_path / "run" / "snapshots.npz")
    assert {"rgb", "mask", "epoch_001", "epoch_004"} <= set(snapshots.files)
    assert (tmp_path / "run" / "splits" / "train.txt").read_text().count("\n") == 6


def test_interrupted_run_resumed_equals_uninterrupted(records, trained_runs, tmp_path, cache_folder):
    whole, _ = train(tiny(), *records, tmp_path / "whole", **QUIET)
    copy_run(trained_runs, "two_epochs", tmp_path / "split")  # "interrupted" after two epochs
    resumed, history = train(tiny(), *records, tmp_path / "split", resume=True, **QUIET)
    assert [int(row["epoch"]) for row in history] == [0, 1, 2]
    for mine, theirs in zip(resumed.weights, whole.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs), rtol=1e-3, atol=1e-4, err_msg=mine.path)


def test_resume_needs_a_checkpoint_and_the_same_settings(records, trained_runs, tmp_path, cache_folder):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        train(tiny(), *records, tmp_path / "empty", resume=True, **QUIET)
    copy_run(trained_runs, "one_epoch", tmp_path / "run")
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(tiny(epochs=1), *records, tmp_path / "run", **QUIET)
    with pytest.raises(ValueError, match="settings differ"):
        train(tiny(epochs=2, learning_rate=0.5), *records, tmp_path / "run", resume=True, **QUIET)


def test_bad_training_settings(records, tmp_path):
    for change, message in (({"loss": "hinge"}, "loss must be one of"), ({"batch_size": 0}, "batch_size must be at least 1"),
                            ({"learning_rate": 0}, "learning_rate must be positive"), ({"schedule": "step"}, "schedule")):
        with pytest.raises(ValueError, match=message):
            train(tiny(**change), *records, tmp_path / "x", **QUIET)
    with pytest.raises(ValueError, match="at least one training and one validation"):
        train(tiny(), records[0], [], tmp_path / "y", **QUIET)


@pytest.mark.parametrize("loss", ["bce+dice", "focal"])
def test_other_losses_train_and_reload_in_a_fresh_process(records, tmp_path, cache_folder, loss):
    import subprocess
    import sys

    train(tiny(epochs=1, loss=loss, positive_weight=3.0), *records, tmp_path / "run", **QUIET)
    # A fresh process: nothing has imported the training code that registers the losses.
    code = f"from pmsp_utils.models import read_keras; print(read_keras({str(tmp_path / 'run' / 'model.keras')!r}).loss.name)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] in {"bce_dice", "binary_focal"}


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


def test_init_from_and_plateau_schedule(records, trained_runs, tmp_path, cache_folder, monkeypatch):
    import pmsp_utils.train as training
    from pmsp_utils.models import load_model

    first = load_model(copy_run(trained_runs, "one_epoch", tmp_path / "first")).model
    start = tmp_path / "first" / "best.weights.h5"
    # Only the first epoch counts as an improvement, so the plateau schedule must fire after two epochs without one.
    monkeypatch.setattr(training, "is_better", lambda monitor, logs, state: state["best_epoch"] == 0)
    second, history = train(tiny(epochs=4, init_from=str(start), schedule="plateau", learning_rate=1e-9, patience=5),
                            *records, tmp_path / "second", **QUIET)
    # With a learning rate of 1e-9 the weights barely move from where they started.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(second.weights[0]), keras.ops.convert_to_numpy(first.weights[0]), atol=1e-5)
    rates = [row["learning_rate"] for row in history]
    factor = training.PLATEAU_FACTOR
    assert rates == pytest.approx([1e-9, 1e-9, 1e-9 * factor, 1e-9 * factor], rel=1e-4)  # lowered at the 2nd epoch without improvement
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        train(tiny(init_from=str(tmp_path / "nothing.weights.h5")), *records, tmp_path / "third", **QUIET)


# --- reliability (issue 11) --------------------------------------------------------------


def test_resume_names_each_differing_setting_and_normalises_paths(records, tmp_path, cache_folder, monkeypatch):
    run = tmp_path / "run"
    train(tiny(epochs=1, root=str(tmp_path)), *records, run, **QUIET)
    with pytest.raises(ValueError, match=r"learning_rate was 0.001, now 0.5; loss was 'bce', now 'focal'"):
        train(tiny(epochs=2, learning_rate=0.5, loss="focal", root=str(tmp_path)), *records, run, resume=True, **QUIET)
    monkeypatch.chdir(tmp_path.parent)
    spelled = f"{tmp_path.name}/"  # the same folder, relative and with a trailing slash
    _, history = train(tiny(epochs=2, root=spelled), *records, run, resume=True, **QUIET)
    assert len(history) == 2


def test_a_damaged_checkpoint_or_state_names_the_file(records, trained_runs, tmp_path, cache_folder):
    run = copy_run(trained_runs, "one_epoch", tmp_path / "run")
    (run / "checkpoint.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="checkpoint.keras: the checkpoint is damaged and cannot be resumed"):
        train(tiny(epochs=2), *records, run, resume=True, **QUIET)
    (run / "config.json").write_text("")
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        train(tiny(epochs=2), *records, run, resume=True, **QUIET)


def test_checkpoint_carries_its_own_state(records, trained_runs, tmp_path, cache_folder):
    """A crash between writing the checkpoint and state.json cannot repeat an epoch: the state travels in the checkpoint."""
    import zipfile

    run = copy_run(trained_runs, "two_epochs", tmp_path / "run")
    with zipfile.ZipFile(run / "checkpoint.keras") as archive:
        assert json.loads(archive.read("pmsp_state.json"))["epochs_done"] == 2
    stale = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**stale, "epochs_done": 1}))  # as if the crash came before state.json
    _, history = train(tiny(epochs=3), *records, run, resume=True, **QUIET)
    assert [int(row["epoch"]) for row in history] == [0, 1, 2]  # epoch 2 (index 1) was not run twice


def test_resume_keeps_settings_the_user_did_not_repeat(tmp_path, cache_folder, capsys):
    arguments = ["train", "--data", "synthetic", "--synthetic-count", "12", "--input-size", "192", "--batch-size", "2",
                 "--weights", "none", "--streams", "rgb", "--loss", "bce+dice", "--workers", "1", "--run-dir", str(tmp_path / "r")]
    assert main([*arguments, "--epochs", "1"]) == 0
    # The README's sequence: resume without repeating --loss and the rest.
    assert main(["train", "--data", "synthetic", "--run-dir", str(tmp_path / "r"), "--resume", "--epochs", "2"]) == 0, capsys.readouterr().err
    assert len(read_history(tmp_path / "r")) == 2
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--resume", "--epochs", "3", "--loss", "focal"]) == 2
    assert "loss was 'bce+dice', now 'focal'" in capsys.readouterr().err
    # Running longer or waiting longer is allowed, and the run's config.json says so.
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--resume", "--epochs", "2", "--patience", "20"]) == 0
    assert "resumed with patience 5 -> 20" in capsys.readouterr().out
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (saved["epochs"], saved["patience"], saved["loss"]) == (2, 20, "bce+dice")
    assert saved["notes"]["resumed"] == ["after epoch 1: epochs 1 -> 2", "after epoch 2: patience 5 -> 20"]
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--resume"]) == 0  # nothing typed: nothing changes
    assert json.loads((tmp_path / "r" / "config.json").read_text())["notes"]["resumed"] == saved["notes"]["resumed"]


def test_training_skips_unusable_images_with_a_list(records, tmp_path, cache_folder):
    from dataclasses import replace

    broken = tmp_path / "broken.png"
    broken.write_bytes(records[0][0].image_path.read_bytes()[:300])  # truncated
    damaged = replace(records[0][0], name="broken", image_path=broken)
    said = []
    _, history = train(tiny(epochs=1), [damaged, *records[0][1:]], records[1], tmp_path / "run", verbose=0, echo=said.append)
    assert len(history) == 1
    assert "skipped 1 of 6 training images that cannot be used:" in said
    assert any(line.startswith("  broken.png: cannot be used:") and ("truncated" in line or "corrupt" in line) for line in said), said


def test_ema_keeps_the_average_as_best_and_resumes_exactly(records, tmp_path, cache_folder):
    from pmsp_utils.train import averaged_weights, load_checkpoint

    one, _ = train(tiny(ema=0.5, epochs=1), *records, tmp_path / "one", **QUIET)  # one epoch: it is the best one
    raw, _ = load_checkpoint(tmp_path / "one")  # the raw weights, with the optimizer and its average
    averaged = [keras.ops.convert_to_numpy(v) for v in raw.optimizer._model_variables_moving_average]
    before = [keras.ops.convert_to_numpy(v) for v in raw.trainable_weights]
    assert max(float(np.abs(a - b).max()) for a, b in zip(averaged, before)) > 1e-4  # the average is not the raw weights
    for a, b in zip(one.trainable_weights, averaged):  # what training kept and returns is the average
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), b, rtol=1e-6, atol=1e-7)
    with averaged_weights(raw):
        for a, b in zip(raw.trainable_weights, averaged):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), b)
    for a, b in zip(raw.trainable_weights, before):  # the raw weights come back after the block
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), b)
    config = tiny(ema=0.5)
    whole, _ = train(config, *records, tmp_path / "whole", **QUIET)
    train(tiny(ema=0.5, epochs=2), *records, tmp_path / "split", **QUIET)
    resumed, _ = train(config, *records, tmp_path / "split", resume=True, **QUIET)
    for mine, theirs in zip(resumed.weights, whole.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs), rtol=1e-3, atol=1e-4, err_msg=mine.path)
    with pytest.raises(ValueError, match="ema is a momentum"):
        train(tiny(ema=1.0), *records, tmp_path / "bad", **QUIET)
