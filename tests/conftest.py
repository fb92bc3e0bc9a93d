"""Shared fixtures: small real photos and an independent ELA reference."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("MPLBACKEND", "Agg")
# The CLI's tests run on Keras: the LiteRT copy that `pmsp localize` exports on first use (a few seconds per model and
# cache folder) is tested on its own in test_runtime.py.
os.environ.setdefault("PMSP_RUNTIME", "keras")


def reference_ela(image: Image.Image, quality: int = 90) -> np.ndarray:
    """ELA the straightforward way: save, reopen, subtract in int16; (H, W, 3) uint8."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    resaved = Image.open(io.BytesIO(buffer.getvalue()))
    difference = np.abs(np.asarray(image, dtype=np.int16) - np.asarray(resaved, dtype=np.int16)).astype(np.uint8)
    if difference.ndim == 2:
        difference = np.stack([difference] * 3, axis=-1)
    return difference


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 123x157 crop of a real photo (odd size: not a multiple of the 8x8 JPEG block)."""
    from pmsp_utils.data import load_photo

    return load_photo("china")[150:273, 300:457].copy()


@pytest.fixture()
def cache_folder(tmp_path, monkeypatch):
    """Keep every cache write inside the test's temporary folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("PMSP_CACHE_DIR", str(folder))
    return folder


def encode(array: np.ndarray | Image.Image, format: str, **options) -> bytes:
    """Encode an array or image into the given format in memory."""
    image = array if isinstance(array, Image.Image) else Image.fromarray(array)
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


#: ``make test`` runs two pytest-xdist processes with ``--dist loadfile --no-loadscope-reorder``: a file is the unit
#: of work (a notebook's cells share one kernel, a module's tests its module-scoped fixtures) and files are handed out
#: in collection order, which the hook below sets. (It sees the notebooks too: ``make test`` collects tests/ and
#: notebooks/ in one session.)
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """The costly files first (notebooks, and files with tests marked ``slow``), each file kept whole and in order,
    so that no long one starts last while the other process idles."""
    def costly(item) -> bool:
        path = getattr(item, "path", None)
        return (path is not None and path.suffix == ".ipynb") or item.get_closest_marker("slow") is not None

    costly_files = {item.path for item in items if costly(item)}
    items[:] = [item for item in items if item.path in costly_files] + [item for item in items if item.path not in costly_files]


@pytest.fixture(scope="module")
def tiny_records(tmp_path_factory):
    """(training, validation) records of the tiny training runs (tests/tiny_training.py), written once per test file."""
    from tiny_training import synthetic_records

    return synthetic_records(tmp_path_factory.mktemp("synthetic"))
