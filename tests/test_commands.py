"""The pmsp localize and evaluate commands end to end, with the shipped weights (needs Keras)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import encode
from PIL import Image

keras = pytest.importorskip("keras", reason="the commands need Keras: pip install -e '.[keras]'")


def test_localize_command_writes_outputs_and_survives_bad_input(tmp_path, photo, capsys):
    from pmsp_utils.cli import main

    images = tmp_path / "in"
    images.mkdir()
    (images / "good.jpg").write_bytes(encode(photo, "JPEG", quality=85))
    (images / "grey.png").write_bytes(encode(photo.mean(axis=2).astype(np.uint8), "PNG"))
    (images / "corrupt.jpg").write_bytes(encode(photo, "JPEG")[:200])
    out = tmp_path / "out"
    assert main(["localize", str(images), str(tmp_path / "nothing*.jpg"), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "corrupt.jpg" in captured.err and "matches no file" in captured.err
    for stem in ("good_jpg", "grey_png"):
        probability = np.asarray(Image.open(out / f"{stem}_probability.png"))
        assert probability.shape == photo.shape[:2] and probability.dtype == np.uint8
        assert set(np.unique(np.asarray(Image.open(out / f"{stem}_mask.png")))) <= {0, 255}
        assert np.asarray(Image.open(out / f"{stem}_overlay.jpg")).shape == photo.shape
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert [row["image"].rsplit("/", 1)[1] for row in rows] == ["good.jpg", "grey.png"]
    assert all(0.0 <= float(row["tamper_score"]) <= 1.0 for row in rows)
    assert "wrote 2 x 3 pictures" in captured.out and "2 input(s) failed" in captured.out


def test_localize_command_fails_fast_on_bad_output_or_weights(tmp_path, photo, capsys):
    from pmsp_utils.cli import main

    image = tmp_path / "a.jpg"
    image.write_bytes(encode(photo, "JPEG"))
    assert main(["localize", str(image), "--out", str(image)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["localize", str(image), "--out", str(tmp_path / "o"), "--weights", str(tmp_path / "nope")]) == 2
    assert "not a shipped model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["localize", str(image), "--out", str(tmp_path / "o"), "--threshold", "1.5"])
    assert "must be strictly between 0 and 1" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_command_on_held_out_synthetic_images(tmp_path, cache_folder, capsys):
    from pmsp_utils.cli import main

    out = tmp_path / "eval"
    code = main(["evaluate", "--data", "synthetic", "--synthetic-count", "4", "--baselines", "ela", "noi1",
                 "--robustness", "--robustness-limit", "1", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Table I style" in captured.out and "Table II style" in captured.out and "held out" in captured.out
    import re

    scored = int(re.search(r"scoring (\d+) synthetic images", captured.out).group(1))  # of the 4 asked for: the tampered
    assert ("untouched image(s) are left out (--include-authentic scores them)" in captured.out) == (scored < 4), captured.out
    table1 = json.loads((out / "table1.json").read_text())
    from pmsp_utils.pretrained import DEFAULT_MODEL

    assert [row["method"] for row in table1["rows"]] == [f"PMSP (shipped {DEFAULT_MODEL})", "ELA", "NOI1"]  # the default model
    assert "paper_auc" not in table1["rows"][0] and table1["weights"] == f"shipped {DEFAULT_MODEL}"
    assert "The paper's numbers, as reported" in captured.out and (out / "paper_table2.csv").exists()
    curves = list(csv.DictReader((out / "robustness.csv").open()))
    assert {row["perturbation"] for row in curves} == {"jpeg", "resize", "blur", "noise"}


def test_evaluate_command_errors(tmp_path, capsys, monkeypatch):
    from pmsp_utils.cli import main

    monkeypatch.delenv("PMSP_DATA_DIR", raising=False)
    assert main(["evaluate", "--data", "casia1", "--out", str(tmp_path / "e")]) == 2
    assert "pass --root PATH" in capsys.readouterr().err
    assert main(["evaluate", "--data", "casia1", "synthetic", "--root", str(tmp_path), "--out", str(tmp_path / "e")]) == 2
    assert "--root names one dataset" in capsys.readouterr().err
    assert main(["evaluate", "--baselines", "sift", "--out", str(tmp_path / "e")]) == 2
    assert "unknown baselines" in capsys.readouterr().err




def test_scores_csv_survives_commas_and_quotes_in_file_names(tmp_path, photo):
    from pmsp_utils.cli import main

    odd = tmp_path / 'in' / 'a, "b".jpg'
    odd.parent.mkdir()
    odd.write_bytes(encode(photo, "JPEG", quality=85))
    assert main(["localize", str(odd), "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "scores.csv").open()))
    assert len(rows) == 1 and rows[0]["image"] == str(odd) and 0.0 <= float(rows[0]["tamper_score"]) <= 1.0


def test_a_file_name_that_is_not_utf8_is_written_escaped_and_the_batch_keeps_its_table(tmp_path, photo):
    """A name with a byte that is not UTF-8 (b'x\\xff.jpg', as Linux allows) ended the batch when scores.csv was written
    ("'utf-8' codec can't encode character '\\udcff'"): no table, no file named. The table is written, valid UTF-8, the
    name escaped the same way each time. A file literally named ``x\\udcff.jpg`` beside it was written into the table
    like it (the two names one cell): its backslash is doubled, and each cell reads back as its own file."""
    import os

    from pmsp_utils.cli import main
    from pmsp_utils.safe_write import unescaped

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ok.jpg").write_bytes(encode(photo, "JPEG", quality=85))
    odd = os.fsdecode(os.path.join(os.fsencode(folder), b"x\xff.jpg"))
    Path(odd).write_bytes(encode(photo, "JPEG", quality=85))
    (folder / "x\\udcff.jpg").write_bytes(encode(photo, "JPEG", quality=85))  # a backslash, then the letters udcff
    assert main(["localize", str(folder), "--out", str(tmp_path / "out"), "--no-copy-move"]) == 0
    text = (tmp_path / "out" / "scores.csv").read_bytes().decode("utf-8")  # strict: the table is valid UTF-8
    rows = list(csv.DictReader(text.splitlines()))
    assert sorted(Path(row["image"]).name for row in rows) == ["ok.jpg", "x\\\\udcff.jpg", "x\\udcff.jpg"]
    assert sorted(unescaped(row["image"]) for row in rows) == sorted(str(path) for path in folder.iterdir())



def test_a_tiny_or_squashed_image_gets_a_note(tmp_path, capsys):
    """A 1x1 image and a 2000x40 strip squashed 50:1 into the square input were scored with no word of warning."""
    from pmsp_utils.cli import main

    Image.new("RGB", (1, 1), (120, 50, 30)).save(tmp_path / "one.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 2000, 3), dtype=np.uint8)).save(tmp_path / "strip.jpg", quality=90)
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(tmp_path / "fine.jpg", quality=90)
    assert main(["localize", *(str(tmp_path / name) for name in ("one.png", "strip.jpg", "fine.jpg")), "--out", str(tmp_path / "out"),
                 "--weights", "synthetic", "--no-copy-move"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2, notes
    assert "one.png: only 1x1 pixels" in notes[0] and "strip.jpg: 2000x40 is squashed 50:1" in notes[1]
