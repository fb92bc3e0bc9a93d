"""Old module names kept for one release: importing one warns and hands over the module under its new name."""

from __future__ import annotations

import importlib
import sys
import warnings

#: old name -> new name (pmsp_utils 0.x: the package's confusable names were given one meaning each).
RENAMED = {
    "pmsp_utils.config": "pmsp_utils.environment",
    "pmsp_utils.localizer": "pmsp_utils.batch_files",
    "pmsp_utils.model": "pmsp_utils.network",
    "pmsp_utils.model.network": "pmsp_utils.network.build",
    "pmsp_utils.model.weights": "pmsp_utils.network.imagenet",
    **{f"pmsp_utils.model.{name}": f"pmsp_utils.network.{name}"
       for name in ("attention", "backbone", "counting", "ensemble", "folding", "losses", "pyramid")},
}


def hand_over(old: str) -> None:
    """Replace the module ``old`` (being imported) by its new module, with a warning a user sees."""
    new = RENAMED[old]
    warnings.warn(f"{old} is now {new}; the old name will be removed in the next release.", FutureWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
    if old == "pmsp_utils.model":  # its submodules too: `from pmsp_utils.model.pyramid import ...` keeps working
        for name, target in RENAMED.items():
            if name.startswith("pmsp_utils.model."):
                sys.modules[name] = importlib.import_module(target)
