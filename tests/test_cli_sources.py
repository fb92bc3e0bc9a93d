"""One source for settings: the CLI's choices and defaults are the package's own tuples and dataclass defaults."""

from __future__ import annotations

from pmsp_utils.cli import _all_actions, build_parser


def actions_of(command: str) -> dict:
    parser = build_parser()
    sub = next(action for action in parser._actions if hasattr(action, "choices") and isinstance(action.choices, dict))
    return {action.dest: action for action in _all_actions(sub.choices[command])}


def test_train_options_default_to_trainconfig():
    from pmsp_utils.train import TrainConfig

    actions = actions_of("train")
    different = []
    compared = 0
    for name, default in TrainConfig.defaults().items():  # the model's settings (TRAINING_NETWORK) and the run's
        action = actions.get(name)
        if action is None or name in {"weights"}:  # 'weights' is "imagenet" on both sides, spelled for the CLI
            continue
        compared += 1
        if action.default != default:
            different.append(f"--{name.replace('_', '-')}: CLI {action.default!r}, TrainConfig {default!r}")
    assert not different, different
    assert compared >= 30 and {"input_size", "output_stride", "decoder", "policy", "epochs"} <= set(actions)


def test_ablate_options_default_to_the_ablation_recipe():
    from pmsp_utils.recipes import recipe
    from pmsp_utils.train import TrainConfig

    args = build_parser().parse_args(["ablate", "--out", "study"])
    expected = {**TrainConfig.defaults(), **recipe("ablation")}
    different = [name for name, value in expected.items() if hasattr(args, name) and name != "weights" and getattr(args, name) != value]
    assert not different, different
    assert args.output_stride == 32 and args.input_size == 192 and args.loss == "bce+dice"


def test_the_network_has_one_set_of_defaults():
    """build_pmsp's signature defaults are ModelSettings' (the paper's network); training departs only where
    TRAINING_NETWORK says so."""
    import inspect

    from pmsp_utils.model_settings import ModelSettings
    from pmsp_utils.network.build import build_pmsp
    from pmsp_utils.train import TRAINING_NETWORK

    signature = inspect.signature(build_pmsp).parameters
    paper = ModelSettings()
    assert {name: signature[name].default for name in ModelSettings.ARCHITECTURE} == paper.architecture()
    departures = {name for name, value in TRAINING_NETWORK.to_dict().items() if getattr(paper, name) != value}
    assert departures == {"output_stride"}


def test_choice_lists_are_the_packages_tuples():
    from pmsp_utils.model_settings import ATTENTION_PLACEMENTS, DECODERS, FUSIONS, INPUT_POLICIES, OUTPUT_STRIDES, STREAMS
    from pmsp_utils.data.sources import DATA_SOURCES
    from pmsp_utils.ela import SCALINGS
    from pmsp_utils.evaluate import SPLITS
    from pmsp_utils.train_config import LOSSES, MONITORS, SCHEDULES, SPLIT_PROTOCOLS

    expected = {"train": {"data": DATA_SOURCES, "loss": LOSSES, "monitor": MONITORS, "split": SPLIT_PROTOCOLS, "policy": INPUT_POLICIES,
                          "schedule": SCHEDULES, "attention": ATTENTION_PLACEMENTS, "fusion": FUSIONS, "streams": STREAMS,
                          "output_stride": OUTPUT_STRIDES, "decoder": DECODERS},
                "evaluate": {"data": DATA_SOURCES, "split": SPLITS, "protocol": SPLIT_PROTOCOLS},
                "ela": {"display": SCALINGS}}
    for command, options in expected.items():
        actions = actions_of(command)
        for dest, choices in options.items():
            assert tuple(actions[dest].choices) == tuple(choices), (command, dest)


def test_one_split_dispatcher():
    import pytest

    from pmsp_utils.data import Record, grouped_split, paper_split, split_by

    records = [Record(name=f"Sp_D_NRN_A_ani{index:04d}_art{index % 7:04d}_{index}", image_path=f"{index}.jpg", mask_path=f"{index}.png",
                      kind="splicing", dataset="casia1", source_ids=(f"ani{index:04d}", f"art{index % 7:04d}")) for index in range(60)]
    assert split_by("paper", records).parts() == paper_split(records).parts()
    assert split_by("grouped", records).parts() == grouped_split(records).parts()
    with pytest.raises(ValueError, match="split protocol must be one of"):
        split_by("random", records)


def test_settings_and_splits_are_built_in_one_place():
    """The ELA settings of a model and the split of a protocol are asked of their one source, not rebuilt by hand."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    rebuilt = re.compile(r"ElaSettings\((quality=)?(settings|config)\.ela_quality|grouped_split\(.*\) if .*split.* else paper_split")
    offenders = [f"{path.relative_to(root)}:{number}" for folder in ("pmsp_utils", "scripts", "benchmarks")
                 for path in sorted((root / folder).rglob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), 1) if rebuilt.search(line)]
    assert not offenders, f"ELA settings or splits rebuilt by hand (use ElaSettings.of_model / split_by): {offenders}"
    from pmsp_utils.model_settings import ModelSettings
    from pmsp_utils.ela import ElaSettings

    assert ElaSettings.of_model(ModelSettings(input_size=192, ela_quality=85)) == ElaSettings(quality=85, scaling="raw")
