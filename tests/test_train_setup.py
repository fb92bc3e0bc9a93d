"""Training's Keras-free parts: its command-line checks, the data it reads, its history file.

These run without a Keras backend installed (test_train.py, test_train_recipes.py and test_train_resume.py hold the tests that train).
"""

from __future__ import annotations

import json

import pytest

from pmsp_utils.cli import main
from pmsp_utils.train import TrainConfig, read_history, training_records
from tiny_training import tiny


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


def test_max_train_images_is_a_fixed_sample_not_a_prefix(cache_folder):
    """The parts are sorted by name, so a prefix would be one manipulation kind (CASIA's Sp_D before Sp_S); a hash sample is not."""
    everything = training_records(tiny(synthetic_count=40), echo=lambda m: None)[0]
    sample = training_records(tiny(synthetic_count=40, max_train_images=10), echo=lambda m: None)[0]
    again = training_records(tiny(synthetic_count=40, max_train_images=10), echo=lambda m: None)[0]
    names = [record.name for record in sample]
    assert len(sample) == 10 and names == [record.name for record in again] and names == sorted(names)
    assert set(names) <= {record.name for record in everything} and names != [record.name for record in everything[:10]]


def test_ablate_takes_the_shared_recipe_and_a_scored_part(tmp_path, capsys):
    from pmsp_utils.cli import build_parser

    args = build_parser().parse_args(["ablate", "--out", str(tmp_path), "--recompress", "0.3", "--score", "validation",
                                      "--max-train-images", "320"])
    assert (args.recompress, args.score, args.max_train_images, args.input_size, args.monitor) == (0.3, "validation", 320, 192, "val_f1")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ablate", "--out", str(tmp_path), "--score", "train"])
    assert "invalid choice: 'train'" in capsys.readouterr().err


def test_history_keeps_its_columns_when_a_resumed_run_logs_more(tmp_path):
    from pmsp_utils.run_folder import append_history

    append_history(tmp_path, {"epoch": 0, "loss": 1.0})
    append_history(tmp_path, {"epoch": 1, "loss": 0.5, "learning_rate": 1e-4})
    assert (tmp_path / "history.csv").read_text().splitlines() == ["epoch,learning_rate,loss", "0,,1.0", "1,0.0001,0.5"]
    assert read_history(tmp_path) == [{"epoch": 0.0, "loss": 1.0}, {"epoch": 1.0, "learning_rate": 1e-4, "loss": 0.5}]


def test_synthetic_copy_move_share(cache_folder):
    from collections import Counter

    kinds = {share: Counter(record.kind for part in training_records(tiny(synthetic_count=30, synthetic_copy_move=share), echo=lambda m: None)[:3]
                            for record in part) for share in (0.0, 1.0)}
    assert set(kinds[1.0]) == {"copy-move"} and set(kinds[0.0]) == {"splicing"}, "each share a set of its own in the cache"
    default = Counter(record.kind for part in training_records(tiny(synthetic_count=30), echo=lambda m: None)[:3] for record in part)
    assert set(default) == {"copy-move", "splicing"}
    with pytest.raises(ValueError, match="synthetic_copy_move is a share of the forgeries in \\[0, 1\\], got 1.5"):
        tiny(synthetic_copy_move=1.5).check()


def test_default_output_stride_is_16_and_older_runs_keep_32():
    from pmsp_utils.cli import _train_config, build_parser
    from pmsp_utils.train import TrainConfig

    assert TrainConfig().model.output_stride == 16
    assert _train_config(build_parser().parse_args(["train", "--run-dir", "r"])).model.output_stride == 16
    saved = TrainConfig(output_stride=8).flat()  # a config.json as written before the model's settings had their own object
    assert TrainConfig.from_saved(saved).model.output_stride == 8
    del saved["output_stride"]  # a run saved before the setting existed was trained at the paper's 32
    assert TrainConfig.from_saved(saved).model.output_stride == 32


def test_a_run_saved_before_the_stride_setting_resumes_at_32_without_a_false_difference():
    from pmsp_utils.train import setting_differences

    saved = TrainConfig().flat()
    del saved["output_stride"]
    assert setting_differences(saved, TrainConfig.from_saved(saved).flat()) == []
    assert setting_differences(saved, TrainConfig().flat()) == [("output_stride", 32, 16)]


def test_trainconfig_holds_the_models_settings_once():
    """The model's settings live in ``config.model`` (a ModelSettings), given by flat name or whole; config.json keeps
    them in their own object, and both layouts read back to the same config."""
    from dataclasses import asdict

    from pmsp_utils.model_settings import ModelSettings
    from pmsp_utils.train import TRAINING_NETWORK, TrainConfig

    config = TrainConfig(input_size=192, decoder="f3", epochs=3)
    assert config.model == ModelSettings(input_size=192, output_stride=16, decoder="f3") and config.epochs == 3
    assert not hasattr(config, "input_size")  # one place, not a copy beside it
    assert TrainConfig(model=ModelSettings(input_size=384), policy="pad").model == ModelSettings(input_size=384, policy="pad")
    assert TrainConfig().model == TRAINING_NETWORK == ModelSettings(output_stride=16)
    saved = json.loads(json.dumps(asdict(config)))
    assert saved["model"]["decoder"] == "f3" and "decoder" not in saved
    assert TrainConfig.from_saved(saved) == config == TrainConfig.from_saved(config.flat())
    assert config.changed(streams="rgb", seed=4).model.streams == "rgb" and config.changed(seed=4).model == config.model
    with pytest.raises(TypeError, match="no setting 'imput_size'"):
        TrainConfig(imput_size=192)
    with pytest.raises(ValueError, match="input size 200 does not work"):
        TrainConfig(input_size=200)


def test_a_run_dir_that_cannot_be_made_is_refused_before_the_data_is_read(tmp_path, capsys, monkeypatch):
    """--run-dir FILE/sub gave "[Errno 20] Not a directory" only after the data was loaded (or was hidden behind the
    ImageNet weights' error): it is one line naming the file, before anything is read."""
    import pmsp_utils.train_config as train_config
    from pmsp_utils.cli import main

    def not_reached(*args, **kwargs):
        raise AssertionError("the data was read")

    monkeypatch.setattr(train_config, "training_records", not_reached)
    (tmp_path / "a_file").write_text("mine")
    assert main(["train", "--data", "synthetic", "--run-dir", str(tmp_path / "a_file" / "sub" / "run"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path / 'a_file'} is a file, so no folder can be made under it" in err[0], err
