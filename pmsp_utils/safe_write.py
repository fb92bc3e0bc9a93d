"""Writing files safely: whatever pmsp writes appears whole, or not at all.

Every writer in the package goes through these helpers (the run folder's config, state, history and checkpoints,
the shipped weights and cards, the localizer's pictures and tables, the ELA and input caches, the study's results):

* the data goes to a fresh temporary file in the destination's folder, made by ``mkstemp`` (a name no existing file
  holds, created exclusively, starting with ``.pmsp-``), and is renamed over the destination only once complete, so a
  reader, a crash or a full disk never leaves half a file under the real name;
* any failure removes the temporary file and raises;
* the file gets the permissions a plain ``open(path, "w")`` would give (``mkstemp`` alone makes it private).
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Sequence

_UMASK = os.umask(0)  # read once (the only way to read it), and put back at once
os.umask(_UMASK)
TEMPORARY_PREFIX = ".pmsp-"


def save_atomic(path: str | os.PathLike, save: Callable[[Path], Any], *, suffix: str | None = None) -> Path:
    """Call ``save(temporary_path)`` (for libraries that want a file name: Keras, NumPy, LiteRT), then rename the
    temporary file to ``path``. ``suffix``: the ending the library needs (default: ``path``'s own endings)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ending = suffix if suffix is not None else ("".join(path.suffixes) or ".tmp")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=TEMPORARY_PREFIX, suffix=ending)
    os.close(handle)
    try:
        save(Path(temporary))
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(stream)`` on a binary stream, then rename the finished file to ``path``."""

    def save(temporary: Path) -> None:
        with open(temporary, "wb") as stream:
            write(stream)

    return save_atomic(path, save, suffix=".tmp")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    return write_atomic(path, lambda stream: stream.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """``text`` as UTF-8. A file name that is not valid UTF-8 (Python holds its bytes as lone surrogates) is written as
    ``\\udcff`` escapes: the table stays valid UTF-8 and the same name is written the same way each time."""
    return write_bytes_atomic(path, text.encode("utf-8", errors="backslashreplace"))


#: A run of backslashes just before a lone surrogate, or before text that reads like an escape of one (``udcff``).
_BEFORE_ESCAPE = re.compile(r"(\\+)(?=udc[89a-fA-F][0-9a-fA-F]|[\udc80-\udcff])")
#: A run of backslashes and the ``udcXX`` after it, as :func:`escaped` writes it.
_ESCAPE = re.compile(r"(\\+)(udc[89a-fA-F][0-9a-fA-F])")


def escaped(text: str) -> str:
    """A table cell (a file name) as valid UTF-8 text: each byte that is not UTF-8 (Python holds it as a lone
    surrogate) written as ``\\udcXX``, and a backslash the name itself has before such an escape, or before the
    letters ``udcXX``, doubled, so that a name holding the byte 0xFF and one literally named ``x\\udcff`` stay two
    names. :func:`unescaped` turns it back."""
    if text.isascii() and "\\" not in text:  # most cells: nothing to escape
        return text
    text = _BEFORE_ESCAPE.sub(lambda found: found.group(1) * 2, text)
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


def unescaped(text: str) -> str:
    """A cell as :func:`escaped` (or :func:`write_csv`) wrote it, turned back into the name Python has for the file: an
    odd run of backslashes before ``udcXX`` ends in the escape of a byte, an even run is the name's own backslashes."""
    def restore(found) -> str:
        run, code = found.group(1), found.group(2)
        return "\\" * (len(run) // 2) + (chr(0xDC00 + int(code[3:], 16)) if len(run) % 2 else code)

    return _ESCAPE.sub(restore, text)


def save_png_atomic(path: str | os.PathLike, picture, **options) -> Path:
    """Save ``picture`` (a uint8 array) as PNG at ``path``, renamed into place once written (Pillow's ``options``)."""
    return save_picture_atomic(path, picture, "PNG", **options)


def save_picture_atomic(path: str | os.PathLike, picture, format: str, **options) -> Path:
    """Save ``picture`` (a uint8 array) in ``format`` (Pillow's name: PNG, JPEG) at ``path``, renamed into place once
    written (Pillow's ``options``, e.g. ``compress_level`` or ``quality``)."""
    from PIL import Image

    return write_atomic(path, lambda stream: Image.fromarray(picture).save(stream, format=format, **options))


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str] | None = None,
              *, extrasaction: str = "raise") -> Path:
    """A CSV table, atomically: ``rows`` as dictionaries (``columns``: their order; default the first row's keys and
    then any new key in order of appearance) or as sequences under the header ``columns``. Text cells are written
    :func:`escaped` (file names that are not UTF-8 included); :func:`unescaped` reads a name back."""
    def cell(value):
        return escaped(value) if isinstance(value, str) else value

    rows = [{key: cell(value) for key, value in row.items()} if isinstance(row, Mapping) else [cell(value) for value in row]
            for row in rows]
    buffer = io.StringIO()
    if rows and not isinstance(rows[0], Mapping):
        writer = csv.writer(buffer)  # quotes names with commas or quotes
        if columns is not None:
            writer.writerow(columns)
        writer.writerows(rows)
    else:
        if columns is None:
            columns = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction=extrasaction)
        writer.writeheader()
        writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue())


def save_npz_atomic(path: str | os.PathLike, arrays: Mapping[str, Any], *, compressed: bool = True) -> Path:
    """NumPy arrays in one ``.npz`` file, atomically."""
    import numpy as np

    save = np.savez_compressed if compressed else np.savez
    return write_atomic(path, lambda stream: save(stream, **arrays))
