"""Named recipes (pmsp_utils/recipes.toml): every one is a valid config, and pmsp train --recipe takes it with typed overrides."""

from __future__ import annotations

import pytest

from pmsp_utils.recipes import recipe, recipe_config, recipes


def test_every_recipe_is_a_checked_config():
    names = recipes()
    assert {"paper", "synthetic", "ablation", "casia1-stride16", "casia1-synthetic-start", "one-network"} <= set(names)
    for name in names:
        config = recipe_config(name)
        for key, value in recipe(name).items():
            assert config.flat()[key] == value, (name, key)
    assert recipe_config("paper").model.output_stride == 32 and recipe_config("one-network").distill_from == "casia1"


def test_the_shipped_member_recipe_matches_its_card():
    import json

    from pmsp_utils.pretrained import WEIGHTS_DIR

    card = json.loads((WEIGHTS_DIR / "casia1.json").read_text())
    member = next(m for m in card["members"] if m["name"] == "stride16")
    config = recipe_config("casia1-stride16")
    for key in ("input_size", "output_stride", "decoder", "policy"):
        assert getattr(config.model, key) == member["settings"][key]
    assert config.loss == card["recipe"]["loss"] and config.patience == card["recipe"]["patience"]


def test_unknown_names_and_fields_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no recipe named 'fast'.*one-network"):
        recipe("fast")
    bad = tmp_path / "recipes.toml"
    bad.write_text('[mine]\ninput_size = 192\nlearning_rte = 0.1\n')
    with pytest.raises(ValueError, match="learning_rte"):
        recipes(bad)


def test_the_cli_takes_the_recipe_and_typed_options_override_it(tmp_path):
    from pmsp_utils.cli import _explicit_options, _train_config, build_parser

    argv = ["train", "--recipe", "one-network", "--run-dir", str(tmp_path / "run"), "--forgeries", "10", "--epochs", "3"]
    args = build_parser().parse_args(argv)
    args.explicit = _explicit_options(argv)
    config = _train_config(args)
    assert config.forgeries == 10 and config.epochs == 3  # typed
    assert config.model.decoder == "f3" and config.split == "grouped" and config.postprocess["jpeg"] == 0.5  # from the recipe
    assert config.learning_rate == 1e-4  # neither: the default
