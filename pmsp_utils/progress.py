"""Progress bars a person can follow, quiet in CI logs."""

from __future__ import annotations

import os
import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress_wanted() -> bool:
    """Show bars in terminals and notebooks, not in CI logs or headless runs.

    ``PMSP_PROGRESS=0`` turns them off (the headless notebook runner does this:
    a saved bar would read "0%" forever), ``PMSP_PROGRESS=1`` forces them on.
    """
    setting = os.environ.get("PMSP_PROGRESS")
    if setting is not None:
        value = setting.strip().lower()
        if value not in {"1", "true", "yes", "on", "0", "false", "no", "off", ""}:
            raise ValueError(f"PMSP_PROGRESS={setting!r}: use 1 (bars on) or 0 (off), or unset it (bars in terminals and notebooks).")
        return value in {"1", "true", "yes", "on"}
    from .environment import in_ci

    if in_ci():
        return False
    if _in_notebook_kernel():
        return True
    return sys.stderr.isatty()


def keras_verbosity() -> int:
    """Keras' ``verbose`` for ``fit``: 1 (a live bar, on stdout) where bars are wanted and stdout is a terminal or a
    notebook, else 2 (one line an epoch): a bar redrawn into a log file or a pipe is escape codes and repeated lines.
    ``PMSP_PROGRESS=1`` forces the bar."""
    if not progress_wanted():
        return 2
    if os.environ.get("PMSP_PROGRESS", "").strip().lower() in {"1", "true", "yes", "on"}:
        return 1
    return 1 if _in_notebook_kernel() or sys.stdout.isatty() else 2


def _in_notebook_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def progress(items: Iterable[T], *, total: int | None = None, description: str = "", show: bool | None = None) -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar when one is wanted.

    In a notebook the bar is text on standard output, not a widget: a widget bar
    saved in a notebook reads "Error displaying widget: model not found" after a
    reload, a text bar stays readable. Finished bars stay (``leave=True``).
    """
    if show is None:
        show = progress_wanted()
    if not show:
        yield from items
        return
    import sys

    from tqdm import tqdm

    in_notebook = _in_notebook_kernel()
    with tqdm(items, total=total, desc=description, leave=in_notebook, file=sys.stdout if in_notebook else None,
              dynamic_ncols=not in_notebook, ncols=90 if in_notebook else None) as bar:
        yield from bar


class _NoBar:
    """What :func:`progress_bar` gives when no bar is wanted: updates go nowhere."""

    def update(self, count: int = 1) -> None:
        pass

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc) -> None:
        return None


def progress_bar(*, total: int | None, initial: int = 0, description: str = "", show: bool | None = None, unit: str = "it"):
    """A bar to ``update(n)`` by hand (a download's bytes: ``unit="B"`` shows size and speed in KB/MB), or a silent one."""
    if show is None:
        show = progress_wanted()
    if not show:
        return _NoBar()
    import sys

    from tqdm import tqdm

    in_notebook = _in_notebook_kernel()
    return tqdm(total=total, initial=initial, desc=description, unit=unit, unit_scale=unit == "B", unit_divisor=1024 if unit == "B" else 1000,
                leave=True, file=sys.stdout if in_notebook else None, dynamic_ncols=not in_notebook, ncols=90 if in_notebook else None)
