"""Named training recipes, as data (``recipes.toml``): ``pmsp train --recipe NAME`` and :func:`recipe_config`.

Defined in 04_training. A recipe names the settings that differ from
:class:`~pmsp_utils.train_config.TrainConfig`'s defaults; options typed on the command
line override them. One file holds the recipes of every shipped model, the
ablation scale and the paper's own, so a GPU call, a CPU run and a notebook
name the same recipe instead of copying its options.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

RECIPES_FILE = Path(__file__).resolve().parent / "recipes.toml"
NOT_IN_A_RECIPE = ("root", "notes")  # where the data lives is the user's, not the recipe's


def recipes(path: str | Path = RECIPES_FILE) -> dict[str, dict]:
    """{name: settings} of every recipe, each checked against TrainConfig's fields."""
    from .train_config import TrainConfig

    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error}).") from None
    known = set(TrainConfig.setting_names()) - set(NOT_IN_A_RECIPE)
    for name, values in table.items():
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: recipe {name!r} names {', '.join(unknown)}, which no training setting is called.")
    return table


def recipe(name: str, path: str | Path = RECIPES_FILE) -> dict:
    """The settings of recipe ``name``; an unknown name is an error listing the known ones."""
    table = recipes(path)
    if name not in table:
        raise ValueError(f"no recipe named {name!r}; the recipes are {', '.join(sorted(table))} ({path}).")
    return {key: tuple(value) if isinstance(value, list) else value for key, value in table[name].items()}


def recipe_config(name: str, **overrides):
    """A checked TrainConfig: recipe ``name`` with ``overrides`` on top."""
    from .train_config import TrainConfig

    config = TrainConfig(**{**recipe(name), **overrides})
    config.check()
    return config
