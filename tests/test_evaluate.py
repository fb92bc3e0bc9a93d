"""Evaluation: record selection, tables, robustness, and the evaluate and localize commands on good and bad input."""

import csv
import json

import numpy as np
import pytest
from conftest import encode

from pmsp_utils.data.records import Record
from pmsp_utils.evaluate import evaluate, format_table, select_records, write_tables
from pmsp_utils.localize_outputs import OutputFolderError, check_output_folder, expand_inputs, tamper_score, unique_stem
from pmsp_utils.robustness import perturb, robustness_curves


def _records(tmp_path, photo, count=4):
    """Tiny forgeries on disk: a bright square pasted into a photo, with its mask."""
    records = []
    for index in range(count):
        image = photo.copy()
        mask = np.zeros(photo.shape[:2], np.uint8)
        mask[20 + index : 60 + index, 30:80] = 1
        image[mask == 1] = 250
        image_path, mask_path = tmp_path / f"im{index}.png", tmp_path / f"im{index}_gt.png"
        image_path.write_bytes(encode(image, "PNG"))
        mask_path.write_bytes(encode(mask * 255, "PNG"))
        records.append(Record("folder", f"im{index}", "splicing", image_path, mask_path))
    return records


def _brightness(image):
    """A real, simple predictor: pixel brightness (the pasted squares are bright)."""
    return np.asarray(image.to_display().convert("L"), np.float64) / 255.0


def test_evaluate_scores_methods_and_skips_bad_records(tmp_path, photo):
    records = _records(tmp_path, photo)
    broken = Record("folder", "broken", "splicing", tmp_path / "missing.png", tmp_path / "im0_gt.png")
    wrong_size = Record("folder", "wrong", "splicing", records[0].image_path, tmp_path / "small_gt.png")
    (tmp_path / "small_gt.png").write_bytes(encode(np.zeros((10, 10), np.uint8), "PNG"))
    warnings = []
    result = evaluate(records + [broken, wrong_size], {"brightness": _brightness, "constant": lambda r: np.full(photo.shape[:2], 0.3)},
                      dataset="tiny", warn=warnings.append, show_progress=False)
    assert [line.split(":")[0] for line in result.skipped] == ["broken", "wrong"]
    assert "mask is 10x10" in result.skipped[1] and len(warnings) == 2
    table = {row["method"]: row for row in result.table1()}
    assert table["brightness"]["auc_pooled"] > 0.9 and table["constant"]["auc_pooled"] == 0.5
    assert table["constant"]["f1_per_image@0.5"] == 0.0 and table["brightness"]["tampered_images"] == 4
    assert [row["protocol"] for row in result.table2()] == ["per-image", "pooled", "weighted", "pooled oracle"]


def test_tables_are_written_with_their_protocols(tmp_path, photo):
    result = evaluate(_records(tmp_path, photo, 2), {"ELA": _brightness}, dataset="casia1 (CASIA v1.0)", images="two", show_progress=False)
    written = write_tables([result], tmp_path / "out")
    assert {path.name for path in written} == {"table1.csv", "table1.json", "table2.csv", "table2.json", "by_kind.csv", "by_kind.json",
                                              "paper_table1.csv", "paper_table1.json", "paper_table2.csv", "paper_table2.json", "per_image.csv"}
    by_kind = json.loads((tmp_path / "out" / "by_kind.json").read_text())["rows"]
    assert [row["kind"] for row in by_kind] == ["all tampered", "splicing"] and by_kind[0]["images"] == 2
    assert 0.0 <= by_kind[0]["missed_share"] <= 1.0
    table1 = json.loads((tmp_path / "out" / "table1.json").read_text())
    assert "paper_f1" not in table1["rows"][0]  # the paper's numbers live in their own tables
    paper = json.loads((tmp_path / "out" / "paper_table1.json").read_text())["rows"]
    assert paper[0]["method"] == "ELA" and paper[0]["f1"] == 0.214 and paper[0]["dataset (as the paper labels it)"] == "CASIA v2.0"
    assert "ORACLE" in table1["protocols"]["pooled oracle"] and table1["images"] == {"casia1 (CASIA v1.0)": "two"}
    table2 = list(csv.DictReader((tmp_path / "out" / "table2.csv").open()))
    assert "paper_f1" not in table2[0] and table2[2]["protocol"] == "weighted"
    assert float(table2[2]["recall"]) == pytest.approx(float(table2[2]["accuracy"]), abs=1e-4)
    assert "f1" in format_table(result.table2()).splitlines()[0]


def test_select_records(tmp_path, photo):
    records = [Record("casia1", f"Sp_D_{index:04d}", "splicing", tmp_path / f"{index}.jpg") for index in range(100)]
    test, words = select_records(records, "test")
    assert len(test) == 5 and "test part" in words
    assert select_records(records, "test")[0] == test  # deterministic
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("".join(f"casia1/Sp_D_{index:04d}\n" for index in range(90)))
    unseen, words = select_records(records, "unseen", model_splits=tmp_path / "splits")
    assert [r.name for r in unseen] == [f"Sp_D_{index:04d}" for index in range(90, 100)] and "not in the model's" in words
    with pytest.raises(ValueError, match="needs a model with split lists"):
        select_records(records, "unseen")
    with pytest.raises(ValueError, match="split must be one of"):
        select_records(records, "holdout")


def test_unseen_matches_by_content_across_loaders(tmp_path, photo):
    """A model trained with --data folder on CASIA files, then scored with --data casia1: its own images are still left out."""
    from pmsp_utils.data.splits import Split, write_split_list

    for index in range(4):
        (tmp_path / f"Sp_D_{index}.jpg").write_bytes(encode(photo[index:], "JPEG"))
    as_folder = [Record("folder", f"Sp_D_{index}", "splicing", tmp_path / f"Sp_D_{index}.jpg") for index in range(4)]
    as_casia = [Record("casia1", f"Sp_D_{index}", "splicing", tmp_path / f"Sp_D_{index}.jpg") for index in range(4)]
    (tmp_path / "splits").mkdir()
    write_split_list(tmp_path / "splits" / "train.txt", as_folder[:3])
    unseen, words = select_records(as_casia, "unseen", model_splits=tmp_path / "splits")
    assert [r.name for r in unseen] == ["Sp_D_3"] and "matched by file content" in words and "3 of the 4 images" in words
    split = Split(tuple(as_folder[:2]), tuple(as_folder[2:3]), tuple(as_folder[3:]), "test")
    split.to_lists(tmp_path / "lists")
    again = Split.from_lists(tmp_path / "lists", as_casia)  # other names (dataset), same files
    assert [r.dataset for r in again.train] == ["casia1", "casia1"]
    with pytest.raises(ValueError, match=r"train.txt: 2 of 2 listed images are not in the dataset, e.g. folder/Sp_D_0, folder/Sp_D_1"):
        Split.from_lists(tmp_path / "lists", as_casia[2:])


def test_perturbations(photo):
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[10:50, 10:50] = 1
    data, same_mask = perturb(photo, mask, "jpeg", 50)
    assert data[:2] == b"\xff\xd8" and same_mask is mask
    small, small_mask = perturb(photo, mask, "resize", 0.5)
    assert small.shape[:2] == small_mask.shape == (round(photo.shape[0] / 2), round(photo.shape[1] / 2))
    assert set(np.unique(small_mask)) == {0, 1}
    blurred, _ = perturb(photo, mask, "blur", 2.0)
    assert np.abs(np.diff(blurred.astype(float), axis=1)).mean() < np.abs(np.diff(photo.astype(float), axis=1)).mean()
    noisy, _ = perturb(photo, mask, "noise", 5.0, seed=1)
    assert 3.0 < (noisy.astype(float) - photo).std() < 7.0
    np.testing.assert_array_equal(noisy, perturb(photo, mask, "noise", 5.0, seed=1)[0])
    with pytest.raises(ValueError, match="perturbation must be one of"):
        perturb(photo, mask, "rotate", 1)
    with pytest.raises(ValueError, match="JPEG quality"):
        perturb(photo, mask, "jpeg", 0)


def test_robustness_curves_fall_under_blur(tmp_path, photo):
    from pmsp_utils.baselines import heatmap

    records = _records(tmp_path, photo, 2)
    points = robustness_curves(records, lambda image: heatmap("noi1", image), levels={"blur": (1.0, 3.0), "jpeg": (90,)},
                               show_progress=False)
    assert [(p.perturbation, p.level) for p in points] == [("blur", "none"), ("blur", "1"), ("blur", "3"), ("jpeg", "none"), ("jpeg", "90")]
    assert all(p.images == 2 and 0 <= p.pooled_auc <= 1 for p in points)
    with pytest.raises(ValueError, match="unknown perturbations"):
        robustness_curves(records, lambda image: image, levels={"crop": (1,)})


def test_localizer_helpers(tmp_path, photo):
    (tmp_path / "a.jpg").write_bytes(encode(photo, "JPEG"))
    (tmp_path / "b.png").write_bytes(encode(photo, "PNG"))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    files, problems = expand_inputs([str(tmp_path), str(tmp_path / "*.jpg"), str(tmp_path / "empty"), str(tmp_path / "*.gif")])
    assert [f.name for f in files] == ["a.jpg", "b.png"]  # the glob repeats a.jpg: listed once
    assert len(problems) == 2 and "no image files" in problems[0] and "matches no file" in problems[1]
    used = set()
    assert [unique_stem(tmp_path / name, used) for name in ("x/a.jpg", "y/a.png", "a.tif", "z/a.jpg")] == ["a_jpg", "a_png", "a_tif", "a_jpg_2"]
    probability = np.zeros((100, 100), np.float32)
    probability[0, :5] = [1.0, 0.8, 0.6, 0.4, 0.2]
    assert tamper_score(probability) == pytest.approx(3.0 / 100)  # the top 1% is 100 pixels, five of them non-zero
    with pytest.raises(OutputFolderError, match="not a folder"):
        check_output_folder(tmp_path / "a.jpg")


def test_a_dead_link_in_a_folder_and_a_pattern_of_folders_are_named(tmp_path, photo):
    """A link to nowhere named like an image was skipped without a word inside a folder (named directly it was an
    error); a pattern matching only folders said it matched nothing."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ok.jpg").write_bytes(encode(photo, "JPEG"))
    (tmp_path / "in" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    files, problems = expand_inputs([str(tmp_path / "in")])
    assert [f.name for f in files] == ["ok.jpg"]
    assert len(problems) == 1 and "gone.jpg: a symbolic link that leads nowhere" in problems[0]
    (tmp_path / "g" / "s1").mkdir(parents=True)
    files, problems = expand_inputs([str(tmp_path / "g" / "*")])
    assert files == [] and "the pattern matches only folders" in problems[0] and "DIR/*/*.jpg" in problems[0]


def test_unwritable_output_folder_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputFolderError, match="cannot write there"):
        check_output_folder(tmp_path / "file" / "out")  # cannot be created

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("pmsp_utils.localize_outputs.tempfile.NamedTemporaryFile", read_only)  # a read-only mount
    with pytest.raises(OutputFolderError, match="cannot write there .Permission denied"):
        check_output_folder(tmp_path / "out")


def test_the_papers_tables_stand_apart_with_sources_and_protocols():
    from pmsp_utils.evaluate import paper_tables

    paper = paper_tables()
    assert [(r["method"], r["f1"], r["auc"]) for r in paper["table1"]] == [  # Table I, every row as printed, in order
        ("ELA", 0.214, 0.613), ("NOI1", 0.263, 0.612), ("CFA1", 0.207, 0.522), ("RGB-N", 0.408, 0.795), ("LSTM-EnDec-Skip", 0.432, 0.814),
        ("Constrained R-CNN", 0.475, 0.789), ("HybridArch", 0.525, None), ("PMSP (Meng et al.)", 0.543, 0.795)]
    cells = [[r[key] for key in ("dataset", "accuracy", "precision", "recall", "f1", "auc")] for r in paper["table2"]]
    assert cells == [["CASIA v1.0", 0.8927, 0.9053, 0.8927, 0.8813, 0.5922], ["CASIA v2.0", 0.9527, 0.6139, 0.5646, 0.5428, 0.7953],
                     ["IFS-TC", 0.9083, 0.8537, 0.9083, 0.8692, 0.5125]]  # Table II, cell by cell
    rows = {row["dataset"]: row for row in paper["table2"]}
    assert "class-weighted" in rows["CASIA v1.0"]["protocol"] and "class-weighted" in rows["IFS-TC"]["protocol"]
    assert "not class-weighted" in rows["CASIA v2.0"]["protocol"]
    assert round(rows["CASIA v2.0"]["f1"], 3) == next(r["f1"] for r in paper["table1"] if r["method"] == "PMSP (Meng et al.)")
    assert all(row["source"].startswith("Meng et al.") for row in paper["table1"] + paper["table2"])
    assert set(paper) == {"table1", "table2"}  # nothing left untranscribed


def test_miss_summary_by_hand():
    from types import SimpleNamespace

    from pmsp_utils.evaluate import miss_summary

    summary = miss_summary([SimpleNamespace(f1=value) for value in (0.05, 0.5, 0.9, 0.0)])
    assert summary["images"] == 4 and summary["missed_share"] == 0.5
    assert summary["f1_found"] == pytest.approx(0.7) and summary["f1_per_image@0.5"] == pytest.approx(1.45 / 4)


def test_a_disk_that_fills_while_the_tables_are_written_names_out_and_the_rerun_replaces_them(tmp_path, photo, monkeypatch):
    """`pmsp evaluate` onto a full disk said only "[Errno 28] No space left on device", and left 4 of its 11 tables
    outside the ledger, so the rerun after freeing space refused "table1.csv: already there, and pmsp did not write it".
    Each table now enters the ledger once whole, the error names --out, and the rerun goes through."""
    import errno

    import pmsp_utils.evaluate as evaluation_module

    result = evaluate(_records(tmp_path, photo, 2), {"ELA": _brightness}, dataset="tiny", show_progress=False)
    real, calls = evaluation_module.write_text_atomic, []

    def filling(path, text):
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, text)

    monkeypatch.setattr(evaluation_module, "write_text_atomic", filling)
    out = tmp_path / "out"
    with pytest.raises(OutputFolderError, match=rf"--out {out}: the disk is full after \d+ of the 11 tables; free some space"):
        write_tables([result], out)
    left = sorted(path.name for path in out.iterdir() if not path.name.startswith("."))
    assert left, "some tables were written before the disk filled"
    assert set(json.loads((out / ".pmsp-written.json").read_text())) >= set(left)
    monkeypatch.setattr(evaluation_module, "write_text_atomic", real)
    assert len(write_tables([result], out)) == 11


def test_an_unwritable_cache_is_named_with_the_variable_that_moves_it(tmp_path, monkeypatch):
    """A read-only HOME without PMSP_CACHE_DIR: `pmsp evaluate --data synthetic` said only "[Errno 30] Read-only file
    system: '/home/me/.cache'"; `pmsp prepare` already named the variable. Every command now does."""
    import errno

    from pmsp_utils.cli import _explained

    monkeypatch.delenv("PMSP_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    error = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "home" / ".cache"))
    said = _explained(error)
    assert said.startswith(f"the cache folder {tmp_path / 'home' / '.cache' / 'pmsp'} cannot be written (Read-only file system")
    assert said.endswith("set PMSP_CACHE_DIR to a writable folder.")
    monkeypatch.setenv("PMSP_CACHE_DIR", str(tmp_path / "cache"))
    full = _explained(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "cache" / "synthetic" / "a.png")))
    assert full.startswith(f"PMSP_CACHE_DIR: {tmp_path / 'cache'} cannot be written (the disk is full") and "free some space" in full
    elsewhere = OSError(errno.EACCES, "Permission denied", str(tmp_path / "mine.txt"))
    assert _explained(elsewhere) == str(elsewhere)  # not the cache's: said as it is
