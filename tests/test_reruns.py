"""Reruns of pmsp localize into one output folder: what the table keeps, what it drops, and what is never lost
(issue 38; kept apart from test_commands.py so that the test processes share the work evenly)."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import encode

def test_a_rerun_keeps_the_rows_and_picture_names_of_images_it_does_not_redo(tmp_path, photo):
    """Run 1 localized d1/x.jpg and d2/x.jpg (x_jpg_*, x_jpg_2_*); run 2 only d2/x.jpg: its table lost d1's row while
    d1's pictures stayed, d2's pictures moved to x_jpg_* (over d1's), and the ledger named a scores.incomplete.csv that
    was gone. Now an image named again keeps its pictures' names, the others' rows stay, the ledger lists what is there."""
    import json

    from pmsp_utils.cli import main

    for folder in ("d1", "d2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.jpg").write_bytes(encode(photo, "JPEG", quality=85 if folder == "d1" else 70))
    out = tmp_path / "out"
    first, second = str(tmp_path / "d1" / "x.jpg"), str(tmp_path / "d2" / "x.jpg")
    assert main(["localize", first, second, "--out", str(out), "--no-copy-move"]) == 0
    before = {row["image"]: row for row in csv.DictReader((out / "scores.csv").open())}
    d1_picture = (out / before[first]["probability_png"]).read_bytes()
    assert main(["localize", second, "--out", str(out), "--no-copy-move"]) == 0
    after = {row["image"]: row for row in csv.DictReader((out / "scores.csv").open())}
    assert set(after) == {first, second}
    assert after[second]["probability_png"] == before[second]["probability_png"] == "x_jpg_2_probability.png"
    assert (out / after[first]["probability_png"]).read_bytes() == d1_picture  # d1's pictures are still d1's
    ledger = json.loads((out / ".pmsp-written.json").read_text())
    assert all((out / name).exists() for name in ledger), ledger

def test_reruns_never_lose_or_misreport_earlier_rows(tmp_path, photo, capsys, monkeypatch):
    """The second hostile pass on reruns: a refused run removed the old table before refusing; a rerun after Ctrl-C
    lost the stopped run's rows; an image that failed kept its earlier row (now a user's picture); the same file named
    by another path got a second set of pictures; a row stayed with one of its pictures deleted; a damaged ledger was
    blamed on scores.csv; a name that is not UTF-8 lost its row."""
    import os

    import pmsp_utils.localize_outputs as outputs
    from pmsp_utils import runtime
    from pmsp_utils.cli import main

    loaded = runtime.load_for_inference("synthetic")  # loaded once: the runs below are about the table, not the model
    monkeypatch.setattr(runtime, "load_for_inference", lambda *args, **options: loaded)

    folder = tmp_path / "in"
    folder.mkdir()
    names = ["a.jpg", "b.jpg", os.fsdecode(b"y\xe9z.jpg")]
    for index, name in enumerate(names):
        (folder / name).write_bytes(encode(photo, "JPEG", quality=70 + 10 * index))
    out = tmp_path / "out"
    run = lambda *paths: main(["localize", *map(str, paths), "--out", str(out), "--weights", "synthetic", "--no-copy-move"])  # noqa: E731
    table = lambda: {Path(row["image"]).name for row in csv.DictReader((out / "scores.csv").open(encoding="utf-8"))}  # noqa: E731
    assert run(folder) == 0 and len(table()) == 3
    assert run(folder / "a.jpg") == 0 and table() == {"a.jpg", "b.jpg", "y\\udce9z.jpg"}  # the odd name's row is kept
    monkeypatch.chdir(tmp_path)
    assert run(Path("in") / "a.jpg") == 0 and not list(out.glob("a_jpg_2_*"))  # the same file by another path: same pictures
    # a refused run removes nothing
    (out / ".pmsp-run.json").write_text((out / ".pmsp-run.json").read_text() + " ")
    assert run(folder / "a.jpg") == 2 and (out / "scores.csv").is_file()
    capsys.readouterr()
    (out / ".pmsp-run.json").unlink()
    assert run(folder) == 0  # without the settings file no earlier rows are taken, but every image is redone
    # a stopped run's rows serve the next run
    real, calls = outputs.write_outputs, []

    def stopped(*args, **kwargs):  # Ctrl-C while b is written: a is done, the odd name not reached
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs, "write_outputs", stopped)
    assert run(folder) == 130 and not (out / "scores.csv").exists()
    capsys.readouterr()
    monkeypatch.setattr(outputs, "write_outputs", real)
    assert run(folder / "b.jpg") == 0 and len(table()) == 3
    # an image that fails this time loses its earlier row; a row whose picture was deleted goes too, and with it the
    # pictures pmsp wrote for it (none stays unlisted), while a changed one is left alone; a note names them
    (out / "a_jpg_probability.png").write_bytes(b"the user's own file")
    (out / "b_jpg_mask.png").unlink()
    (out / "b_jpg_overlay.jpg").write_bytes(b"edited by the user")
    assert run(folder / "a.jpg") == 1
    assert table() == {"y\\udce9z.jpg"}
    assert not (out / "b_jpg_probability.png").exists() and (out / "b_jpg_overlay.jpg").read_bytes() == b"edited by the user"
    err = capsys.readouterr().err
    assert err.count("error: ") == 1 and err.count("note: ") == 1
    assert "b_jpg_mask.png is no longer in" in err and "b_jpg_probability.png were removed with it" in err
    # a damaged ledger is named
    (out / ".pmsp-written.json").write_text("{")
    assert run(folder / "b.jpg") == 2
    assert ".pmsp-written.json: pmsp's record of what it wrote there is damaged" in capsys.readouterr().err


def test_relative_names_an_interrupted_image_and_other_settings_leave_no_picture_unaccounted(tmp_path, photo, capsys, monkeypatch):
    """The third hostile pass: a rerun from another working folder read the earlier run's relative names against its own,
    so one image got two rows and two sets of pictures; the image being worked on when a rerun was stopped lost its row
    while its pictures stayed, and no later run named them; an earlier run's pictures under other settings stayed
    unlisted without a word."""
    import pmsp_utils.localize_outputs as outputs
    from pmsp_utils import runtime
    from pmsp_utils.cli import main

    loaded = runtime.load_for_inference("synthetic")
    monkeypatch.setattr(runtime, "load_for_inference", lambda *args, **options: loaded)
    folder = tmp_path / "work" / "in"
    folder.mkdir(parents=True)
    for index, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
        (folder / name).write_bytes(encode(photo, "JPEG", quality=70 + 10 * index))
    out = tmp_path / "out"
    run = lambda *items: main(["localize", *map(str, items), "--out", str(out), "--weights", "synthetic", "--no-copy-move"])  # noqa: E731
    rows = lambda: list(csv.DictReader((out / "scores.csv").open(encoding="utf-8")))  # noqa: E731
    monkeypatch.chdir(tmp_path / "work")
    assert run(Path("in") / "a.jpg", Path("in") / "b.jpg", Path("in") / "c.jpg") == 0
    monkeypatch.chdir(tmp_path)
    assert run(Path("work") / "in" / "a.jpg") == 0  # the same file, named from another folder
    assert len(rows()) == 3 and not list(out.glob("a_jpg_2_*"))
    # stopped while b is worked on: b's row goes, and so do its pictures; a later run lists every picture left
    real, calls = outputs.write_outputs, []

    def stopped(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs, "write_outputs", stopped)
    assert run(folder) == 130
    monkeypatch.setattr(outputs, "write_outputs", real)
    capsys.readouterr()
    assert run(folder / "c.jpg") == 0
    listed = {row["probability_png"][: -len("_probability.png")] for row in rows()}
    assert listed == {"a_jpg", "c_jpg"} and {path.name.split("_jpg")[0] for path in out.glob("*_jpg_*")} == {"a", "c"}
    assert "note:" not in capsys.readouterr().err
    # other settings: the earlier pictures are named in one note
    assert main(["localize", str(folder / "b.jpg"), "--out", str(out), "--weights", "synthetic", "--no-copy-move", "--threshold", "0.3"]) == 0
    err = capsys.readouterr().err
    assert [row["image"] for row in rows()] == [str(folder / "b.jpg")]
    assert "note: 6 picture(s) in" in err and "earlier run's with other settings" in err


def test_an_image_named_like_an_earlier_runs_image_never_takes_its_pictures(tmp_path, photo, capsys, monkeypatch):
    """A hostile pass: `pmsp ela --out D a/img.jpg`, then `pmsp ela --out D b/img.jpg`, left b's map under a's name
    (a's was gone); `pmsp localize` did the same when the second run had other settings (--threshold 0.3), since only
    a run with the same settings read the earlier table. The ledger now records each picture's image, whatever the
    settings: another image named alike gets _2, and the same image, run again, gets its own name back."""
    import json

    from pmsp_utils import runtime
    from pmsp_utils.cli import main

    loaded = runtime.load_for_inference("synthetic")
    monkeypatch.setattr(runtime, "load_for_inference", lambda *args, **options: loaded)
    for folder, quality in (("a", 90), ("b", 60)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "img.jpg").write_bytes(encode(photo if folder == "a" else photo[:, ::-1], "JPEG", quality=quality))
    a, b = tmp_path / "a" / "img.jpg", tmp_path / "b" / "img.jpg"

    ela_out = tmp_path / "ela"
    assert main(["ela", str(a), "--out", str(ela_out)]) == 0
    a_map = (ela_out / "img_jpg_ela.png").read_bytes()
    assert main(["ela", str(b), "--out", str(ela_out)]) == 0
    assert (ela_out / "img_jpg_ela.png").read_bytes() == a_map and (ela_out / "img_jpg_2_ela.png").exists()
    assert main(["ela", str(b), str(a), "--out", str(ela_out)]) == 0  # both again, in the other order: each its own name
    assert (ela_out / "img_jpg_ela.png").read_bytes() == a_map and not list(ela_out.glob("img_jpg_3*"))
    recorded = json.loads((ela_out / ".pmsp-written.json").read_text())
    assert recorded["img_jpg_ela.png"]["source"] == str(a.resolve()) and recorded["img_jpg_2_ela.png"]["source"] == str(b.resolve())

    out = tmp_path / "loc"
    assert main(["localize", str(a), "--out", str(out), "--weights", "synthetic", "--no-copy-move"]) == 0
    a_pictures = {path.name: path.read_bytes() for path in out.glob("img_jpg_*")}
    capsys.readouterr()
    assert main(["localize", str(b), "--out", str(out), "--weights", "synthetic", "--no-copy-move", "--threshold", "0.3"]) == 0
    assert {name: (out / name).read_bytes() for name in a_pictures} == a_pictures  # a's pictures are still a's
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert [(row["image"], row["probability_png"]) for row in rows] == [(str(b), "img_jpg_2_probability.png")]
    err = capsys.readouterr().err
    assert f"note: 3 picture(s) in {out} (img_jpg_mask.png ...) are an earlier run's" in err, err  # a's, not b's
    assert main(["localize", str(a), str(b), "--out", str(tmp_path / "both"), "--weights", "synthetic", "--no-copy-move"]) == 0
    shown = [line.split()[0] for line in capsys.readouterr().out.splitlines() if "img.jpg" in line]
    assert shown == ["a/img.jpg", "b/img.jpg"], shown  # the console's table tells the two apart
