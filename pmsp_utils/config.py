"""Settings read from the environment, in one place: the smoke switch, data and cache paths.

Every notebook and module asks this file; none parses the environment itself.

- ``PMSP_SMOKE``: ``1`` runs every notebook in seconds (tiny data, one epoch);
  ``0`` forces full runs. Unset, smoke mode follows ``CI`` (on in CI, off elsewhere).
- ``PMSP_DATA_DIR``: the folder that holds downloaded datasets (e.g. ``casia1/``).
- ``PMSP_CACHE_DIR``: where cached ELA maps go (default ``~/.cache/pmsp``).
- ``PMSP_MAX_IMAGE_PIXELS``: raise (or, with ``0``, lift) the decompression-bomb limit.
"""

from __future__ import annotations

import os
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(name: str) -> bool | None:
    """Read a boolean environment variable; ``None`` when unset."""
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"Environment variable {name}={value!r} is not a boolean: use 1 or 0.")


def smoke_mode() -> bool:
    """True when notebooks should run in seconds: ``PMSP_SMOKE``, else ``CI``."""
    explicit = _flag("PMSP_SMOKE")
    if explicit is not None:
        return explicit
    return bool(_flag("CI"))


def repo_root() -> Path | None:
    """The source checkout this package was imported from, or None for an installed wheel."""
    candidate = Path(__file__).resolve().parent.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "notebooks").is_dir():
        return candidate
    return None


def data_dir() -> Path | None:
    """The user's dataset folder from ``PMSP_DATA_DIR``, or None when not set."""
    value = os.environ.get("PMSP_DATA_DIR")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"PMSP_DATA_DIR={value!r} is not a folder. Point it at the folder that holds "
            "your downloaded datasets (e.g. the one containing casia1/), or unset it to use "
            "the embedded synthetic data."
        )
    return path


def cache_dir() -> Path:
    """Where cached ELA maps are written: ``PMSP_CACHE_DIR`` or ``~/.cache/pmsp``."""
    value = os.environ.get("PMSP_CACHE_DIR")
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pmsp"


def build_dir() -> Path:
    """Where the main job writes executed notebooks and figures (``<repo>/build``)."""
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "build"


def dataset_folder(source: str) -> Path | None:
    """``PMSP_DATA_DIR/<source>`` (e.g. ``casia1``) when it exists, else None (use the synthetic set)."""
    root = data_dir()
    if root is None:
        return None
    folder = root / source
    return folder if folder.is_dir() else None
