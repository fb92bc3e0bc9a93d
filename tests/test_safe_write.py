"""One safe-write helper (pmsp_utils.safe_write) that every writer uses: files appear whole or not at all."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pytest

from pmsp_utils.safe_write import save_atomic, save_npz_atomic, write_csv, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "history.csv"
    write_text_atomic(path, "old\n")

    def broken(temporary):
        temporary.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        save_atomic(path, broken)
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_written_files_have_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = write_text_atomic(tmp_path / "state.json", "{}")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # mkstemp alone would make it 0600


def test_csv_tables_from_dictionaries_and_rows(tmp_path):
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "val_f1": 0.1}]
    write_csv(tmp_path / "a.csv", rows)
    with open(tmp_path / "a.csv", newline="") as stream:
        assert list(csv.DictReader(stream)) == [{"epoch": "1", "loss": "0.5", "val_f1": ""}, {"epoch": "2", "loss": "0.25", "val_f1": "0.1"}]
    write_csv(tmp_path / "b.csv", [["a,b.jpg", 0.5]], ["image", "score"])
    assert (tmp_path / "b.csv").read_text().splitlines() == ["image,score", '"a,b.jpg",0.5']
    save_npz_atomic(tmp_path / "c.npz", {"x": np.arange(3)})
    assert np.load(tmp_path / "c.npz")["x"].tolist() == [0, 1, 2]


def _code_lines_matching(pattern: re.Pattern, folders: tuple[str, ...], allowed: set[tuple[str, str]]) -> list[str]:
    """'file: line' of each code line (comments aside) under ``folders`` that ``pattern`` finds, safe_write.py itself and
    the ``allowed`` (file, text) pairs left out."""
    root = Path(__file__).resolve().parents[1]
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            name = str(path.relative_to(root))
            if name == "pmsp_utils/safe_write.py":
                continue
            for line in path.read_text().splitlines():
                code = line.split("#")[0]
                if pattern.search(code) and not any(name == file and text in code for file, text in allowed):
                    found.append(f"{name}: {line.strip()[:90]}")
    return found


def test_no_writer_renames_its_own_temporary_files():
    """mkstemp, os.replace and .npz saving live in pmsp_utils.safe_write. Left elsewhere: two renames that are not writes
    (a finished table renamed to its final name, a downloaded dataset's folder moved into place) and the GPU machine's
    weight splitter, which runs there without the package."""
    allowed = {("pmsp_utils/localize_outputs.py", "os.replace(self.out / self.PARTIAL"), ("pmsp_utils/data/download.py", "os.replace(layout"),
               ("benchmarks/gpu_weights.py", "np.savez_compressed(prefix")}
    pattern = re.compile(r"tempfile\.mkstemp\(|os\.replace\(|np\.savez(_compressed)?\(")
    found = _code_lines_matching(pattern, ("pmsp_utils", "scripts", "benchmarks"), allowed)
    assert not found, f"hand-written safe writes (use pmsp_utils.safe_write): {found}"


def test_every_writer_of_a_file_goes_through_safe_write():
    """A plain write_text/write_bytes/open(..., "w") leaves a half-written file under its final name when the process
    stops or the disk fills; the package and the scripts write through pmsp_utils.safe_write. Left: the resumable
    download's .part file (appended to by design, renamed by nobody), the output folder's lock (a PID, created with
    O_EXCL), os.devnull, and writes into memory buffers."""
    allowed = {("pmsp_utils/data/download.py", 'with open(target, "ab" if have else "wb")'),
               ("pmsp_utils/localize_outputs.py", 'with os.fdopen(handle, "w") as stream'),
               ("pmsp_utils/runtime.py", 'with open(os.devnull, "wb")'),
               ("pmsp_utils/runtime.py", "lambda temporary: Path(temporary).write_bytes(")}  # inside save_atomic
    pattern = re.compile(r"\.write_text\(|\.write_bytes\(|\bopen\([^)]*[\"'][wax]b?\+?[\"']|os\.fdopen\([^)]*[\"'][wa]|json\.dump\(")
    found = _code_lines_matching(pattern, ("pmsp_utils", "scripts"), allowed)
    assert not found, f"writes that bypass pmsp_utils.safe_write: {found}"
    assert pattern.search('Path("x").write_text("y")') and pattern.search('open(path, "wb")') and not pattern.search('open(path, "rb")')
