"""One source for settings: the CLI's choices and defaults are the package's own tuples and dataclass defaults."""

from __future__ import annotations

from dataclasses import fields

from pmsp_utils.cli import _all_actions, build_parser


def actions_of(command: str) -> dict:
    parser = build_parser()
    sub = next(action for action in parser._actions if hasattr(action, "choices") and isinstance(action.choices, dict))
    return {action.dest: action for action in _all_actions(sub.choices[command])}


def test_train_options_default_to_trainconfig():
    from pmsp_utils.train import TrainConfig

    actions = actions_of("train")
    different = []
    for item in fields(TrainConfig):
        action = actions.get(item.name)
        if action is None or item.name in {"weights"}:  # 'weights' is "imagenet" on both sides, spelled for the CLI
            continue
        default = item.default_factory() if callable(item.default_factory) else item.default
        if action.default != default:
            different.append(f"--{item.name.replace('_', '-')}: CLI {action.default!r}, TrainConfig {default!r}")
    assert not different, different


def test_choice_lists_are_the_packages_tuples():
    from pmsp_utils.architecture import ATTENTION_PLACEMENTS, DECODERS, FUSIONS, INPUT_POLICIES, OUTPUT_STRIDES, STREAMS
    from pmsp_utils.data.sources import DATA_SOURCES
    from pmsp_utils.ela import SCALINGS
    from pmsp_utils.evaluate import SPLITS
    from pmsp_utils.train import LOSSES, MONITORS, SCHEDULES, SPLIT_PROTOCOLS

    expected = {"train": {"data": DATA_SOURCES, "loss": LOSSES, "monitor": MONITORS, "split": SPLIT_PROTOCOLS, "policy": INPUT_POLICIES,
                          "schedule": SCHEDULES, "attention": ATTENTION_PLACEMENTS, "fusion": FUSIONS, "streams": STREAMS,
                          "output_stride": OUTPUT_STRIDES, "decoder": DECODERS},
                "evaluate": {"data": DATA_SOURCES, "split": SPLITS, "protocol": SPLIT_PROTOCOLS},
                "ela": {"scaling": SCALINGS}}
    for command, options in expected.items():
        actions = actions_of(command)
        for dest, choices in options.items():
            assert tuple(actions[dest].choices) == tuple(choices), (command, dest)
