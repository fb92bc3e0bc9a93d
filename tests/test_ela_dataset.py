"""The dataset-level helper: order, parallelism, the on-disk cache and its keys."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import encode

from pmsp_utils import ela as ela_module
from pmsp_utils.ela import ElaCache, ElaSettings, ela, ela_dataset, iter_ela


@pytest.fixture()
def files(photo, tmp_path):
    paths = []
    for index in range(6):
        path = tmp_path / f"image{index}.jpg"
        path.write_bytes(encode(np.roll(photo, 9 * index, axis=1), "JPEG", quality=70 + 4 * index))
        paths.append(path)
    return paths


@pytest.fixture()
def count_computations(monkeypatch):
    calls = []
    original = ela_module.ela_of_loaded

    def counting(loaded, settings):
        calls.append(loaded.source)
        return original(loaded, settings)

    monkeypatch.setattr(ela_module, "ela_of_loaded", counting)
    return calls


def test_results_in_order_and_equal_to_single_calls(files, cache_folder):
    maps = ela_dataset(files, workers=3, quality=80, cache=False)
    for path, result in zip(files, maps):
        np.testing.assert_array_equal(result, ela(path, quality=80))


def test_second_pass_reads_the_cache(files, cache_folder, count_computations):
    first = ela_dataset(files, workers=2)
    assert len(count_computations) == len(files)
    assert len(list((cache_folder / "ela").glob("*/*.npy"))) == len(files)
    second = ela_dataset(files, workers=2)
    assert len(count_computations) == len(files), "the second pass recomputed instead of reading the cache"
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_cache_key_follows_content_and_settings(files, cache_folder, count_computations):
    ela_dataset(files[:1])
    ela_dataset(files[:1], quality=75)
    ela_dataset(files[:1], scaling="fixed", multiplier=10)
    ela_dataset(files[:1], scaling="fixed", multiplier=12)
    assert len(count_computations) == 4
    expected = ela(files[1])
    files[0].write_bytes(files[1].read_bytes())  # same name, new content
    before = len(count_computations)
    np.testing.assert_array_equal(ela_dataset(files[:1])[0], expected)
    assert len(count_computations) == before + 1


def test_cache_ignores_the_multiplier_unless_fixed():
    assert ElaSettings(scaling="raw", multiplier=5).cache_tag() == ElaSettings(scaling="raw", multiplier=9).cache_tag()
    assert "libjpeg" in ElaSettings().cache_tag()


def test_damaged_cache_entry_is_recomputed(files, cache_folder, count_computations):
    cache = ElaCache(cache_folder / "ela")
    good = cache.get(files[0])
    entry = cache.path_for(cache.key(files[0].read_bytes()))
    entry.write_bytes(b"not a numpy file")
    np.testing.assert_array_equal(cache.get(files[0]), good)
    assert len(count_computations) == 2
    assert cache.clear() == 1


def test_no_temporary_files_left_behind(files, cache_folder):
    ela_dataset(files, workers=4)
    assert not list((cache_folder / "ela").glob("*/*.tmp"))


def test_bad_file_raises_or_is_skipped(files, tmp_path, cache_folder):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="broken.jpg: not an image"):
        ela_dataset([files[0], broken])
    maps = ela_dataset([files[0], broken, files[1]], on_error="skip")
    assert maps[1] is None and maps[0] is not None and maps[2] is not None
    with pytest.raises(ValueError, match="on_error"):
        list(iter_ela(files, on_error="ignore"))


def test_memory_window_is_bounded(files, cache_folder, monkeypatch):
    """No more than 4 * workers results are computed ahead of the consumer."""
    started = []
    original = ElaCache.lookup

    def tracking(self, source):
        started.append(source)
        return original(self, source)

    monkeypatch.setattr(ElaCache, "lookup", tracking)
    many = files * 5
    iterator = iter_ela(many, workers=1, show_progress=False)
    next(iterator)
    assert len(started) <= 5
    iterator.close()


def test_cached_maps_are_read_only_on_every_pass(files, cache_folder):
    first = ela_dataset(files[:2])
    second = ela_dataset(files[:2])
    for ela_map in first + second:
        assert not ela_map.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            ela_map[0, 0, 0] = 1
    assert ela_dataset(files[:1], cache=False)[0].flags.writeable


def test_cache_entry_of_the_wrong_shape_is_recomputed(files, cache_folder, count_computations):
    cache = ElaCache(cache_folder / "ela")
    good = np.array(cache.get(files[0]))
    np.save(cache.path_for(cache.key(files[0].read_bytes())), np.zeros((3, 3), np.float32))
    np.testing.assert_array_equal(cache.get(files[0]), good)
    assert len(count_computations) == 2


@pytest.mark.parametrize("cache", [True, False])
def test_a_file_that_cannot_be_opened_is_skipped_and_named(files, tmp_path, cache_folder, monkeypatch, cache):
    """A file without read permission (chmod 000, as a user other than root) raised PermissionError out of
    ``ela_dataset(on_error="skip")``, and the good files after it were lost. It is named, with what to do, and skipped.
    (Root reads any file, so the refusal is simulated where the file is opened.)"""
    import builtins
    import logging

    locked = tmp_path / "locked.jpg"
    locked.write_bytes(files[0].read_bytes())
    real_open = builtins.open

    def refusing(file, *args, **kwargs):
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing)
    with pytest.raises(ValueError, match=r"locked.jpg: cannot be read \(Permission denied\); check its permissions"):
        ela_dataset([locked], cache=cache)
    with pytest.MonkeyPatch.context():
        caught = []
        handler = logging.Handler()
        handler.emit = caught.append
        logging.getLogger("pmsp_utils.ela").addHandler(handler)
        try:
            maps = ela_dataset([files[0], locked, files[1]], on_error="skip", cache=cache)
        finally:
            logging.getLogger("pmsp_utils.ela").removeHandler(handler)
    assert maps[1] is None and maps[0] is not None and maps[2] is not None
    assert any("locked.jpg: cannot be read" in record.getMessage() for record in caught)
