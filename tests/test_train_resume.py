"""Resuming a run: each differing setting named, paths normalised, settings not typed again kept (the command line)."""

from __future__ import annotations

import json
import shutil

import pytest

keras = pytest.importorskip("keras", reason="training needs Keras: pip install -e '.[keras]'")

from pmsp_utils.cli import main  # noqa: E402
from pmsp_utils.train import read_history, train  # noqa: E402
from tiny_training import QUIET, tiny  # noqa: E402

pytestmark = pytest.mark.slow  # real training runs: make test-fast skips them, make test runs them

#: ``pmsp train`` on 12 synthetic images at 96 px, one stream: what the command-line tests run (one epoch unless told).
ARGUMENTS = ["train", "--data", "synthetic", "--synthetic-count", "12", "--input-size", "96", "--batch-size", "2",
             "--weights", "none", "--streams", "rgb", "--loss", "bce+dice", "--workers", "1"]


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A run folder after one epoch of :data:`ARGUMENTS`, trained once for the file; tests take copies of it."""
    folder = tmp_path_factory.mktemp("cli") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PMSP_CACHE_DIR", str(folder.parent / "cache"))
        assert main([*ARGUMENTS, "--epochs", "1", "--run-dir", str(folder)]) == 0
    return folder


def test_resume_names_each_differing_setting_and_normalises_paths(tiny_records, tmp_path, cache_folder, monkeypatch):
    run = tmp_path / "run"
    train(tiny(epochs=1, root=str(tmp_path)), *tiny_records, run, **QUIET)
    with pytest.raises(ValueError, match=r"learning_rate was 0.001, now 0.5; loss was 'bce', now 'focal'"):
        train(tiny(epochs=2, learning_rate=0.5, loss="focal", root=str(tmp_path)), *tiny_records, run, resume=True, **QUIET)
    monkeypatch.chdir(tmp_path.parent)
    spelled = f"{tmp_path.name}/"  # the same folder, relative and with a trailing slash
    _, history = train(tiny(epochs=1, root=spelled), *tiny_records, run, resume=True, **QUIET)  # taken: its epoch is done
    assert len(history) == 1

def test_resume_keeps_settings_the_user_did_not_repeat(one_epoch_run, tmp_path, cache_folder, capsys):
    shutil.copytree(one_epoch_run, tmp_path / "r")  # `pmsp train ... --epochs 1 --run-dir r`, with --loss bce+dice
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


def test_a_folder_that_is_not_a_run_is_refused_and_a_run_killed_before_its_first_epoch_starts_again(one_epoch_run, tmp_path, cache_folder, capsys):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "config.json").write_text('{"mine": true}')
    (other / "history.csv").write_text("my history\n")
    arguments = [*ARGUMENTS, "--epochs", "1"]
    assert main([*arguments, "--run-dir", str(other)]) == 2
    assert "holds files that are not a pmsp training run's (history.csv)" in capsys.readouterr().err
    assert (other / "history.csv").read_text() == "my history\n"
    (other / "history.csv").rename(tmp_path / "history.csv")
    (other / "environment.json").write_text("{}")
    (other / "splits").mkdir()
    assert main([*arguments, "--run-dir", str(other)]) == 2  # shaped like a stopped run, but its config.json is not a run's
    assert "its config.json is not a pmsp run's" in capsys.readouterr().err
    assert (other / "config.json").read_text() == '{"mine": true}'
    # a run killed while writing its first checkpoint: its config and a temporary checkpoint, nothing else
    run = tmp_path / "run"
    shutil.copytree(one_epoch_run, run)  # the same command's finished run, then cut back to what a kill leaves
    for name in ("checkpoint.keras", "state.json", "history.csv", "best.weights.h5", "model.keras", "snapshots.npz"):
        (run / name).unlink(missing_ok=True)
    (run / ".pmsp-abc123.keras").write_bytes(bytes(1000))
    assert main([*arguments, "--run-dir", str(run), "--resume"]) == 2
    assert "never finished its first epoch: start it again with the same command, without --resume" in capsys.readouterr().err
    # a restart removes only what the stopped run wrote, as environment.json's hashes record it: a file of the user's
    # inside splits/, or a config.json edited since, is named and kept
    (run / "splits" / "my_holdout.txt").write_text("mine\n")
    assert main([*arguments, "--run-dir", str(run)]) == 2
    assert "splits/my_holdout.txt was not written by the stopped run" in capsys.readouterr().err
    assert (run / "splits" / "my_holdout.txt").read_text() == "mine\n"
    (run / "splits" / "my_holdout.txt").rename(tmp_path / "my_holdout.txt")
    config = (run / "config.json").read_text()
    (run / "config.json").write_text(config.replace('"seed": 0', '"seed": 0 '))
    assert main([*arguments, "--run-dir", str(run)]) == 2
    assert "config.json has changed since the stopped run wrote it" in capsys.readouterr().err
    (run / "config.json").write_text(config)
    only_splits = tmp_path / "only_splits"
    (only_splits / "splits").mkdir(parents=True)
    (only_splits / "splits" / "train.txt").write_text("a.jpg\n")
    assert main([*arguments, "--run-dir", str(only_splits)]) == 2
    assert "holds splits but not the config.json, environment.json a stopped pmsp run would hold" in capsys.readouterr().err
    assert main([*arguments, "--run-dir", str(run)]) == 0
    assert "never finished its first epoch (it was stopped); starting it again" in capsys.readouterr().out
    assert not (run / ".pmsp-abc123.keras").exists() and (run / "state.json").exists()


def test_a_history_edited_by_hand_stops_the_resume_before_anything_changes(one_epoch_run, tmp_path, cache_folder, capsys):
    """A note typed into history.csv let ``--resume`` train a whole epoch, update best.weights.h5 and config.json, then
    fail with "could not convert string to float" naming no file. It now stops first, naming the file, line and column,
    and every file of the run is as it was."""
    import hashlib

    run = tmp_path / "r"
    shutil.copytree(one_epoch_run, run)
    with open(run / "history.csv", "a") as stream:
        stream.write("# my note: good run\n")
    before = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in run.rglob("*") if path.is_file()}
    assert main(["train", "--run-dir", str(run), "--resume", "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'history.csv'}: line 3, column 'epoch': '# my note: good run' is not a number" in err, err
    assert "Traceback" not in err
    assert {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in run.rglob("*") if path.is_file()} == before
