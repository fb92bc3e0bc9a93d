"""Settings read from the environment, in one place: the smoke switch, data and cache paths.

Every notebook and module asks this file; none parses the environment itself.

- ``PMSP_SMOKE``: ``1`` runs every notebook in seconds (tiny data, one epoch);
  ``0`` forces full runs. Unset, smoke mode follows ``CI`` (on in CI, off elsewhere).
- ``PMSP_DATA_DIR``: the folder that holds downloaded datasets (e.g. ``casia1/``).
- ``PMSP_CACHE_DIR``: where cached ELA maps and training inputs go (default ``~/.cache/pmsp``).
- ``PMSP_MAX_IMAGE_PIXELS``: raise (or, with ``0``, lift) the decompression-bomb limit.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class EnvironmentSettingError(ValueError):
    """An environment variable holds a value the suite cannot use; the message names it and the accepted values."""


def _flag(name: str, *, strict: bool = True) -> bool | None:
    """Read a boolean environment variable; ``None`` when unset.

    A value that is not a boolean raises :class:`EnvironmentSettingError`, or with
    ``strict=False`` prints one warning line and counts as unset (so commands that
    do not need the variable still run).
    """
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    message = f"{name}={os.environ[name]!r} is not a boolean; accepted: {', '.join(sorted(_TRUE | _FALSE - {''}))}."
    if strict:
        raise EnvironmentSettingError(message)
    _warn_once(message + " Ignored here.")
    return None


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    import sys

    if message not in _WARNED:
        _WARNED.add(message)
        print(f"warning: {message}", file=sys.stderr)


def in_ci() -> bool:
    """Whether ``CI`` is set to a true value (``CI=true``, ``1``, ``yes``): ``CI=false`` or ``CI=0`` in a terminal is
    not CI. A malformed value warns and counts as unset."""
    return bool(_flag("CI", strict=False))


def smoke_mode(*, strict: bool = False) -> bool:
    """True when notebooks should run in seconds: ``PMSP_SMOKE``, else ``CI``.

    A malformed value warns and counts as unset, unless ``strict`` (the notebook
    runner, which needs the answer, refuses it).
    """
    explicit = _flag("PMSP_SMOKE", strict=strict)
    if explicit is not None:
        return explicit
    return bool(_flag("CI", strict=strict))


KERAS_BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def check_keras_backend() -> str:
    """The Keras backend ``KERAS_BACKEND`` names (default tensorflow), checked to be known and installed."""
    import importlib.util

    backend = os.environ.get("KERAS_BACKEND", "tensorflow").strip() or "tensorflow"
    if backend not in KERAS_BACKENDS:
        raise EnvironmentSettingError(f"KERAS_BACKEND={backend!r} is not a Keras backend; accepted: {', '.join(KERAS_BACKENDS)}.")
    if importlib.util.find_spec(KERAS_BACKENDS[backend]) is None:
        raise EnvironmentSettingError(
            f"KERAS_BACKEND={backend!r}, but {KERAS_BACKENDS[backend]} is not installed: install it "
            f"(pip install {KERAS_BACKENDS[backend]}) or set KERAS_BACKEND to one that is ({', '.join(_installed_backends()) or 'none'})."
        )
    return backend


def _installed_backends() -> list[str]:
    import importlib.util

    return [name for name, module in KERAS_BACKENDS.items() if importlib.util.find_spec(module) is not None]


def max_image_pixels() -> int | None:
    """``PMSP_MAX_IMAGE_PIXELS`` as a number (None when unset); a clear error naming the variable when malformed."""
    value = os.environ.get("PMSP_MAX_IMAGE_PIXELS")
    if value is None:
        return None
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        number = -1
    if number < 0 or number > MAX_PIXEL_LIMIT:
        raise EnvironmentSettingError(f"PMSP_MAX_IMAGE_PIXELS={value!r} is not a pixel count; accepted: a whole number "
                                      f"of pixels up to {MAX_PIXEL_LIMIT:,}, or 0 to lift the decompression-bomb limit.")
    return number


#: The largest pixel limit taken (a trillion pixels, 4 TB as RGBA: past any image; 0 lifts the limit instead): larger
#: numbers overflow the sizes computed from the limit.
MAX_PIXEL_LIMIT = 10**12


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
    """Where cached ELA maps and training inputs are written: ``PMSP_CACHE_DIR`` or ``~/.cache/pmsp``."""
    value = os.environ.get("PMSP_CACHE_DIR")
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pmsp"


def unwritable_cache(cache: Path, why: str, *, noun: str = "the cache") -> str:
    """One line (no full stop) for a cache folder that cannot be written, saying which variable moves it."""
    if os.environ.get("PMSP_CACHE_DIR"):
        return f"PMSP_CACHE_DIR: {cache} cannot be written ({why}); point PMSP_CACHE_DIR at a writable folder"
    return f"{noun} {cache} cannot be written ({why}); set PMSP_CACHE_DIR to a writable folder"


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


def keras_environment() -> None:
    """TensorFlow unless KERAS_BACKEND says otherwise (checked to be installed); TensorFlow's C++ start-up notices kept
    out; Keras imported. What every command that needs the network does first."""
    os.environ["KERAS_BACKEND"] = check_keras_backend()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import_keras_quietly()


_STDERR_LOCK = threading.RLock()


@contextmanager
def native_stderr(kept: list[str] | None = None):
    """File descriptor 2, where C and C++ libraries write (TensorFlow's start-up notices, libtiff's complaints, LiteRT's
    XNNPACK line) without any Python filter seeing it, redirected inside the block: its lines appended to ``kept``, or
    dropped when ``kept`` is None. Python's own errors still raise. One block at a time, as the descriptor is the
    process's; where the process has no descriptor 2 (some notebook front-ends) nothing is redirected."""
    import sys
    import tempfile

    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield kept
            return
        with tempfile.TemporaryFile() as sink:  # read back only when the lines are kept
            os.dup2(sink.fileno(), 2)
            try:
                yield kept
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                if kept is not None:
                    sink.seek(0)
                    kept += list(dict.fromkeys(line.strip() for line in sink.read().decode("utf-8", "replace").splitlines() if line.strip()))


def import_keras_quietly():
    """Import Keras (and its backend) with the backend's native start-up notices kept out of the output.

    TensorFlow writes absl, oneDNN and CUDA-probing lines straight to file
    descriptor 2 while it loads, before ``TF_CPP_MIN_LOG_LEVEL`` takes effect; in
    a notebook they land in a pink stderr block. Only that descriptor is silenced,
    only during the import: Python errors still surface as exceptions. TensorFlow's
    own Python logger is set to errors only: its warnings (a prediction function
    "retraced" when a notebook builds many models) are hints for library authors.
    """
    import importlib
    import sys

    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr():
        keras = importlib.import_module("keras")
        keras.ops.convert_to_numpy(keras.ops.zeros((1,)))  # the first operation probes devices, and logs too
    if keras.backend.backend() == "tensorflow":
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return keras
