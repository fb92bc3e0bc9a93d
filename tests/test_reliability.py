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
    written = sorted(path.name for path in out.iterdir() if not path.name.startswith("."))  # the ledger aside
    assert len(written) == 1 and "img[1]" in written[0]  # the picture named, not img1.jpg
    assert main(["ela", str(two_images / "img?.jpg"), "--out", str(two_images / "out2")]) == 0  # a pattern still globs
    assert sorted(path.name for path in (two_images / "out2").iterdir() if not path.name.startswith(".")) == ["img1_jpg_ela.png"]


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
    from pmsp_utils.model_settings import ModelSettings

    values = {**ModelSettings(input_size=192).to_dict(), **changes}
    with pytest.raises(ValueError, match=message):
        ModelSettings.from_dict(values, source="card.json")


def test_a_whole_float_quality_reads_as_the_number():
    from pmsp_utils.model_settings import ModelSettings

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


# --- results files ---------------------------------------------------------------------------------


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(folder / name, quality=90)
    return folder


def localize(photos, out, *extra):
    return main(["localize", str(photos), "--out", str(out), "--weights", "synthetic", "--runtime", "keras", *extra])


def test_a_users_scores_csv_is_never_replaced(photos, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.csv").write_text("my,own,table\n")
    assert localize(photos, out) != 0
    assert (out / "scores.csv").read_text() == "my,own,table\n"
    captured = capsys.readouterr()
    assert "scores.csv that pmsp did not write, or that was edited since pmsp wrote it; it is never replaced" in captured.err
    assert "image(s), model" not in captured.out and "score" not in captured.out  # no table header before the refusal


def test_the_table_lists_exactly_the_finished_images_after_an_interruption(photos, tmp_path, monkeypatch):
    import pmsp_utils.localize_outputs as localizer

    out = tmp_path / "out"
    assert localize(photos, out) == 0  # a first, complete run: scores.csv is pmsp's
    assert len((out / "scores.csv").read_text().splitlines()) == 4
    real, calls = localizer.write_outputs, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second image
        return real(*args, **kwargs)

    monkeypatch.setattr(localizer, "write_outputs", interrupted)
    # other settings (a threshold): the first run's rows are not mixed in, only this run's finished image is listed
    assert main(["localize", str(photos), "--out", str(out), "--weights", "synthetic", "--runtime", "keras", "--threshold", "0.4"]) == 130
    assert not (out / "scores.csv").exists()  # the previous run's table cannot pass for this one's
    rows = (out / "scores.incomplete.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[0].endswith("a.jpg")
    assert not (out / ".pmsp.lock").exists()
    # the same settings: this run's finished image first, then the earlier run's rows of the images not yet redone
    calls.clear()
    assert main(["localize", str(photos), "--out", str(out), "--weights", "synthetic", "--runtime", "keras"]) == 130
    rows = (out / "scores.incomplete.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[0].endswith("a.jpg")  # the 0.4 run's rows are not this run's settings


def test_a_second_run_into_the_same_folder_is_refused(photos, tmp_path, capsys):
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (out / ".pmsp.lock").write_text(str(holder.pid))
        assert localize(photos, out) != 0
        assert f"another pmsp run (process {holder.pid}) is writing there" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert localize(photos, out) == 0  # a lock whose process is gone is taken over


def test_a_full_disk_is_one_line_and_leaves_no_partial_image(photos, tmp_path, monkeypatch, capsys):
    import errno

    import pmsp_utils.localize_outputs as localizer

    real, calls = localizer.save_picture_atomic, []

    def full(path, picture, format, **options):
        calls.append(path)
        if len(calls) == 5:  # the second image's second picture
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, picture, format, **options)

    monkeypatch.setattr(localizer, "save_picture_atomic", full)
    out = tmp_path / "out"
    assert localize(photos, out) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the disk is full after 1 image(s)" in err[0]
    assert sorted(path.name for path in out.glob("*_*.*g")) == ["a_jpg_mask.png", "a_jpg_overlay.jpg", "a_jpg_probability.png"]
    assert not list(out.glob(".pmsp-*.tmp"))


def test_a_disk_that_fills_while_the_ledger_is_written_leaves_no_unlisted_picture(photos, tmp_path, monkeypatch, capsys):
    """The third hostile pass: the disk filled between a picture's rename and the ledger's update. The picture stayed,
    unlisted, the message said it was not written (pmsp ela) or was removed (pmsp localize), and every rerun refused it
    as a file pmsp did not write. Now a picture is kept only with its ledger entry, and the rerun goes through."""
    import errno

    from pmsp_utils.localize_outputs import Ledger

    real, saves = Ledger._save, []

    def full(self, entries):
        saves.append(self.out)
        if any(name.startswith("b_jpg_") for name in entries):  # the second image's pictures are being recorded
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, entries)

    for command, out, pictures in ((["localize", "--weights", "synthetic", "--runtime", "keras"], tmp_path / "loc", "b_jpg_*"),
                                   (["ela"], tmp_path / "ela", "b_jpg_ela.png")):
        monkeypatch.setattr(Ledger, "_save", full)
        assert main([command[0], str(photos), "--out", str(out), *command[1:]]) != 0
        err = capsys.readouterr().err
        assert "the disk is full after 1" in err and not list(out.glob(pictures)), (command[0], err, sorted(out.iterdir()))
        monkeypatch.setattr(Ledger, "_save", real)
        assert main([command[0], str(photos), "--out", str(out), *command[1:]]) == 0, capsys.readouterr().err  # space again
        assert list(out.glob(pictures))


def test_an_input_named_like_a_temporary_file_survives(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(folder / "a.jpg", quality=90)
    keep = folder / ".a_jpg_ela.png.tmp"
    keep.write_bytes(b"a user's file")
    assert main(["ela", str(folder / "a.jpg"), "--out", str(folder)]) == 0
    assert keep.read_bytes() == b"a user's file" and (folder / "a_jpg_ela.png").is_file()


# --- arguments and environment ------------------------------------------------------------------------


def test_numeric_options_must_be_finite_before_any_data_is_read(tmp_path, capsys):
    for option in ("--positive-weight", "--learning-rate"):
        with pytest.raises(SystemExit):
            main(["train", "--run-dir", str(tmp_path / "run"), option, "inf"])
        assert "must be positive and finite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["notebooks", "--timeout", "-5"])
    assert "must be at least 1" in capsys.readouterr().err


def test_a_run_dir_that_is_a_file_fails_before_the_data_loads(tmp_path, capsys, monkeypatch):
    import pmsp_utils.train_config as train

    monkeypatch.setattr(train, "training_records", lambda *a, **k: pytest.fail("the data was loaded first"))
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["train", "--run-dir", str(target)]) != 0
    assert "--run-dir" in capsys.readouterr().err and target.read_text() == "mine"


def test_a_malformed_progress_setting_names_the_variable(monkeypatch):
    from pmsp_utils.progress import progress_wanted

    monkeypatch.setenv("PMSP_PROGRESS", "maybe")
    with pytest.raises(ValueError, match="PMSP_PROGRESS='maybe'"):
        progress_wanted()
    monkeypatch.setenv("PMSP_PROGRESS", "off")
    assert progress_wanted() is False


def test_numpy_integer_quality_and_tile_arguments():
    from pmsp_utils.ela import ela
    from pmsp_utils.pipeline import localize

    image = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    assert ela(image, quality=np.int64(90)).shape == (40, 40, 3)  # Pillow's "Invalid quality setting" before
    for overlap, batch_size, message in ((0.99, 4, "overlap is the share"), (0.25, 0, "batch_size is the number of tiles")):
        with pytest.raises(ValueError, match=message):
            localize(object(), image, settings=__import__("pmsp_utils.model_settings", fromlist=["ModelSettings"]).ModelSettings(input_size=192),
                     policy="tile", overlap=overlap, batch_size=batch_size)


# --- datasets -------------------------------------------------------------------------------------------


def test_the_same_image_under_two_names_stays_on_one_side(tmp_path):
    from pmsp_utils.data.records import Record
    from pmsp_utils.data.splits import grouped_split, paper_split

    rng = np.random.default_rng(3)
    records = []
    for index in range(40):
        path = tmp_path / f"img{index:02d}.png"
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path)
        records.append(Record("folder", path.stem, "splicing", path))
    for index in range(10):  # ten copies under new names
        copy = tmp_path / f"copy{index:02d}.png"
        copy.write_bytes(records[index * 4].image_path.read_bytes())
        records.append(Record("folder", copy.stem, "splicing", copy))
    for split in (paper_split(records, (0.6, 0.2, 0.2)), grouped_split(records, (0.6, 0.2, 0.2))):
        where = {record.name: part for part, items in split.parts().items() for record in items}
        assert all(where[f"copy{index:02d}"] == where[f"img{index * 4:02d}"] for index in range(10)), split.protocol
        assert sum(len(items) for items in split.parts().values()) == 50


def test_an_empty_evaluation_part_is_an_error_with_the_reason(tmp_path):
    from pmsp_utils.data.records import Record
    from pmsp_utils.evaluate import select_records

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    with pytest.raises(ValueError, match="test part .* is empty .*--split all"):
        select_records([Record("folder", "a", "splicing", path)], "test", protocol="paper")


def _folder_of(root, images: tuple[str, ...], masks: tuple[str, ...], seed: int) -> np.random.Generator:
    """The generic layout under ``root``: random 20x20 ``images``, the same square mask under each name of ``masks``."""
    for folder in ("images", "masks", "authentic"):
        (root / folder).mkdir()
    rng = np.random.default_rng(seed)
    for name in images:
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / "images" / name)
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 5:10] = 255
    for name in masks:
        Image.fromarray(mask).save(root / "masks" / name)
    return rng


def test_images_sharing_a_stem_keep_their_extensions_as_names(tmp_path):
    from pmsp_utils.data import load_folder

    # a.jpg and a.png: each mask named after its image's whole name
    rng = _folder_of(tmp_path, ("a.jpg", "a.png", "b.jpg"), ("a.jpg.png", "a.png_mask.png", "b.png"), seed=0)
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "authentic" / "b.png")
    dataset = load_folder(tmp_path)
    assert sorted(record.name for record in dataset.records) == ["a.jpg", "a.png", "b.jpg", "b.png"]  # before: two 'a', two 'b'
    assert {record.image_path.name: record.mask_path.name for record in dataset.records if record.mask_path} == {
        "a.jpg": "a.jpg.png", "a.png": "a.png_mask.png", "b.jpg": "b.png"}
    # c.jpg has a mask, c.png (another picture) none: c.jpg was named "c", the name another evaluation that scores c.png
    # would give it too (pmsp compare would then pair two pictures); a name is the stem only while no image shares it
    for name in ("c.jpg", "c.png"):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "images" / name)
    Image.fromarray((rng.random((20, 20)) < 0.3).astype(np.uint8) * 255).save(tmp_path / "masks" / "c.jpg.png")
    names = {record.image_path.name: record.name for record in load_folder(tmp_path).records}
    assert names["c.jpg"] == "c.jpg" and "c.png" not in names


def test_one_file_name_in_images_and_authentic_is_two_images_and_no_tampered_image_is_refused(tmp_path, capsys):
    """The third hostile pass: images/a.jpg and authentic/a.jpg became two rows named a.jpg, the untouched one scored as
    a splicing; a mask without an image was never reported; a folder without tampered images printed an F1 of 0.970."""
    from pmsp_utils.data import load_folder

    (tmp_path / "both").mkdir()
    rng = _folder_of(tmp_path / "both", ("a.jpg", "g.jpg"), ("a.png", "g.png", "z.png"), seed=2)
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "both" / "authentic" / "a.jpg")
    dataset = load_folder(tmp_path / "both")
    names = {record.name: record.kind for record in dataset.records}
    assert names == {"images/a.jpg": "splicing", "authentic/a.jpg": "authentic", "g": "splicing"}
    assert any("1 masks without an image (not used), e.g. z.png" in line for line in dataset.loading_report())
    (tmp_path / "untouched").mkdir()
    _folder_of(tmp_path / "untouched", (), (), seed=3)
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "untouched" / "authentic" / "x.jpg")
    for extra in ((), ("--include-authentic",)):
        assert main(["evaluate", "--data", "folder", "--root", str(tmp_path / "untouched"), "--split", "all", "--weights", "synthetic",
                     "--no-copy-move", "--out", str(tmp_path / "ev"), *extra]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / 'untouched'}: no tampered image with a usable mask" in err and "masks/ beside them" in err, err
    assert not (tmp_path / "ev" / "table2.csv").exists()


def test_one_mask_for_two_images_sharing_a_stem_is_nobodys(tmp_path, capsys):
    """img00.jpg and img00.png are different pictures: masks/img00.png was scored as the mask of both."""
    from pmsp_utils.data import load_folder

    _folder_of(tmp_path, ("img00.jpg", "img00.png", "img01.jpg"), ("img00.png", "img01.png"), seed=1)
    dataset = load_folder(tmp_path)
    assert [record.image_path.name for record in dataset.records] == ["img01.jpg"]
    refused = dict((path.name, why) for path, why in dataset.inconsistent)
    assert sorted(refused) == ["img00.jpg", "img00.png"] and "shares its stem with img00.png" in refused["img00.jpg"]
    assert "img00.jpg.png" in refused["img00.jpg"] and dataset.unmatched_masks == []


# --- damaged or contradictory models -------------------------------------------------------------------------


def test_damaged_model_files_are_named(tmp_path, monkeypatch):
    keras = pytest.importorskip("keras")
    from pmsp_utils import pretrained
    from pmsp_utils.models import load_model

    random_bytes = tmp_path / "model.keras"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=r"model\.keras: not a (Keras archive|readable \.keras file)"):
        load_model(random_bytes)  # "File not found" before

    run = tmp_path / "run"
    run.mkdir()
    (run / "best.weights.h5").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="without config.json"):
        load_model(run)

    # a copy of the shipped folder with a truncated weight file, a broken card and a contradictory card
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in ("synthetic.json", "synthetic.npz"):
        (folder / name).write_bytes((pretrained.WEIGHTS_DIR / name).read_bytes())
    (folder / "synthetic.npz").write_bytes((folder / "synthetic.npz").read_bytes()[:100000])
    (folder / "broken.json").write_text("{ not json")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", folder)
    assert pretrained.available() == ["synthetic"]  # the broken card hides only itself
    with pytest.raises(ValueError, match=r"synthetic\.npz: the weight file is damaged"):
        load_model("synthetic")
    card = __import__("json").loads((folder / "synthetic.json").read_text())
    card["architecture"] = {**card.get("architecture", {}), "output_stride": 8 if card["settings"]["output_stride"] != 8 else 32}
    (folder / "synthetic.json").write_text(__import__("json").dumps(card))
    with pytest.raises(ValueError, match="contradicts itself"):
        pretrained.model_card("synthetic")
    del keras


def test_non_finite_weights_are_refused(tmp_path):
    pytest.importorskip("keras")
    from pmsp_utils.model_settings import ModelSettings
    from pmsp_utils.network import build_pmsp
    from pmsp_utils.models import load_model, save_model

    settings = ModelSettings(input_size=96, output_stride=16)
    model = build_pmsp(**settings.architecture(), weights=None, verbose=False)
    variable = model.weights[-1]
    variable.assign(np.full(variable.shape, np.nan, np.float32))
    save_model(model, tmp_path / "nan.keras", settings)
    with pytest.raises(ValueError, match="non-finite values"):
        load_model(tmp_path / "nan.keras")


# --- memory: large photos worked in bands, the same outputs --------------------------------------------------


def _whole_image_ela(loaded, settings):
    """The map as one re-save of the whole image (the four steps of notebook 01, on Pillow images)."""
    from pmsp_utils.ela import absolute_difference, resave_jpeg, scale_difference
    from pmsp_utils.images import to_array

    difference = absolute_difference(loaded.image, resave_jpeg(loaded.image, settings.quality, settings.subsampling))
    return to_array(loaded.to_display(scale_difference(difference, settings.scaling, settings.multiplier)))


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_ela_in_bands_equals_one_resave_of_the_whole_image(mode, subsampling):
    """Bands of rows on the JPEG block grid, with a unit of context each side, join into exactly the whole image's map:
    sizes that are and are not multiples of 16, every scaling, bands as thin as one block row."""
    import io

    from pmsp_utils.ela import ElaSettings, ela_of_loaded
    from pmsp_utils.images import load_image

    rng = np.random.default_rng(3)
    for height, width in ((333, 250), (200, 517), (64, 48)):
        coarse = rng.integers(0, 255, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
        picture = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC).convert(mode)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=85)
        loaded = load_image(buffer.getvalue())
        for scaling in ("raw", "fixed", "max"):
            settings = ElaSettings(quality=90, scaling=scaling, subsampling=subsampling)
            whole = _whole_image_ela(loaded, settings)
            for rows in (16, 48, 1024):
                banded = ela_of_loaded(loaded, settings, band_rows=rows).ela
                assert banded.shape == whole.shape and np.array_equal(banded, whole), (height, width, scaling, rows)


def test_bands_without_context_would_differ():
    """The context rows are needed: the same bands re-saved without them leave seams (what the margin prevents)."""
    import io

    from pmsp_utils.ela import absolute_difference, resave_jpeg
    from pmsp_utils.images import load_image

    rng = np.random.default_rng(4)
    coarse = rng.integers(0, 255, (60, 60, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(coarse).resize((240, 240), Image.Resampling.BICUBIC).save(buffer, format="JPEG", quality=85)
    image = load_image(buffer.getvalue()).image
    whole = np.asarray(absolute_difference(image, resave_jpeg(image)))
    seams = np.concatenate([np.asarray(absolute_difference(band, resave_jpeg(band)))
                            for band in (image.crop((0, top, 240, top + 16)) for top in range(0, 240, 16))])
    assert not np.array_equal(seams, whole)


def test_exif_orientation_on_arrays_matches_pillow():
    from pmsp_utils.ela import orient_array
    from pmsp_utils.images import apply_orientation

    array = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    for orientation in range(1, 9):
        assert np.array_equal(orient_array(array, orientation), np.asarray(apply_orientation(Image.fromarray(array), orientation)))


def test_large_arrays_convert_and_resize_in_parts_to_the_same_values(monkeypatch):
    from pmsp_utils import images, pipeline

    rng = np.random.default_rng(5)
    array = rng.integers(0, 255, (1100, 300, 3), dtype=np.uint8)
    monkeypatch.setattr(images, "CONVERT_BAND_ROWS", 64)
    for mode_array in (array, array[..., 0]):
        assert np.array_equal(images.pillow_to_numpy(Image.fromarray(mode_array)), np.array(Image.fromarray(mode_array)))
    probability = rng.random((50, 70), dtype=np.float32)
    assert np.array_equal(images.pillow_to_numpy(Image.fromarray(probability).resize((300, 1100))),
                          np.array(Image.fromarray(probability).resize((300, 1100))))
    whole = np.asarray(Image.fromarray(array).resize((96, 96), Image.Resampling.BILINEAR))
    monkeypatch.setattr(pipeline, "CHANNELWISE_PIXELS", 1000)  # one channel at a time from here
    assert np.array_equal(pipeline._resize(array, 96, 96, Image.Resampling.BILINEAR), whole)


def test_the_written_pictures_are_the_formulas_band_by_band(monkeypatch):
    from pmsp_utils import localize_outputs as localizer

    rng = np.random.default_rng(6)
    image, probability = rng.integers(0, 255, (300, 90, 3), dtype=np.uint8), rng.random((300, 90), dtype=np.float32)
    mask = probability >= 0.5
    tinted = image.astype(np.float32)
    tinted[mask] = 0.55 * tinted[mask] + 0.45 * np.array([255, 0, 0], np.float32)
    monkeypatch.setattr(localizer, "BAND_ROWS", 7)
    assert np.array_equal(localizer.overlay(image, mask), np.clip(np.round(tinted), 0, 255).astype(np.uint8))
    assert np.array_equal(localizer.probability_picture(probability), np.round(probability * 255).astype(np.uint8))
    grey = image[..., 0]
    assert np.array_equal(localizer.overlay(grey, mask)[..., 1], np.where(mask, np.round((1 - 0.45) * grey.astype(np.float32)), grey))


def test_no_file_of_the_users_is_replaced_and_the_ledger_knows_what_pmsp_wrote(two_images, capsys):
    """A user's own picture named like an output, and a scores.csv edited after pmsp wrote it, are never replaced; the
    image whose output would replace a user's file fails in one line, the others are written."""
    out = two_images / "out"
    out.mkdir()
    mine = out / "img1_jpg_mask.png"
    mine.write_bytes(b"my own picture")
    mine_ela = out / "img1_jpg_ela.png"
    mine_ela.write_bytes(b"my own ELA")
    assert main(["localize", str(two_images / "img1.jpg"), str(two_images / "img[1].jpg"), "--out", str(out), "--weights", "synthetic",
                 "--runtime", "keras"]) == 1
    err = capsys.readouterr().err
    assert "img1_jpg_mask.png: already there, and pmsp did not write it" in err
    assert mine.read_bytes() == b"my own picture" and not (out / "img1_jpg_overlay.jpg").exists()
    assert (out / "img[1]_jpg_mask.png").exists()
    assert main(["ela", str(two_images / "img1.jpg"), "--out", str(out)]) == 1
    assert mine_ela.read_bytes() == b"my own ELA"
    # pmsp's own outputs may be written again; an edited scores.csv may not
    assert main(["localize", str(two_images / "img[1].jpg"), "--out", str(out), "--weights", "synthetic", "--runtime", "keras"]) == 0
    capsys.readouterr()
    (out / "scores.csv").write_text((out / "scores.csv").read_text() + "my,notes\n")
    assert main(["localize", str(two_images / "img[1].jpg"), "--out", str(out), "--weights", "synthetic", "--runtime", "keras"]) == 2
    assert "edited since pmsp wrote it; it is never replaced" in capsys.readouterr().err
    assert (out / "scores.csv").read_text().endswith("my,notes\n")


def test_evaluate_never_replaces_a_users_table(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "table1.csv").write_text("my table\n")
    assert main(["evaluate", "--data", "synthetic", "--synthetic-count", "4", "--weights", "synthetic", "--out", str(out),
                 "--baselines"]) == 2
    assert "table1.csv: already there, and pmsp did not write it" in capsys.readouterr().err
    assert (out / "table1.csv").read_text() == "my table\n"


def test_a_folder_of_every_common_format_is_read_as_when_each_is_named(tmp_path, capsys):
    """Pillow's own registry of endings decides what a folder holds: .jfif, .jpe, .gif (and .avif where this Pillow
    writes it) are no longer skipped in silence; a HEIC file is named as HEIC with how to convert it."""
    from PIL import Image as PillowImage

    folder = tmp_path / "mixed"
    folder.mkdir()
    picture = PillowImage.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    formats = {"a.jpg": "JPEG", "b.jfif": "JPEG", "c.jpe": "JPEG", "d.gif": "GIF", "e.tif": "TIFF", "f.bmp": "BMP", "g.webp": "WEBP",
               "h.png": "PNG", "i.avif": "AVIF"}
    for name, kind in formats.items():
        try:
            picture.save(folder / name, kind)
        except (KeyError, OSError):  # a Pillow without AVIF writing
            (folder / name).unlink(missing_ok=True)
    written = sorted(path.name for path in folder.iterdir())
    assert main(["ela", str(folder), "--out", str(tmp_path / "out")]) == 0
    made = sorted(path.name for path in (tmp_path / "out").iterdir() if not path.name.startswith("."))
    assert len(made) == len(written) >= 8, (written, made)
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    assert main(["ela", str(heic), "--out", str(tmp_path / "out2")]) == 1
    assert "HEIC/HEIF photo" in capsys.readouterr().err
    # In a folder, a HEIC or a camera raw file was passed over without a word ("10 image(s)" for 11 files): each is
    # named with what to do, the rest of the folder is still read, and the exit code says not everything was.
    for name in ("fake.heic", "IMG_0001.HEIC", "shot.CR2"):
        (folder / name).write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    (folder / "notes.txt").write_text("not a picture, and not named\n")
    assert main(["ela", str(folder), "--out", str(tmp_path / "out3")]) == 1
    err = capsys.readouterr().err
    for name in ("fake.heic", "IMG_0001.HEIC"):
        assert f"{folder / name}: skipped (in the folder {folder}): a HEIC/HEIF photo" in err, err
    assert f"{folder / 'shot.CR2'}: skipped (in the folder {folder}): a camera raw file" in err and "notes.txt" not in err
    assert len([path for path in (tmp_path / "out3").iterdir() if not path.name.startswith(".")]) == len(written)


def _grey_ramp() -> np.ndarray:
    return (np.arange(48 * 64).reshape(48, 64) % 251).astype(np.uint8)


def test_formats_that_lose_something_say_so_in_one_line(tmp_path, capsys):
    """An animated GIF's later frames, a 64-bit RGBA PNG's low bits: a note on stderr, and the map is still written."""
    import struct
    import zlib

    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (40, 48, 3), np.uint8)).convert("P") for _ in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    height, width = 16, 20
    rgba = np.dstack([rng.integers(0, 65536, (height, width, 3)), np.full((height, width, 1), 65535)]).astype(">u2")
    rows = b"".join(b"\x00" + rgba[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    (tmp_path / "deep.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0))
                                        + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    assert main(["ela", str(tmp_path / "anim.gif"), str(tmp_path / "deep.png"), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"note: {tmp_path / 'anim.gif'}: used the first of 3 frames",
                   f"note: {tmp_path / 'deep.png'}: 16-bit RGBA PNG reduced to 8 bits per channel (value >> 8); "
                   "RGBA converted to RGB (alpha channel dropped)"]
    assert len(list((tmp_path / "out").glob("*_ela.png"))) == 2


def test_a_32_bit_integer_tiff_holding_8_bit_values_is_read_as_they_are(tmp_path):
    """Shifting 0..255 right by 8 bits gave a black picture and a wrong score; 16-bit data is still shifted."""
    from pmsp_utils.ela import ela
    from pmsp_utils.images import load_image

    ramp = _grey_ramp()
    Image.fromarray(ramp.astype(np.int32)).save(tmp_path / "int32.tif")
    Image.fromarray(ramp).save(tmp_path / "eight.tif")
    loaded = load_image(tmp_path / "int32.tif")
    assert np.array_equal(np.asarray(loaded.image), ramp) and "kept as 8 bits" in loaded.conversions[0]
    assert np.array_equal(ela(tmp_path / "int32.tif"), ela(tmp_path / "eight.tif"))
    Image.fromarray(ramp.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    assert np.array_equal(np.asarray(load_image(tmp_path / "sixteen.png").image), ramp)
    Image.fromarray(ramp.astype(np.int32) * 257).save(tmp_path / "int32_wide.tif")
    assert np.array_equal(np.asarray(load_image(tmp_path / "int32_wide.tif").image), ramp)


def test_16_bit_files_and_arrays_holding_8_bit_values_are_read_as_they_are(tmp_path):
    """The same for 16-bit data: a 16-bit TIFF or PNG, or a uint16 array, holding 0..255 came out black (value >> 8)
    with a score of the black picture. It is read as it is, and said so; 16-bit data using its range is still shifted."""
    from pmsp_utils.ela import ela, ela_result
    from pmsp_utils.images import load_image

    ramp = _grey_ramp()
    Image.fromarray(ramp).save(tmp_path / "eight.tif")
    for name in ("g16.tif", "g16.png"):
        Image.fromarray(ramp.astype(np.uint16)).save(tmp_path / name)
        loaded = load_image(tmp_path / name)
        assert loaded.image.mode.startswith("L") or loaded.image.mode == "L", loaded.image.mode
        assert np.array_equal(np.asarray(loaded.image), ramp), name
        assert "holding 0..255: kept as 8 bits" in loaded.conversions[0], loaded.conversions
        assert np.array_equal(ela(tmp_path / name), ela(tmp_path / "eight.tif")), name
    assert "uint16 array holding 0..255: kept as 8 bits" in ela_result(ramp.astype(np.uint16)).conversions
    Image.fromarray(ramp.astype(np.uint16) * 257).save(tmp_path / "wide16.tif")
    assert np.array_equal(np.asarray(load_image(tmp_path / "wide16.tif").image), ramp)


def test_a_tiff_with_a_broken_directory_is_named_as_a_tiff_without_library_noise(tmp_path, capsys):
    import struct

    Image.fromarray(_grey_ramp()).save(tmp_path / "ok.tif")
    data = bytearray((tmp_path / "ok.tif").read_bytes())
    data[4:8] = struct.pack("<I", 10**7)  # the first image directory points past the end of the file
    (tmp_path / "broken.tif").write_bytes(bytes(data))
    assert main(["ela", str(tmp_path / "broken.tif"), str(tmp_path / "ok.tif"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.tif: a TIFF whose structure is damaged" in err[0], err
    assert (tmp_path / "out" / "ok_tif_ela.png").exists()


def test_pmsp_ela_says_when_a_folder_mixes_maps_of_two_settings(two_images, tmp_path, capsys):
    """The fourth hostile pass: maps of --quality 50 written beside an earlier run's --quality 90 maps, without a word."""
    out = tmp_path / "maps"
    assert main(["ela", str(two_images / "img1.jpg"), str(two_images / "img[1].jpg"), "--out", str(out)]) == 0
    assert main(["ela", str(two_images / "img1.jpg"), "--out", str(out)]) == 0  # the same settings: nothing to say
    assert "note:" not in capsys.readouterr().err
    assert main(["ela", str(two_images / "img1.jpg"), "--out", str(out), "--quality", "50", "--display", "raw"]) == 0
    err = capsys.readouterr().err
    assert "also holds 1 map(s) made with other settings" in err and "quality 90" in err and "these: quality 50, display raw" in err
    assert main(["ela", str(two_images / "img[1].jpg"), "--out", str(out), "--quality", "50", "--display", "raw"]) == 0
    assert "note:" not in capsys.readouterr().err  # every map there now has these settings


def test_pmsp_ela_on_a_full_disk_names_the_output_folder_not_the_input(two_images, tmp_path, monkeypatch, capsys):
    import errno

    import pmsp_utils.safe_write as safe_write

    def full(*arguments, **options):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safe_write, "save_png_atomic", full)
    out = tmp_path / "full"
    assert main(["ela", str(two_images / "img1.jpg"), str(two_images / "img[1].jpg"), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --out {out}: the disk is full after 0 map(s)"), err


def test_a_dangling_symlink_as_out_is_named_as_one(two_images, tmp_path, capsys):
    link = tmp_path / "results"
    link.symlink_to(tmp_path / "gone")
    assert main(["ela", str(two_images / "img1.jpg"), "--out", str(link)]) != 0
    err = capsys.readouterr().err.strip()
    assert f"--out {link}: a symbolic link to {tmp_path / 'gone'}, which does not exist" in err and "File exists" not in err


def test_outputs_of_very_long_names_stay_within_what_a_file_system_takes(tmp_path, capsys):
    """A 250-byte input name made a 262-byte output name ('File name too long', blamed on the input)."""
    from pmsp_utils.localize_outputs import NAME_BYTES

    folder = tmp_path / "in"
    folder.mkdir()
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8))
    names = ["é" * 120 + "a.png", "é" * 120 + "b.png"]  # 245 bytes each, alike for their first 240
    for name in names:
        picture.save(folder / name)
    assert main(["ela", str(folder), "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    made = sorted(path.name for path in (tmp_path / "out").iterdir() if not path.name.startswith("."))
    assert len(made) == 2 and len(set(made)) == 2 and all(len(name.encode()) <= NAME_BYTES for name in made)


def test_libtiffs_own_lines_never_reach_the_terminal_raw(tmp_path):
    """libtiff writes its complaints ("TIFFFetchNormalTag: Incompatible type for ...") to file descriptor 2 from C,
    where no Python warning filter sees them: in a real process, every line on stderr is pmsp's own, one per file,
    with libtiff's words kept in the error; the sound TIFF beside them is still analysed."""
    import struct
    import subprocess
    import sys

    Image.fromarray(np.dstack([_grey_ramp()] * 3)).save(tmp_path / "ok.tif", compression="tiff_lzw")
    data = (tmp_path / "ok.tif").read_bytes()
    directory = struct.unpack("<I", data[4:8])[0]
    for k in range(struct.unpack("<H", data[directory : directory + 2])[0]):
        entry = directory + 2 + 12 * k
        tag = struct.unpack("<H", data[entry : entry + 2])[0]
        if tag in (273, 278):  # StripOffsets, RowsPerStrip given a type libtiff cannot take (DOUBLE)
            broken = bytearray(data)
            broken[entry + 2 : entry + 4] = struct.pack("<H", 12)
            (tmp_path / f"tag{tag}.tif").write_bytes(bytes(broken))
    run = subprocess.run([sys.executable, "-m", "pmsp_utils.cli", "ela", str(tmp_path), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 2 and all(line.startswith("error: ") for line in lines), lines
    assert all("libtiff said: TIFFFetch" in line and "Incompatible type" in line for line in lines), lines
    assert (tmp_path / "out" / "ok_tif_ela.png").exists()


def test_weights_that_load_only_in_part_are_one_line_without_keras_warnings(two_images, tmp_path, capsys):
    """A run folder whose config.json no longer describes its weights (decoder "f3" trained, "none" claimed): Keras
    printed a UserWarning ("Skipping nested container ...") and a nine-line error; now one line names the file. A load
    that Keras only warns about (layers left freshly initialised) is an error too."""
    import json
    import warnings

    pytest.importorskip("keras")
    from pmsp_utils.model_settings import ModelSettings
    from pmsp_utils.models import LoadError, load_weights_strictly
    from pmsp_utils.network import build_pmsp

    settings = ModelSettings(input_size=96, streams="rgb", output_stride=16, decoder="f3", policy="pad")
    run = tmp_path / "run"
    run.mkdir()
    build_pmsp(**settings.architecture(), verbose=False).save_weights(run / "best.weights.h5")
    (run / "config.json").write_text(json.dumps({**settings.to_dict(), "decoder": "none"}))
    assert main(["localize", str(two_images / "img1.jpg"), "--weights", str(run), "--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {run / 'best.weights.h5'}: cannot be loaded") and "head_logits" in err[0], err

    class WarnsOnly:  # what Keras does for a group it cannot match: warn, and keep the fresh weights
        def load_weights(self, path):
            warnings.warn("Skipping nested container at 'x': no matching group found in the saved file. Affected layers "
                          "will retain their freshly-initialized weights.", UserWarning)

    with pytest.raises(LoadError, match="only part of the network was loaded: Skipping nested container"):
        load_weights_strictly(WarnsOnly(), run / "best.weights.h5")


def test_a_keras_file_whose_member_inflates_past_any_models_is_refused_unread(tmp_path, monkeypatch, capsys):
    """A 3 MB .keras whose settings member inflated to 3 GiB took 7 GB of memory: the members' declared sizes are
    checked before Keras or the settings reader inflate anything (zip never returns more than a member declares)."""
    import zipfile

    from pmsp_utils import model_settings

    monkeypatch.setattr(model_settings, "KERAS_MEMBER_LIMIT", 1 << 20)
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr(model_settings.SETTINGS_MEMBER, b" " * (2 << 20))  # 2 MB of spaces, a few kB compressed
    assert bomb.stat().st_size < 50_000
    with pytest.raises(ValueError, match=r"bomb\.keras: its member pmsp_settings\.json inflates to 2,097,152 bytes, more than the 1,048,576"):
        model_settings.read_keras_settings(bomb)
    assert main(["localize", str(tmp_path / "none.jpg"), "--weights", str(bomb), "--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its member pmsp_settings.json inflates to" in err[0], err


def test_a_jpeg_header_claiming_far_more_pixels_than_its_bytes_hold_is_refused_before_decoding(tmp_path, capsys):
    """A 64x64 JPEG whose frame header was patched to 13000x13000 was decoded into 5.6 GB of grey (14 s), exit 0; it is
    refused by its size against its bytes, in one line, and the batch goes on. A flat 20 MP photo still passes the rule."""
    import io

    from pmsp_utils.images import JPEG_PIXELS_PER_BYTE

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.find(b"\xff\xc0")
    data[frame + 5 : frame + 9] = (13000).to_bytes(2, "big") * 2
    (tmp_path / "claims.jpg").write_bytes(bytes(data))
    Image.fromarray(_grey_ramp()).save(tmp_path / "ok.jpg")
    assert main(["ela", str(tmp_path / "claims.jpg"), str(tmp_path / "ok.jpg"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "claims.jpg: its header claims 13000x13000 pixels, but the file holds only" in err[0], err
    assert (tmp_path / "out" / "ok_jpg_ela.png").exists()
    flat = io.BytesIO()
    Image.new("RGB", (5000, 4000), (120, 130, 140)).save(flat, "JPEG", quality=75)
    assert len(flat.getvalue()) * JPEG_PIXELS_PER_BYTE > 5000 * 4000 * 10  # a flat photo is ten times denser than refused


@pytest.mark.parametrize("wiped", [1.0, 0.3])
def test_a_jpeg_whose_scan_data_was_zeroed_is_refused_but_flat_jpegs_are_not(tmp_path, wiped):
    """Zero bytes in place of a JPEG's scan data decode silently into one 8x8 block repeated (a texture a localizer would
    mark), and the file was analysed with exit 0: it is refused in one line, however much of the scan was wiped. A flat
    image saved with optimised tables, whose scan is all zero bytes too, still loads."""
    import io

    from PIL import Image

    from pmsp_utils.images import ImageReadError, load_image

    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(128, 40, (256, 384, 3)) + np.linspace(0, 60, 384)[None, :, None], 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=90)
    data = bytearray(buffer.getvalue())
    load_image(bytes(data), name="whole.jpg")  # the photo itself loads
    scan = data.find(b"\xff\xda") + 2 + int.from_bytes(data[data.find(b"\xff\xda") + 2 : data.find(b"\xff\xda") + 4], "big")
    first = len(data) - 2 - int((len(data) - 2 - scan) * wiped)
    data[first:-2] = bytes(len(data) - 2 - first)
    (tmp_path / "wiped.jpg").write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"wiped\.jpg: [\d,]+ zero bytes in a row .* damaged \(zero-filled\)"):
        load_image(tmp_path / "wiped.jpg")
    assert main(["ela", str(tmp_path / "wiped.jpg"), "--out", str(tmp_path / "out")]) != 0
    flat = io.BytesIO()
    Image.fromarray(np.full((256, 384, 3), 200, np.uint8)).save(flat, "JPEG", quality=90, optimize=True)
    assert flat.getvalue().count(0) > 200
    assert load_image(flat.getvalue(), name="flat.jpg").image.size == (384, 256)


def test_the_pixel_limit_is_the_number_set_and_lifting_it_does_not_reserve_gigabytes(tmp_path, monkeypatch):
    """PMSP_MAX_IMAGE_PIXELS=60000 let a 98,304-pixel image through (Pillow only warns up to twice its limit) and at
    1000 the refusal quoted 2,000; with the limit lifted (0) every read reserved 16 GB up front (read(limit + 1)), so
    under a memory cap even small images failed, and a MemoryError printed an empty message."""
    import subprocess
    import sys

    from PIL import Image

    from pmsp_utils import images
    from pmsp_utils.cli import _with_file

    path = tmp_path / "photo.jpg"
    Image.fromarray(np.full((256, 384, 3), 90, np.uint8)).save(path, quality=90)
    before = Image.MAX_IMAGE_PIXELS
    try:
        for limit, shown in ((60_000, "60,000"), (1_000, "1,000")):
            images.set_max_image_pixels(limit)
            with pytest.raises(images.ImageTooLargeError, match=rf"photo\.jpg: .*98,304 pixels, over the limit of {shown}\)"):
                images.load_image(path)
        images.set_max_image_pixels(98_304)
        assert images.load_image(path).image.size == (384, 256)  # the limit itself is allowed
    finally:
        Image.MAX_IMAGE_PIXELS = before
    code = ("import sys; from pmsp_utils import images; images.set_max_image_pixels(0); "
            "print(images.load_image(sys.argv[1]).image.size)")
    done = subprocess.run(["bash", "-c", f'ulimit -v 3000000; exec "{sys.executable}" -c "{code}" "{path}"'],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "(384, 256)" in done.stdout, done.stderr[-500:]
    assert "out of memory while reading or analysing it" in _with_file(MemoryError(), path)


@pytest.mark.parametrize("when", ["the lock", "the settings"])
def test_a_run_on_a_disk_already_full_names_out_and_leaves_no_lock(tmp_path, monkeypatch, when):
    """`pmsp localize --out small/new` on a disk that was already full said only "[Errno 28] No space left on device"
    and left an empty .pmsp.lock behind. Setting up the folder now names --out, and nothing of the run is left."""
    import errno
    import os

    import pmsp_utils.localize_outputs as outputs

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if when == "the lock":
        real = os.fdopen
        monkeypatch.setattr(outputs.os, "fdopen", lambda handle, *args, **kwargs: (os.close(handle), full())[1])
    else:
        monkeypatch.setattr(outputs, "write_text_atomic", full)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(outputs.OutputFolderError, match=rf"--out {out}: the disk is full; nothing was written"):
        with outputs.RunFolder(out, ["image"], settings={"model": "m"}):
            pass
    if when == "the lock":
        monkeypatch.setattr(outputs.os, "fdopen", real)
    assert not (out / ".pmsp.lock").exists() and [path.name for path in out.iterdir()] == []


def test_a_jpeg_cut_inside_its_header_is_called_cut_not_corrupt(tmp_path, photo):
    """A JPEG cut short before its header ended was reported as "the image header is corrupt (OSError: Truncated File
    Read)": the header was whole as far as it went; the file was cut."""
    from conftest import encode

    from pmsp_utils.images import ImageReadError, load_image

    whole = encode(photo, "JPEG", quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[:120])  # inside the quantisation tables
    with pytest.raises(ImageReadError) as caught:
        load_image(cut)
    message = str(caught.value)
    assert message.startswith(f"{cut}: the file is truncated, cut short inside its header (") and "Re-download or re-export it" in message
