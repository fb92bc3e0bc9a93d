"""Real data in one command: ``pmsp data download casia1``, verified file by file, laid out for the loaders.

Defined in 02_forgery_datasets. What can be downloaded is data, not code: one
JSON entry per source in ``pmsp_utils/data/downloads/`` names its archives (URLs
pinned to a commit, mirrors, the folder inside, its size) and the SHA-256 of
every file in them, computed from the commits' blobs
(``scripts/make_download_lists.py``). A forge may serve an archive's bytes
differently over time; the files inside may not change, so every extracted file
is checked against that list and a changed one is named with both hashes.

A download:

1. refuses to touch a folder that holds anything but an earlier complete copy
   (nothing of yours is overwritten), and does nothing when that copy is complete;
2. shows the terms and citations and needs ``accept_terms`` (``--accept-terms``,
   or a yes at the prompt);
3. fetches each archive into ``.<name>.pmsp-partial/`` beside the target (a folder pmsp marks as its own), with a
   progress bar, resuming an interrupted transfer (HTTP Range) and retrying with
   backoff, or takes it from ``from_`` (the archives, or a folder of a copy you
   already have);
4. extracts and verifies every listed file, lays the dataset out as the loaders
   expect (``images/``, ``masks/<stem>_gt.png``, ``authentic/``) with every known
   quirk fixed by the source's fixer (CASIA's: renamed files, swapped ids, the
   rotated mask, the image without a mask), and writes the report
   (``fixes.json``) and a dataset card (``DATASET.json``);
5. renames the finished folder into place in one step: a half-finished download
   is never taken for a dataset.
"""

from __future__ import annotations

import datetime
import errno
import gzip
import hashlib
import http.client
import json
import lzma
import os
import shutil
import struct
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..safe_write import write_atomic, write_text_atomic
from .verify import sha256 as sha256_of  # the one file hash, under the name this module's callers use

DOWNLOADS_DIR = Path(__file__).resolve().parent / "downloads"
CARD = "DATASET.json"
REPORT = "fixes.json"
CHUNK = 1 << 16


class DownloadError(OSError):
    """A download that cannot go on; the message is one line that says what to do. ``unreachable``: the server
    could not be reached or refused the file (another mirror may work), as against a file that came but is wrong."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Archive:
    """One archive of a source: where to get it and what it must hold."""

    name: str
    urls: tuple[str, ...]
    format: str  # "tar.gz" or "zip"
    strip: str  # the folder inside the archive that holds the listed files
    files: dict[str, str]  # path under ``strip`` -> SHA-256
    size: int = 0
    archive_sha256: str = ""
    what: str = ""
    repository: str = ""
    commit: str = ""
    sizes: dict[str, int] = field(default_factory=dict)  # path under ``strip`` -> bytes, where pinned

    @classmethod
    def from_dict(cls, values: dict) -> "Archive":
        return cls(values["name"], tuple(values["urls"]), values["format"], values["strip"], dict(values["files"]), int(values.get("size") or 0),
                   values.get("archive_sha256", ""), values.get("what", ""), values.get("repository", ""), values.get("commit", ""),
                   {path: int(size) for path, size in values.get("sizes", {}).items()})


@dataclass(frozen=True)
class Downloadable:
    """A source that ``pmsp data download`` can fetch: its archives, terms and the fixer that lays it out."""

    source: str
    archives: tuple[Archive, ...]
    terms: str
    fixer: str
    extra: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(archive.size for archive in self.archives)


def registry(folder: str | Path = DOWNLOADS_DIR) -> dict[str, Downloadable]:
    """{source: Downloadable} of every entry in ``folder`` (one JSON file per source)."""
    entries = {}
    for path in sorted(Path(folder).glob("*.json")):
        values = json.loads(path.read_text())
        entries[values["source"]] = Downloadable(values["source"], tuple(Archive.from_dict(a) for a in values["archives"]),
                                                 values.get("terms", ""), values.get("fixer", ""), values)
    return entries


# --- fetching ---------------------------------------------------------------------------


def fetch(url: str, target: Path, *, size: int = 0, retries: int = 4, timeout: float = 30.0, show_progress: bool | None = None,
          opener: Callable = urllib.request.urlopen, sleep: Callable[[float], None] = time.sleep) -> Path:
    """Download ``url`` into ``target`` (a ``.part`` file is resumed from its length with an HTTP Range request), with
    retries and exponential backoff; returns ``target``. A server that ignores the range starts the file again."""
    from ..progress import progress_bar

    target.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        have = target.stat().st_size if target.exists() else 0
        request = urllib.request.Request(url, headers={"User-Agent": "pmsp-utils", **({"Range": f"bytes={have}-"} if have else {})})
        try:
            with opener(request, timeout=timeout) as response:
                status = getattr(response, "status", 200)
                if have and status == 416:  # the range starts at the end: the file is complete
                    return target
                if have and status != 206:
                    have = 0  # the server sent the whole file
                length = response.headers.get("Content-Length")
                total = int(length) + have if length else (size or None)
                with open(target, "ab" if have else "wb") as stream, progress_bar(total=total, initial=have, description=target.name,
                                                                                 show=show_progress, unit="B") as bar:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        stream.write(block)
                        bar.update(len(block))
            if total and target.stat().st_size < total:
                raise urllib.error.URLError(f"the connection closed after {target.stat().st_size} of {total} bytes")
            return target
        except urllib.error.HTTPError as error:
            if error.code == 416 and have:
                return target
            if error.code in (404, 410) or attempt == retries:
                raise DownloadError(f"{url}: the server answered {error.code} {error.reason}; try again later, another mirror, "
                                    "or --from FILE with a copy you downloaded yourself.", unreachable=True) from None
        except (OSError, http.client.HTTPException) as error:
            if getattr(error, "errno", None) == errno.ENOSPC:
                raise
            if attempt == retries:
                reason = getattr(error, "reason", error)
                raise DownloadError(f"{url}: could not download ({reason}); check your network connection and run the same command "
                                    f"again (it resumes), or pass --from FILE with a copy you downloaded yourself.", unreachable=True) from None
        sleep(min(30.0, 2.0 ** attempt))
    raise AssertionError("unreachable")




# --- extracting and verifying -----------------------------------------------------------


#: The most bytes one listed file of an archive may hold (CASIA's largest is under 1 MB): a member that declares or
#: inflates to more is refused before it can fill memory or disk (a zip bomb, or not the pinned archive).
MEMBER_LIMIT = 64 << 20
#: The most bytes all the listed files of one archive may hold together.
TOTAL_LIMIT = 4 << 30
#: The most bytes a tar.gz may inflate to, everything in it counted (the members pmsp skips are still decompressed
#: on the way past, a gzip stream being read in order): the pinned images archive is 74 MB uncompressed, so an archive
#: past this is not the pinned one, and a huge unlisted member is refused by its header instead of being inflated.
ARCHIVE_LIMIT = 1 << 30
READ_CHUNK = 1 << 20

#: What reading a damaged or crafted archive can raise besides tarfile's and zipfile's own errors: a compression
#: method or encryption zipfile cannot read (NotImplementedError, RuntimeError), a deflate, bzip2 or lzma stream that
#: breaks part way (zlib.error, OSError, lzma.LZMAError, EOFError), a header that decodes to nonsense (ValueError,
#: struct.error, OverflowError). Caught only around reading the archive, never around writing the files out.
ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, NotImplementedError, RuntimeError,
                  ValueError, struct.error, OverflowError, IndexError, OSError)
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


class _Unreadable(DownloadError):
    """An archive, or one of its members, that cannot be read: not the pinned archive."""


class _TooLarge(_Unreadable):
    """A tar.gz that inflates past :data:`ARCHIVE_LIMIT`."""


def _unreadable(archive_path: Path, archive: Archive, error: BaseException, member: str | None = None) -> _Unreadable:
    reason = (str(error).strip().splitlines() or [""])[0] or type(error).__name__
    if member is None:
        return _Unreadable(f"{archive_path}: not a readable {archive.format} archive ({reason}); it is not the pinned archive, "
                           "so nothing was placed. Delete it and download again, or --from a verified copy.")
    return _Unreadable(f"{member} (in {archive_path}) cannot be read: {reason}; the archive is not the pinned one, so nothing "
                       "was placed. Delete it and download again, or --from a verified copy.")


#: The most bytes a tar's GNU long name or pax header may hold: tarfile reads one whole into memory before it knows what
#: it is, and the pinned archives' names are under 100 bytes, so a larger one is a crafted header, refused unread.
TAR_HEADER_LIMIT = 1 << 16


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile's member header, refusing a long-name or pax header above :data:`TAR_HEADER_LIMIT` before reading it
    (under :data:`ARCHIVE_LIMIT` alone, one such header could take a gigabyte of memory)."""

    def _refuse_large(self, tar) -> None:
        if self.size > TAR_HEADER_LIMIT:
            stream = tar.fileobj
            raise _TooLarge(f"{stream.path}: a member header of {self.size:,} bytes (a long name or pax record), far more than "
                            f"any name in the pinned {stream.archive.name} archive; it is not the pinned archive, so it was not "
                            "read further and nothing was placed. Delete it and download again, or --from a verified copy.")

    def _proc_gnulong(self, tar):
        self._refuse_large(tar)
        return super()._proc_gnulong(tar)

    def _proc_pax(self, tar):
        self._refuse_large(tar)
        return super()._proc_pax(tar)


class _CappedStream:
    """The uncompressed stream of a tar.gz for tarfile, refusing to read or skip past :data:`ARCHIVE_LIMIT`: a skip
    (tarfile seeks past a member it is not asked for) is refused before anything is inflated, a read once it would
    pass the cap, so an archive of any size is read for a bounded time."""

    def __init__(self, path: Path, archive: Archive) -> None:
        self.path, self.archive, self.stream = path, archive, gzip.GzipFile(path, "rb")

    def _check(self, end: int) -> None:
        if end > ARCHIVE_LIMIT:
            raise _TooLarge(f"{self.path}: inflates to more than {ARCHIVE_LIMIT:,} bytes, far more than the pinned "
                              f"{self.archive.name} archive (a huge member, listed or not); it is not the pinned archive, so "
                              "it was not read further and nothing was placed. Delete it and download again, or --from a "
                              "verified copy.")

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:  # the rest: read up to one byte past the cap, and refused if it is there
            data = self.stream.read(max(0, ARCHIVE_LIMIT + 1 - self.stream.tell()))
            self._check(self.stream.tell())
            return data
        self._check(self.stream.tell() + size)  # before inflating (tarfile reads a long name's or pax header's size whole)
        return self.stream.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        self._check(offset if whence == 0 else self.stream.tell() + offset if whence == 1 else ARCHIVE_LIMIT + 1)
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> "_CappedStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _MemberStream:
    """A member's stream whose read errors name the member and the archive (a write error is not read here)."""

    def __init__(self, open_member: Callable[[], object], relative: str, archive_path: Path, archive: Archive) -> None:
        self.open_member, self.relative, self.archive_path, self.archive, self.stream = open_member, relative, archive_path, archive, None

    def _named(self, error: BaseException) -> _Unreadable:
        return _unreadable(self.archive_path, self.archive, error, self.relative)

    def __enter__(self) -> "_MemberStream":
        try:
            self.stream = self.open_member()
        except DownloadError:
            raise
        except ARCHIVE_ERRORS as error:
            raise self._named(error) from None
        return self

    def read(self, size: int = -1) -> bytes:
        try:
            return self.stream.read(size)
        except DownloadError:
            raise
        except ARCHIVE_ERRORS as error:
            raise self._named(error) from None

    def __exit__(self, *exc) -> None:
        try:
            self.stream.close()
        except ARCHIVE_ERRORS:
            pass


def _open_zip_member(bundle: zipfile.ZipFile, info: zipfile.ZipInfo) -> object:
    if info.flag_bits & 0x1:
        raise ValueError("it is encrypted, and the pinned archive is not")
    if info.compress_type not in _ZIP_METHODS:
        raise ValueError(f"it is compressed with method {info.compress_type}, which the pinned archive does not use and pmsp cannot read")
    return bundle.open(info)


def _members(archive_path: Path, archive: Archive) -> Iterator[tuple[str, int, Callable[[], object]]]:
    """(path under ``strip``, declared size, open) of every member of the archive under its folder; ``open()`` gives
    a binary stream, read in chunks (nothing is inflated whole in memory). A member that cannot be read, or an archive
    whose headers cannot be, is a :class:`DownloadError` naming the archive (and the member); a tar.gz past
    :data:`ARCHIVE_LIMIT` is stopped there. Members are only opened when asked for: a zip's others are never
    decompressed, a tar.gz's are skipped without being handed to anything."""
    if archive.format not in ("zip", "tar.gz"):
        raise ValueError(f"archive format must be zip or tar.gz, got {archive.format!r}.")
    try:
        if archive.format == "zip":
            with zipfile.ZipFile(archive_path) as bundle:
                for info in bundle.infolist():
                    if info.filename.startswith(archive.strip) and not info.is_dir():
                        relative = info.filename[len(archive.strip):]
                        yield relative, info.file_size, lambda info=info, relative=relative: _MemberStream(
                            lambda: _open_zip_member(bundle, info), relative, archive_path, archive)
        else:
            with _CappedStream(archive_path, archive) as stream, tarfile.open(fileobj=stream, mode="r:", tarinfo=_BoundedTarInfo) as bundle:
                for member in bundle:
                    if member.isfile() and member.name.startswith(archive.strip):
                        relative = member.name[len(archive.strip):]
                        yield relative, member.size, lambda member=member, relative=relative: _MemberStream(
                            lambda: bundle.extractfile(member), relative, archive_path, archive)
    except DownloadError:
        raise
    except ARCHIVE_ERRORS as error:  # the archive's own headers (a member's data is read through _MemberStream)
        raise _unreadable(archive_path, archive, error) from None


def extract_verified(archive_path: Path, archive: Archive, out: Path) -> int:
    """Write every listed file of ``archive_path`` under ``out`` after checking its SHA-256; returns how many.

    Raises :class:`DownloadError` naming the first changed file (expected and actual hash), a member larger than
    :data:`MEMBER_LIMIT` (declared or inflated) or the missing ones.
    """
    try:
        members = ((relative, declared, opener, str(archive_path)) for relative, declared, opener in _members(archive_path, archive))
        return _write_verified(members, archive, out, str(archive_path))  # read while the archive is open (errors reading it are named there)
    except MemoryError:
        raise DownloadError(f"{archive_path}: ran out of memory while reading the archive; it is not the pinned copy (a member "
                            "inflates far beyond any file of the dataset). Delete it and download again.") from None


def _too_large(relative: str, origin: str, size: int, limit: int, what: str) -> DownloadError:
    return DownloadError(f"{relative} (in {origin}) {what} {size:,} bytes, more than the {limit:,} any file of this dataset can "
                         "hold: the archive is not the pinned one (or is built to fill the disk), so nothing was placed. "
                         "Delete it and download again, or --from a verified copy.")


def _write_verified(members: Iterable[tuple[str, int, Callable[[], object], str]], archive: Archive, out: Path, origin: str) -> int:
    """Each listed member streamed through SHA-256 in chunks into a temporary file beside its target
    (:func:`~pmsp_utils.safe_write.write_atomic`), renamed into place once its hash matches. Where the entry pins the
    file's size, a member declaring another size is passed over unread, and one that reads past it is stopped at once
    (either is named if no other copy is the pinned one); a member past :data:`MEMBER_LIMIT` (declared or read), or
    the total past :data:`TOTAL_LIMIT`, stops the extraction. Members are (relative path, declared size, opener, where it was read:
    the archive, or the very file of a folder). A file whose hash differs is named as itself, and another copy of the
    same file further on may still be the pinned one (a folder holding an old edited copy beside the right one)."""
    written, changed, total = set(), {}, 0
    for relative, declared, open_member, where in members:
        expected = archive.files.get(relative)
        if expected is None or relative in written:
            continue
        if declared > MEMBER_LIMIT:
            raise _too_large(relative, origin, declared, MEMBER_LIMIT, "declares")
        pinned = archive.sizes.get(relative)
        if pinned is not None and declared != pinned:  # refused unread; another copy of it may still be the pinned one
            changed.setdefault(relative, _Changed(f"{relative} ({where if where != origin else f'in {origin}'}) declares "
                                                  f"{declared:,} bytes where the pinned file has {pinned:,}; the copy is "
                                                  "not the pinned one, so nothing was read or placed. Try another mirror "
                                                  "or --from a verified copy."))
            continue
        limit = MEMBER_LIMIT if pinned is None else pinned
        target = out / relative
        size = 0

        def copy_verified(sink, relative=relative, expected=expected, open_member=open_member, where=where):
            nonlocal size
            digest = hashlib.sha256()
            with open_member() as stream:
                for block in iter(lambda: stream.read(READ_CHUNK), b""):
                    size += len(block)
                    if size > limit and limit < MEMBER_LIMIT:  # a member that lies about its size: stopped at once
                        raise _Changed(f"{relative} ({where if where != origin else f'in {origin}'}) holds more than "
                                       f"the {limit:,} bytes it declares and the pinned file has; the copy is not the "
                                       "pinned one, so reading stopped and nothing was placed. Try another mirror or "
                                       "--from a verified copy.")
                    if size > MEMBER_LIMIT:
                        raise _too_large(relative, origin, size, MEMBER_LIMIT, "inflates to more than")
                    if total + size > TOTAL_LIMIT:
                        raise _too_large(relative, origin, total + size, TOTAL_LIMIT, "brings the archive's files to")
                    digest.update(block)
                    sink.write(block)
            actual = digest.hexdigest()
            if actual != expected:
                raise _Changed(f"{relative} ({where if where != origin else f'in {origin}'}) has changed: expected SHA-256 "
                               f"{expected}, got {actual}; the copy is not the pinned one, so nothing was placed. Try another "
                               "mirror or --from a verified copy.")

        try:
            write_atomic(target, copy_verified)  # a temporary name, renamed once whole and verified; removed on any error
        except _Changed as error:
            changed.setdefault(relative, error)
            continue
        total += size
        written.add(relative)
        changed.pop(relative, None)
    if changed:
        raise DownloadError(str(next(iter(changed.values()))))
    missing = sorted(set(archive.files) - written)
    if missing:
        raise DownloadError(f"{origin}: {len(missing)} of the {len(archive.files)} files of {archive.name} are missing "
                            f"(e.g. {', '.join(missing[:3])}); nothing was placed.")
    return len(written)


class _Changed(DownloadError):
    """A file whose hash is not the pinned one (another copy of it may still be)."""


def _from_folder(folder: Path, archive: Archive, out: Path) -> int:
    """Listed files found by name in an already-extracted copy (any depth), verified and copied."""
    by_name: dict[str, list[str]] = {}
    for relative in archive.files:
        by_name.setdefault(Path(relative).name, []).append(relative)
    def opened(path: Path):
        try:
            return open(path, "rb")
        except OSError as error:  # unreadable (permissions, a stale network file): named, and another copy may still serve
            raise _Changed(f"{path}: cannot be read ({error.strerror or error}); make it readable, move it away, or --from "
                           "another copy. Nothing was placed.") from None

    members = []
    for path in folder.rglob("*"):
        for relative in by_name.get(path.name, ()) if path.is_file() else ():
            members.append((relative, path.stat().st_size, lambda path=path: opened(path), str(path)))
    return _write_verified(members, archive, out, str(folder))


def _given_archive(candidates: list[Path], archive: Archive) -> Path | None:
    """A ``--from`` file that is this archive (by its pinned hash, or by holding its files). One that inflates past
    :data:`ARCHIVE_LIMIT` before any of them is named when no other file is the archive (it was not read further)."""
    too_large = None
    for path in candidates:
        if not path.is_file():
            continue
        if archive.archive_sha256 and sha256_of(path) == archive.archive_sha256:
            return path
        try:
            for relative, _, _ in _members(path, archive):
                if relative in archive.files:
                    return path
        except _TooLarge as error:
            too_large = too_large or error
        except DownloadError:  # another kind of archive, or another archive
            continue
    if too_large is not None:
        raise too_large
    return None


# --- laying out ---------------------------------------------------------------------------


def lay_out_casia(extracted: Path, layout: Path, source: str) -> dict:
    """CASIA in the flat layout the loaders read fastest, every quirk fixed by the loader and written down:
    ``images/<name>.jpg`` (tampered, by their corrected names), ``masks/<name>_gt.png`` (mode L, 0/255, turned to fit
    where the official mask is rotated), ``authentic/``. Returns the report of fixes."""
    import numpy as np
    from PIL import Image

    from .casia import load_casia, read_name_corrections

    report = {"renamed": [], "swapped_ids": [], "rotated_masks": [], "inverted_masks": [], "without_mask": [],
              "refused": [], "unmatched_masks": []}
    for table in extracted.rglob("FileNameCorrection.xlsx"):  # the mask release's own list of wrong image names
        corrections = read_name_corrections(table)
        for path in [path for path in extracted.rglob("*") if path.name in corrections]:
            path.rename(path.with_name(corrections[path.name]))
            report["renamed"].append({"from": path.name, "to": corrections[path.name], "by": "FileNameCorrection.xlsx"})
    dataset = load_casia(extracted, source, fix_inverted=True)
    for folder in ("images", "masks", "authentic"):
        (layout / folder).mkdir(parents=True, exist_ok=True)
    for record in dataset.records:
        if not record.is_tampered:
            shutil.copyfile(record.image_path, layout / "authentic" / record.image_path.name)
            continue
        suffix = record.image_path.suffix
        shutil.copyfile(record.image_path, layout / "images" / f"{record.name}{suffix}")
        mask = record.load_mask()
        Image.fromarray((mask * 255).astype(np.uint8), mode="L").save(layout / "masks" / f"{record.name}_gt.png")
        for note in record.notes:
            if note.startswith("file renamed"):
                report["renamed"].append({"from": record.image_path.name, "to": f"{record.name}{suffix}", "by": "matching its mask"})
            elif note.startswith("mask name differs in one source id"):
                report["renamed"].append({"from": record.image_path.name, "to": f"{record.name}{suffix}", "by": note})
            elif note.startswith("mask name has the two source ids swapped"):
                report["swapped_ids"].append({"image": record.name, "mask": Path(record.mask_path).name})
            elif note.startswith("mask rotated"):
                report["rotated_masks"].append({"image": record.name, "how": note})
            elif "invert" in note:
                report["inverted_masks"].append({"image": record.name, "how": note})
    report["without_mask"] = sorted(Path(path).name for path in dataset.missing_masks)
    report["refused"] = [{"image": Path(path).name, "why": why} for path, why in dataset.inconsistent]
    report["unmatched_masks"] = sorted(Path(path).name for path in dataset.unmatched_masks)
    counts = dataset.counts()
    report["counts"] = {"tampered": counts["splicing"] + counts["copy-move"], **counts}
    return report


FIXERS = {"casia": lay_out_casia}


# --- the command ----------------------------------------------------------------------------


def target_folder(source: str, to: str | Path | None) -> Path:
    """``to``, else ``PMSP_DATA_DIR/<source>``; an error naming both when neither is given."""
    if to:
        return Path(to).expanduser()
    value = os.environ.get("PMSP_DATA_DIR")
    if not value:
        raise DownloadError(f"where should {source} go? Pass --to FOLDER, or set PMSP_DATA_DIR (the data goes to $PMSP_DATA_DIR/{source}).")
    return Path(value).expanduser() / source


def complete_copy(folder: Path) -> dict | None:
    """The dataset card of a complete copy in ``folder`` (every file it lists present with its size), else None."""
    card_path = folder / CARD
    if not card_path.is_file():
        return None
    try:
        card = json.loads(card_path.read_text())
        files = card["layout"]
    except (ValueError, KeyError, TypeError):
        return None
    for relative, facts in files.items():
        path = folder / relative
        if not path.is_file() or path.stat().st_size != facts["size"]:
            return None
    return card


def card_identity(folder: str | Path) -> dict | None:
    """{source, card_sha256, downloaded} of the dataset card in ``folder`` (what ``pmsp evaluate`` records), or None."""
    path = Path(folder) / CARD
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
    except ValueError:
        return None
    return {"source": card.get("source"), "card_sha256": sha256_of(path), "downloaded": card.get("downloaded"),
            "commits": {archive["name"]: archive.get("commit") for archive in card.get("archives", [])}}


def download(source: str, *, to: str | Path | None = None, from_: Iterable[str | Path] = (), accept_terms: bool = False,
             entries: dict[str, Downloadable] | None = None, echo: Callable[[str], None] = print,
             ask: Callable[[str], str] | None = None, show_progress: bool | None = None, fetcher: Callable | None = None) -> Path:
    """Fetch, verify and lay out ``source`` at ``to`` (or ``PMSP_DATA_DIR/<source>``); returns the folder."""
    from .manifest import read_manifest

    entries = registry() if entries is None else entries
    if source not in entries:
        raise DownloadError(f"{source!r} cannot be downloaded by pmsp; downloadable: {', '.join(sorted(entries)) or 'none'}. "
                            "See `pmsp data list` for where to get the others.")
    entry = entries[source]
    fetcher = fetcher or fetch
    given_target = target_folder(source, to)
    target = followed_link(given_target)
    named = str(target) if target == given_target else f"{target} (where the link {given_target} points)"
    card = complete_copy(target)
    if card is not None:
        echo(f"{source}: a complete copy is already at {named} (downloaded {card.get('downloaded', '?')}); nothing to do.")
        return target
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DownloadError(f"{named} already exists and is not a complete copy made by pmsp; nothing was changed. "
                            "Choose an empty or new folder with --to, or move that one away.")
    manifest = read_manifest()
    citation = manifest[source].citation if source in manifest else entry.extra.get("citation", "")
    licence = manifest[source].licence if source in manifest else entry.extra.get("licence", "")
    echo(f"{source}: {entry.terms}\n  licence: {licence}\n  cite: {citation}")
    if not accept_terms:
        interactive = ask is not None or sys.stdin.isatty()
        try:
            answer = (ask or input)("Accept these terms and download? [y/N] ") if interactive else ""
        except EOFError:  # Ctrl-D, or input that ended: no answer is no
            answer = ""
        if answer.strip().lower() not in {"y", "yes"}:
            raise DownloadError(f"{source}: the terms were not accepted; run again with --accept-terms to accept them.")
    given = [Path(path).expanduser() for path in from_]
    for path in given:
        if not path.exists():
            raise DownloadError(f"--from {path}: no such file or folder.")
        if path.is_file() and not _readable_archive(path):
            raise DownloadError(f"--from {path}: not a readable zip or tar.gz archive (truncated, or another kind of file); "
                                "download it again, or give the folder it was extracted to.")
    staging = claim_staging(target)  # before any work: a --to that cannot be written fails now, not after the download
    try:
        extracted = staging / "extracted"
        if extracted.exists():
            shutil.rmtree(extracted)
        for archive in entry.archives:
            out = extracted / archive.name
            folders = [path for path in given if path.is_dir()]
            file = _given_archive([path for path in given if path.is_file()], archive)
            if file is not None:
                echo(f"{archive.name}: from {file}")
                count = extract_verified(file, archive, out)
            elif folders:
                count = _try_folders(folders, archive, out)
            else:
                part = staging / f"{archive.name}.{archive.format}.part"
                count = _download_archive(archive, part, fetcher, show_progress, echo)
            echo(f"{archive.name}: {count} files verified (SHA-256)")
        layout = staging / "layout"
        if layout.exists():
            shutil.rmtree(layout)
        report = FIXERS[entry.fixer](extracted, layout, source)
        write_card(layout, entry, report, licence, citation)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(layout, target)  # one rename: the dataset appears whole
        shutil.rmtree(staging, ignore_errors=True)
    except BaseException as error:
        tidy_staging(staging)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise DownloadError(f"{target.parent}: the disk is full ({entry.size / 1e6:.0f} MB of archives and about as much again "
                                "to lay them out are needed); free some space and run again (finished downloads are kept).") from None
        raise
    counts = report["counts"]
    echo(f"{source}: {counts['tampered']} tampered images with masks and {counts['authentic']} authentic images at {named}; "
         f"fixes in {target / REPORT}, card in {target / CARD}")
    return target


#: The file that marks a staging folder as pmsp's own: only a folder holding it is ever emptied or removed.
STAGING_MARK = ".pmsp-staging"


def followed_link(target: Path) -> Path:
    """``target`` itself, or where it points when it is a symbolic link to a folder: the dataset is laid out in that
    folder (under the same rules as any ``--to``: empty, or a complete copy) and the link keeps pointing at it. A
    link to a file, or to nothing (dangling, or a loop), is refused here, before anything is downloaded."""
    if not target.is_symlink():
        return target
    pointed = Path(os.path.realpath(target))
    if pointed.is_dir():
        return pointed
    if pointed.exists():
        raise DownloadError(f"{target} is a symbolic link to {pointed}, a file, not a folder; nothing was changed. Choose "
                            "a folder with --to, or remove the link.")
    raise DownloadError(f"{target} is a symbolic link to {pointed}, which does not exist (or is a loop of links); nothing was "
                        "changed. Create that folder (the data then goes there), remove the link, or choose another --to.")


def tidy_staging(staging: Path) -> None:
    """After a download that stopped: the extracted and laid-out files go (every run extracts again, and they may be
    half written), finished archives stay to resume from, and a staging folder left with nothing but its mark goes."""
    shutil.rmtree(staging / "extracted", ignore_errors=True)
    shutil.rmtree(staging / "layout", ignore_errors=True)
    try:
        if {path.name for path in staging.iterdir()} <= {STAGING_MARK}:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError:
        pass


def claim_staging(target: Path) -> Path:
    """The staging folder beside ``target`` (``.<name>.pmsp-partial/``), made and marked as pmsp's own, or the one an
    earlier run made (it holds finished downloads to resume). A folder of that name without the mark is the user's:
    refused, never emptied. A parent folder that cannot be written is said at once, before any download."""
    staging = target.parent / f".{target.name}.pmsp-partial"
    if staging.exists() and not (staging / STAGING_MARK).is_file():
        raise DownloadError(f"{staging} exists and was not made by pmsp (it has no {STAGING_MARK} mark); pmsp stages downloads "
                            "there, and never empties a folder it did not make. Move it away, or choose another --to.")
    try:
        staging.mkdir(parents=True, exist_ok=True)
        write_text_atomic(staging / STAGING_MARK, "pmsp data download stages its archives here; safe to delete when no download runs.\n")
    except OSError as error:
        raise DownloadError(f"--to {target}: cannot write in {target.parent} ({error.strerror or error}); choose a folder you "
                            "can write with --to (nothing was downloaded).") from None
    return staging


def _readable_archive(path: Path) -> bool:
    """Whether a file opens as a zip (its central directory, at the end, is read: a truncated zip loses it) or as a
    gzip'd tar (its first header). Nothing is decompressed whole here: a tar.gz cut short further in is named by
    :func:`extract_verified`, which reads it anyway."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as bundle:
                bundle.infolist()
            return True
        except ARCHIVE_ERRORS:
            return False
    try:
        with (_CappedStream(path, Archive(path.name, (), "tar.gz", "", {})) as stream,
              tarfile.open(fileobj=stream, mode="r:", tarinfo=_BoundedTarInfo) as bundle):
            return bundle.next() is not None
    except _TooLarge:  # its first header alone passes the cap: said by extract_verified, which names it
        return True
    except ARCHIVE_ERRORS:
        return False


def _try_folders(folders: list[Path], archive: Archive, out: Path) -> int:
    errors = []
    for folder in folders:
        try:
            return _from_folder(folder, archive, out)
        except DownloadError as error:
            errors.append(str(error))
    raise DownloadError(errors[-1])


def _download_archive(archive: Archive, part: Path, fetcher, show_progress, echo) -> int:
    """Fetch from the first mirror that works and extract; a damaged or changed archive is fetched once again."""
    last = None
    for url in archive.urls:
        for attempt in range(2):
            try:
                fetcher(url, part, size=archive.size if archive.archive_sha256 else 0, show_progress=show_progress)
                if archive.archive_sha256 and sha256_of(part) != archive.archive_sha256:
                    raise DownloadError(f"{url}: the archive's SHA-256 is {sha256_of(part)}, expected {archive.archive_sha256}.")
                return extract_verified(part, archive, part.parent / "extracted" / archive.name)
            except DownloadError as error:
                last = error
                part.unlink(missing_ok=True)  # start this archive again from scratch
                if error.unreachable:
                    break  # the next mirror
                echo(f"{archive.name}: {error} Fetching it again.")
    raise last


def write_card(folder: Path, entry: Downloadable, report: dict, licence: str, citation: str) -> Path:
    """``DATASET.json`` (source, commits, date, every file with its size and hash, fixes, licence, citation) and
    ``fixes.json`` in ``folder``."""
    write_text_atomic(folder / REPORT, json.dumps(report, indent=1) + "\n")
    layout = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in {CARD}:
            layout[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": sha256_of(path)}
    card = {
        "source": entry.source,
        "downloaded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "archives": [{"name": a.name, "what": a.what, "repository": a.repository, "commit": a.commit, "urls": list(a.urls),
                      "files_verified": len(a.files)} for a in entry.archives],
        "fixes": {key: len(value) for key, value in report.items() if isinstance(value, list)},
        "counts": report.get("counts", {}),
        "licence": licence,
        "citation": citation,
        "terms": entry.terms,
        "layout": layout,
    }
    path = folder / CARD
    write_text_atomic(path, json.dumps(card, indent=1) + "\n")
    return path


def data_list(entries: dict[str, Downloadable] | None = None) -> list[dict]:
    """One row per manifest source: present (where, complete or not), downloadable, size, licence, citation."""
    from ..environment import data_dir
    from .manifest import read_manifest

    entries = registry() if entries is None else entries
    root = data_dir()
    rows = []
    for row in read_manifest().values():
        folder = root / row.source if root is not None else None
        present = "built in" if row.layout in {"generated", "packaged"} else "no"
        if folder is not None and folder.is_dir():
            present = f"yes, complete ({folder})" if complete_copy(folder) else f"yes ({folder}; not made by pmsp data download)"
        entry = entries.get(row.source)
        rows.append({"source": row.source, "present": present, "download": "pmsp data download " + row.source if entry else "by hand: " + row.url,
                     "size": f"{entry.size / 1e6:.0f} MB" if entry else "", "licence": row.licence, "citation": row.citation})
    return rows


def hosted_notebook() -> str | None:
    """"Colab" or "Binder" when this kernel runs there (where a download is the only way to get data), else None."""
    if "google.colab" in sys.modules or os.environ.get("COLAB_RELEASE_TAG"):
        return "Colab"
    if os.environ.get("BINDER_SERVICE_HOST") or os.environ.get("BINDER_LAUNCH_HOST") or os.environ.get("BINDER_REF_URL"):
        return "Binder"
    return None


def notebook_copy(source: str = "casia1", *, accept_terms: bool = False, echo: Callable[[str], None] = print) -> Path | None:
    """The notebooks' one data cell: the copy of ``source`` under ``PMSP_DATA_DIR`` when there is one; on Colab or
    Binder, downloaded (into ``PMSP_DATA_DIR``, default ``~/pmsp_data``) once the terms are accepted; elsewhere (CI,
    smoke runs, a laptop without the data) None, with one line saying how to get it. Paths are printed relative to
    ``$PMSP_DATA_DIR``, so a saved notebook holds no local path."""
    from ..environment import dataset_folder, in_ci, smoke_mode

    found = dataset_folder(source)
    if found is not None:
        card = complete_copy(found)
        echo(f"{source}: using $PMSP_DATA_DIR/{source}" + (f" (downloaded {card['downloaded'][:10]}, verified)" if card else ""))
        return found
    where = hosted_notebook()
    if where is None or in_ci() or smoke_mode():
        echo(f"{source}: not found, so this notebook uses the embedded synthetic set. To use the real data: "
             f"pmsp data download {source} --to DIR, then set PMSP_DATA_DIR to DIR's parent and restart the kernel.")
        return None
    os.environ.setdefault("PMSP_DATA_DIR", str(Path.home() / "pmsp_data"))
    Path(os.environ["PMSP_DATA_DIR"]).expanduser().mkdir(parents=True, exist_ok=True)  # later cells read it
    if not accept_terms:
        entry = registry().get(source)
        echo(f"{source} can be downloaded here ({where}), about {entry.size / 1e6:.0f} MB. Its terms: {entry.terms} "
             "Set ACCEPT_CASIA_TERMS = True in this cell and run it again to download it.")
        return None
    return download(source, accept_terms=True, echo=echo)
