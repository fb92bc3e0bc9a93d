"""Training's Keras-free parts: its command-line checks, the data it reads, its history file.

These run without a Keras backend installed (test_train.py holds the tests that train).
"""

from __future__ import annotations

import pytest

from pmsp_utils.cli import main
from pmsp_utils.train import TrainConfig, read_history, training_records


def tiny(**changes) -> TrainConfig:
    settings = dict(data="synthetic", input_size=192, batch_size=2, epochs=3, learning_rate=1e-3, weights=None,
                    patience=10, workers=1, augment=True, streams="rgb")
    return TrainConfig(**{**settings, **changes})


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--epochs", "0"], "must be at least 1"),
        (["--loss", "hinge"], "invalid choice"),
        (["--learning-rate", "-1"], "must be positive"),
        (["--data", "imagenet"], "invalid choice"),
    ],
)
def test_train_command_rejects_bad_arguments(arguments, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--run-dir", str(tmp_path / "r"), *arguments])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_training_records_for_synthetic_data_are_reused(cache_folder):
    config = tiny(synthetic_count=40)
    first = training_records(config, echo=lambda m: None)
    second = training_records(config, echo=lambda m: None)
    assert [r.name for r in first[0]] == [r.name for r in second[0]]
    assert [r.kind for r in first[0]] == [r.kind for r in second[0]]
    assert all(r.is_tampered for part in first[:3] for r in part)


def test_history_keeps_its_columns_when_a_resumed_run_logs_more(tmp_path):
    from pmsp_utils.train import append_history

    append_history(tmp_path, {"epoch": 0, "loss": 1.0})
    append_history(tmp_path, {"epoch": 1, "loss": 0.5, "learning_rate": 1e-4})
    assert (tmp_path / "history.csv").read_text().splitlines() == ["epoch,learning_rate,loss", "0,,1.0", "1,0.0001,0.5"]
    assert read_history(tmp_path) == [{"epoch": 0.0, "loss": 1.0}, {"epoch": 1.0, "learning_rate": 1e-4, "loss": 0.5}]
