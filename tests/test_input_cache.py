"""The training pipeline's input cache: inputs prepared once, read back each epoch, the same arrays as localize."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("keras", reason="the training pipeline needs Keras: pip install -e '.[keras]'")

from pmsp_utils.data.records import Record  # noqa: E402
from pmsp_utils.ela import ElaCache, ElaSettings  # noqa: E402
from pmsp_utils.pipeline import IGNORE, to_input  # noqa: E402
from pmsp_utils.train import InputCache, TrainConfig, load_example, make_sequence  # noqa: E402


@pytest.fixture()
def forgery(tmp_path, photo):
    """A 123x157 JPEG with a rectangular tampered region."""
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=85)
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[20:60, 30:90] = 1
    Image.fromarray(mask * 255).save(tmp_path / "mask.png")
    return Record("folder", "photo", "splicing", tmp_path / "photo.jpg", tmp_path / "mask.png")


def config(**changes) -> TrainConfig:
    return TrainConfig(**{**dict(data="synthetic", input_size=192, batch_size=1, workers=1, weights=None, policy="pad"), **changes})


def batch_of(record, cfg, tmp_path, *, augment=False, cache=None):
    ela_cache = ElaCache(tmp_path / "ela", ElaSettings.of_model(cfg.model))
    sequence = make_sequence([record], cfg, shuffle=False, augment=augment, ela_cache=ela_cache, input_cache=cache)
    return sequence[0]


@pytest.mark.parametrize("policy", ["pad", "resize"])
def test_batches_hold_what_to_input_gives(forgery, tmp_path, policy):
    """The cached path feeds the network exactly pipeline.to_input's arrays, padding and its ignored targets included."""
    cfg = config(policy=policy)
    inputs, targets = batch_of(forgery, cfg, tmp_path)
    rgb, ela_map, mask, _ = to_input(*load_example(forgery, ElaCache(tmp_path / "ela2", ElaSettings(quality=90))), 192, policy)
    assert inputs["rgb"].dtype == np.uint8 and inputs["rgb"].shape == (1, 192, 192, 3)
    np.testing.assert_array_equal(inputs["rgb"][0], rgb)
    np.testing.assert_array_equal(inputs["ela"][0], ela_map)
    expected = np.where(mask == IGNORE, -1.0, mask).astype(np.float32)
    np.testing.assert_array_equal(targets[0, ..., 0], expected)
    if policy == "pad":
        assert (targets[0, 123:] == -1).all() and (targets[0, :, 157:] == -1).all() and (inputs["rgb"][0, 123:] == 0).all()


def test_entries_are_written_once_and_read_back(forgery, tmp_path):
    ela_cache = ElaCache(tmp_path / "ela", ElaSettings())
    cache = InputCache(ela_cache, 192, "pad")
    loads = []

    def load():
        loads.append(1)
        return load_example(forgery, ela_cache)

    first = cache.get(forgery, load)
    second = cache.get(forgery, load)
    assert len(loads) == 1 and isinstance(second, np.memmap) and not second.flags.writeable
    assert first.shape == (123, 157, 7) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, second)
    assert list((tmp_path / "inputs").rglob("*.npy")) == [cache.path_for(forgery)]


def test_the_key_follows_size_policy_and_mask(forgery, tmp_path):
    ela_cache = ElaCache(tmp_path / "ela", ElaSettings())
    paths = {InputCache(ela_cache, size, policy).path_for(forgery) for size in (192, 384) for policy in ("pad", "resize")}
    assert len(paths) == 4
    before = InputCache(ela_cache, 192, "pad").path_for(forgery)
    mask = np.zeros((123, 157), np.uint8)
    mask[:10, :10] = 255
    Image.fromarray(mask).save(forgery.mask_path)  # a corrected mask is another entry, never a stale one
    assert InputCache(ela_cache, 192, "pad").path_for(forgery) != before


def test_a_damaged_entry_is_prepared_again(forgery, tmp_path):
    ela_cache = ElaCache(tmp_path / "ela", ElaSettings())
    cache = InputCache(ela_cache, 192, "pad")
    good = np.array(cache.get(forgery, lambda: load_example(forgery, ela_cache)))
    cache.path_for(forgery).write_bytes(b"not an array")
    again = InputCache(ela_cache, 192, "pad").get(forgery, lambda: load_example(forgery, ela_cache))
    np.testing.assert_array_equal(again, good)


def test_flips_of_the_cached_input_equal_flips_before_it(forgery, tmp_path):
    """Flipping the cached (unpadded) input is flipping the image first: padding stays right and below."""
    cfg = config(seed=3)
    for position in range(6):  # several draws, so both flips and neither occur
        ela_cache = ElaCache(tmp_path / "ela", ElaSettings())
        sequence = make_sequence([forgery], cfg, shuffle=False, augment=True, ela_cache=ela_cache)
        sequence.set_epoch(position)
        inputs, targets = sequence[0]
        rng = np.random.default_rng([cfg.seed, position, 0])
        image, ela_map, mask = load_example(forgery, ela_cache)
        if rng.random() < 0.5:
            image, ela_map, mask = image[:, ::-1], ela_map[:, ::-1], mask[:, ::-1]
        if rng.random() < 0.5:
            image, ela_map, mask = image[::-1], ela_map[::-1], mask[::-1]
        np.testing.assert_array_equal(inputs["rgb"][0, :123, :157], image)
        np.testing.assert_array_equal(inputs["ela"][0, :123, :157], ela_map)
        np.testing.assert_array_equal(targets[0, :123, :157, 0], mask)
        assert (targets[0, 123:] == -1).all()


def test_a_resaved_image_gets_fresh_ela(forgery, tmp_path):
    """With recompress=1 every image is re-saved: its ELA differs from the cached one, its mask does not."""
    cached, cached_targets = batch_of(forgery, config(), tmp_path)
    resaved, resaved_targets = batch_of(forgery, config(recompress=1.0, recompress_qualities=(60, 60)), tmp_path, augment=True)
    assert not np.array_equal(np.sort(resaved["ela"].ravel()), np.sort(cached["ela"].ravel()))
    assert np.array_equal(np.sort(resaved_targets.ravel()), np.sort(cached_targets.ravel()))


def test_prefetching_threads_give_the_same_batches_in_any_order(tmp_path, photo):
    """The sequence's own threads build batches ahead (across epochs); the batches are those built one by one."""
    records = []
    for number in range(5):
        image = np.ascontiguousarray(np.roll(photo, 17 * number, axis=1))
        Image.fromarray(image).save(tmp_path / f"p{number}.jpg", quality=80 + number)
        mask = np.zeros(photo.shape[:2], np.uint8)
        mask[10 * number : 10 * number + 30, 20:70] = 255
        Image.fromarray(mask).save(tmp_path / f"m{number}.png")
        records.append(Record("folder", f"p{number}", "splicing", tmp_path / f"p{number}.jpg", tmp_path / f"m{number}.png"))
    ela_cache = ElaCache(tmp_path / "ela", ElaSettings())

    def sequence(workers):
        cfg = config(batch_size=2, workers=workers, recompress=0.5, seed=4)
        return make_sequence(records, cfg, shuffle=True, augment=True, ela_cache=ela_cache)

    one, threaded = sequence(1), sequence(3)
    assert threaded.workers == 1  # Keras' own workers stay off; the sequence's threads do the work
    for _ in range(3):  # epochs 0, 1, 2, in the order Keras asks
        for position in range(len(one)):
            (a, ta), (b, tb) = one[position], threaded[position]
            np.testing.assert_array_equal(a["rgb"], b["rgb"])
            np.testing.assert_array_equal(a["ela"], b["ela"])
            np.testing.assert_array_equal(ta, tb)
    for seq in (one, threaded):
        seq.set_epoch(7)
    for position in reversed(range(len(one))):  # out of order: nothing prefetched matches, all still right
        np.testing.assert_array_equal(one[position][0]["rgb"], threaded[position][0]["rgb"])


@pytest.mark.slow
def test_training_stops_its_prefetching_threads(tmp_path, cache_folder):
    """A finished run leaves no batch threads behind (an ablation trains dozens of runs in one process)."""
    import threading

    from pmsp_utils.data.synthetic import SyntheticConfig, SyntheticForgerySet
    from pmsp_utils.train import train

    dataset = SyntheticForgerySet(8, seed=5, config=SyntheticConfig(size=192)).write(tmp_path / "set", show_progress=False)
    tampered = [record for record in dataset if record.is_tampered]
    cfg = TrainConfig(data="synthetic", input_size=192, batch_size=2, epochs=1, weights=None, workers=3, streams="rgb")
    train(cfg, tampered[:4], tampered[4:6], tmp_path / "run", verbose=0, echo=lambda message: None)
    for _ in range(50):  # shut down without waiting: give the threads a moment to end
        alive = [thread for thread in threading.enumerate() if thread.name.startswith("pmsp-batches")]
        if not alive:
            break
        threading.Event().wait(0.05)
    assert not alive


def test_cached_arrays_are_opened_one_header_at_a_time(tmp_path, monkeypatch):
    """NumPy parses a .npy header with ast.literal_eval, which CPython before 3.11.8 could fail when two threads parse
    at once (gh-106905; it stopped a notebook's training once). The caches read on the batch threads open their entries
    through ela.load_npy, which holds one lock around the parse, and nowhere call np.load themselves."""
    import re
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from pmsp_utils import ela

    array = np.arange(2 * 3 * 7, dtype=np.uint8).reshape(2, 3, 7)
    np.save(tmp_path / "entry.npy", array)
    opened = ela.load_npy(tmp_path / "entry.npy", mmap_mode="r")
    assert isinstance(opened, np.memmap) and np.array_equal(opened, array)
    assert np.array_equal(ela.load_npy(tmp_path / "entry.npy"), array)
    with pytest.raises(OSError):
        ela.load_npy(tmp_path / "missing.npy")

    held = []
    real_load = np.load

    def watched(*args, **kwargs):
        held.append(ela._NPY_LOCK.locked())
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", watched)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: ela.load_npy(tmp_path / "entry.npy", mmap_mode="r"), range(16)))
    monkeypatch.undo()
    assert held == [True] * 16 and not ela._NPY_LOCK.locked()

    root = Path(ela.__file__).resolve().parent
    for module in ("feed.py", "distill.py", "ela.py"):
        calls = [line.strip() for line in (root / module).read_text().splitlines() if re.search(r"\bnp\.load\(", line.split("#")[0])]
        allowed = ['opened = np.load(path, mmap_mode=mmap_mode or "r")'] if module == "ela.py" else []
        assert calls == allowed, f"{module} calls np.load directly: {calls} (use ela.load_npy)"
