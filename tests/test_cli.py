"""The pmsp command line on good and bad input."""

import numpy as np
from conftest import encode
from PIL import Image

from pmsp_utils.cli import main


def test_ela_command_writes_maps_and_reports_bad_files(photo, tmp_path, capsys):
    good = tmp_path / "good.jpg"
    good.write_bytes(encode(photo, "JPEG", quality=80))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    assert main(["ela", str(bad), str(good), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "bad.jpg: the file is empty" in captured.err
    written = np.asarray(Image.open(out / "good_ela.png"))
    assert written.shape == photo.shape and written.max() == 255


def test_bad_quality_is_a_clear_error(photo, tmp_path, capsys):
    path = tmp_path / "a.png"
    path.write_bytes(encode(photo, "PNG"))
    assert main(["ela", str(path), "--out", str(tmp_path), "--quality", "0"]) == 2
    assert "quality must be from 1 to 100" in capsys.readouterr().err


def test_notebooks_command_on_an_empty_folder(tmp_path, capsys):
    assert main(["notebooks", "--notebooks", str(tmp_path), "--out", str(tmp_path / "b")]) == 2
    assert "No notebooks matching" in capsys.readouterr().err
