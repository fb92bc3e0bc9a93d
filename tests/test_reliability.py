"""Issue 26's second reliability pass: names taken literally, special files refused, settings type-checked."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from PIL import Image

from pmsp_utils.cli import main


@pytest.fixture()
def two_images(tmp_path):
    """'img[1].jpg' and 'img1.jpg': two different pictures whose names a pattern would confuse."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "img[1].jpg", quality=90)
    Image.fromarray(np.full((40, 50, 3), 128, np.uint8)).save(tmp_path / "img1.jpg", quality=90)
    return tmp_path


def test_a_name_that_exists_is_taken_literally(two_images, capsys):
    out = two_images / "out"
    assert main(["ela", str(two_images / "img[1].jpg"), "--out", str(out)]) == 0
    written = sorted(path.name for path in out.iterdir())
    assert len(written) == 1 and "img[1]" in written[0]  # the picture named, not img1.jpg
    assert main(["ela", str(two_images / "img?.jpg"), "--out", str(two_images / "out2")]) == 0  # a pattern still globs
    assert sorted(path.name for path in (two_images / "out2").iterdir()) == ["img1_jpg_ela.png"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_special_files_are_refused_by_name_and_the_batch_goes_on(two_images, capsys):
    fifo = two_images / "x.jpg"
    os.mkfifo(fifo)
    zero = two_images / "zero.jpg"
    zero.symlink_to("/dev/zero")
    loop = two_images / "loop.jpg"
    loop.symlink_to(loop)
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("code", main(["ela", str(fifo), str(zero), str(loop), str(two_images / "img1.jpg"),
                                                                             "--out", str(two_images / "out")])), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "pmsp ela hung on a special file"
    err = capsys.readouterr().err
    assert "x.jpg: is a named pipe (FIFO), not an image file" in err
    assert "zero.jpg: is a device, not an image file" in err
    assert "loop.jpg: cannot be read" in err and "symbolic links" in err
    assert result["code"] == 1 and (two_images / "out" / "img1_jpg_ela.png").is_file()  # the good file still done


@pytest.mark.parametrize("changes, message", [({"flip": "false"}, "flip must be true or false"),
                                               ({"input_size": "576"}, "input_size must be a whole number"),
                                               ({"ela_quality": 90.5}, "ela_quality is a JPEG quality"),
                                               ({"ela_gain": float("nan")}, "ela_gain must be a finite"),
                                               ({"output_stride": True}, "output_stride must be a whole number")])
def test_saved_settings_are_type_checked(changes, message):
    from pmsp_utils.architecture import ModelSettings

    values = {**ModelSettings(input_size=192).to_dict(), **changes}
    with pytest.raises(ValueError, match=message):
        ModelSettings.from_dict(values, source="card.json")


def test_a_whole_float_quality_reads_as_the_number():
    from pmsp_utils.architecture import ModelSettings

    settings = ModelSettings.from_dict({**ModelSettings(input_size=192).to_dict(), "ela_quality": 90.0})
    assert settings.ela_quality == 90 and isinstance(settings.ela_quality, int)


@pytest.mark.parametrize("levels", [(0, 1), (0, 255), (3, 90), (10, 200)])
def test_two_level_masks_are_masks(tmp_path, levels):
    """0/1 masks used to be refused as empty; any two-level mask now reads its higher level as tampered, and says so."""
    from pmsp_utils.data import load_folder
    from pmsp_utils.data.records import read_mask

    values = np.full((30, 40), levels[0], np.uint8)
    values[5:15, 10:30] = levels[1]
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(values).save(tmp_path / "masks" / "a.png")
    mask = read_mask(tmp_path / "masks" / "a.png")
    assert mask.sum() == 200 and mask[5:15, 10:30].all()
    dataset = load_folder(tmp_path)
    assert len(dataset.records) == 1 and not dataset.inconsistent
    if levels[1] <= 127:
        assert any("two-level mask" in note for note in dataset.records[0].notes)
