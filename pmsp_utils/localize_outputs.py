"""Localize files: inputs expanded from files, folders and globs; maps, masks and overlays written.

Defined in 05_evaluation; behind ``pmsp localize IMAGE... --out DIR``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .data.records import IMAGE_SUFFIXES
from .data.verify import sha256 as _digest
from .safe_write import save_picture_atomic, unescaped, write_csv, write_text_atomic

TOP_FRACTION = 0.01  # the tamper score averages the top 1% of probabilities


def expand_inputs(items: Iterable[str]) -> tuple[list[Path], list[str]]:
    """(image files, problems) from files, folders (their image files) and glob patterns, in order, without repeats."""
    files, problems, seen = [], [], set()

    def add(path: Path) -> None:
        key = _resolved(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for item in items:
        path = Path(item)
        if path.exists() and not path.is_dir():
            add(path)  # a name that exists is a name, whatever characters it holds ('img[1].jpg' is not a pattern)
        elif path.is_dir():
            from .images import UNREADABLE_ENDINGS, readable_suffixes

            endings = readable_suffixes()  # what works when named works in a folder too
            everything = sorted(path.iterdir())
            entries = [p for p in everything if p.suffix.lower() in endings]
            found = [entry for entry in entries if entry.is_file()]
            for entry in entries:  # a link to nowhere (or a loop) named like an image was skipped without a word
                if entry.is_symlink() and not entry.exists():
                    problems.append(f"{entry}: a symbolic link that leads nowhere (in the folder {item}); fix or remove the link.")
            for entry in everything:  # a photo Pillow cannot open (HEIC, camera raw ...) was passed over in silence
                ending = entry.suffix.lower()
                if ending in UNREADABLE_ENDINGS and ending not in endings and entry.is_file():
                    problems.append(f"{entry}: skipped (in the folder {item}): {UNREADABLE_ENDINGS[ending]}.")
            if not found:
                problems.append(f"{item}: a folder with no image files Pillow can read ({', '.join(sorted(IMAGE_SUFFIXES))}, "
                                "and the other endings of Pillow's formats).")
            for found_path in found:
                add(found_path)
        elif any(character in item for character in "*?["):
            named = [Path(match) for match in glob.glob(item, recursive=True)]
            matches = sorted(match for match in named if match.is_file())
            if not matches and any(match.is_dir() for match in named):
                folders = sorted(match for match in named if match.is_dir())
                problems.append(f"{item}: the pattern matches only folders ({', '.join(map(str, folders[:3]))}"
                                f"{' ...' if len(folders) > 3 else ''}); name the folders themselves, or a pattern of files "
                                "such as DIR/*/*.jpg.")
            elif not matches:
                problems.append(f"{item}: the pattern matches no file.")
            for match in matches:
                add(match)
        else:
            add(path)  # a missing or unreadable file is reported when it is read
    return files, problems


def _resolved(path: Path) -> Path:
    """``path`` with links resolved; a symlink loop stays as it is named (it is reported by name when read)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return path.absolute()


class OutputFolderError(ValueError):
    """The output folder cannot be created or written to."""


def check_output_folder(out: str | Path) -> Path:
    """Create ``out`` if needed and prove it is writable, with an error that says what to do."""
    import errno

    out = Path(out)
    try:
        dangling = out.is_symlink() and not out.exists()
        elsewhere = out.exists() and not out.is_dir()
    except OSError as error:  # a name longer than the file system takes (Path.exists() raises ENAMETOOLONG)
        dangling = elsewhere = False
        if error.errno != errno.ENAMETOOLONG:
            raise OutputFolderError(f"--out {out}: cannot be looked at ({error.strerror or error}); choose another folder.") from None
    if dangling:
        raise OutputFolderError(f"--out {out}: a symbolic link to {os.readlink(out)}, which does not exist; create that folder "
                                "or choose another --out.")
    if elsewhere:
        raise OutputFolderError(f"--out {out}: exists and is not a folder; choose a folder path.")
    too_long = [part for part in out.parts if len(os.fsencode(part)) > 255]
    if too_long:
        raise OutputFolderError(f"--out: the folder name {too_long[0][:40]}... is {len(os.fsencode(too_long[0]))} bytes, longer than "
                                "file systems take (255); choose a shorter --out.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".pmsp-write-test-"):
            pass
    except OSError as error:
        raise OutputFolderError(f"--out {out}: cannot write there ({error.strerror or error}); choose a folder you can write to.") from error
    return out


def raw_tamper_score(probability: np.ndarray, top_fraction: float = TOP_FRACTION) -> float:
    """The mean of the highest ``top_fraction`` of the pixel probabilities: how sure the map is of its strongest region."""
    flat = np.asarray(probability, np.float32).ravel()
    count = max(1, int(round(flat.size * top_fraction)))
    return float(np.partition(flat, flat.size - count)[flat.size - count :].mean())


def tamper_score(probability: np.ndarray, calibration: tuple = (), top_fraction: float = TOP_FRACTION) -> float:
    """An image-level score in [0, 1]: :func:`raw_tamper_score`, mapped through the model's ``calibration`` (slope,
    intercept of a logistic fit on validation, tampered images against untouched photos weighted equally; its card says
    what 0.5 means and how often an untouched photo passes it). Without a calibration, the raw score."""
    raw = raw_tamper_score(probability, top_fraction)
    if not calibration:
        return raw
    slope, intercept = calibration
    return float(1.0 / (1.0 + np.exp(-(slope * raw + intercept))))


BAND_ROWS = 512  # rows of a full-size output computed at a time: float copies of one band, not of the whole photo


def overlay(image: np.ndarray, mask: np.ndarray, colour=(255, 0, 0), alpha: float = 0.45) -> np.ndarray:
    """The image with the predicted tampered pixels tinted (uint8 (H, W, 3); worked out a band of rows at a time)."""
    out = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else np.array(image[..., :3], dtype=np.uint8)
    tint = alpha * np.asarray(colour, np.float32)
    for top in range(0, out.shape[0], BAND_ROWS):
        band, inside = out[top : top + BAND_ROWS], mask[top : top + BAND_ROWS]
        band[inside] = np.clip(np.round((1 - alpha) * band[inside].astype(np.float32) + tint), 0, 255).astype(np.uint8)
    return out


def draw_pairs(picture: np.ndarray, pairs: list) -> np.ndarray:
    """``picture`` with each duplicated pair outlined (yellow) and an arrow from its source's centre to its copy's
    (both ends headed when the copy could not be told from its source)."""
    if not pairs:
        return picture
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(picture)
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(picture.shape[:2]) / 300))
    for pair in pairs:
        for region in (pair.region_a, pair.region_b):
            rows, columns = np.nonzero(region)
            draw.rectangle([int(columns.min()), int(rows.min()), int(columns.max()), int(rows.max())], outline=(255, 220, 0), width=width)
        (row_a, column_a), (row_b, column_b) = pair.centres()
        start, end = ((column_b, row_b), (column_a, row_a)) if pair.copy == "a" else ((column_a, row_a), (column_b, row_b))
        draw.line([start, end], fill=(255, 220, 0), width=width)
        for tip, tail in ((end, start), (start, end)) if pair.copy is None else ((end, start),):
            angle = np.arctan2(tip[1] - tail[1], tip[0] - tail[0])
            size = 6 * width
            head = [tip, (tip[0] - size * np.cos(angle - 0.4), tip[1] - size * np.sin(angle - 0.4)),
                    (tip[0] - size * np.cos(angle + 0.4), tip[1] - size * np.sin(angle + 0.4))]
            draw.polygon(head, fill=(255, 220, 0))
    return np.asarray(canvas)


def probability_picture(probability: np.ndarray) -> np.ndarray:
    """The probability map as uint8 0..255 (``round(p * 255)``), a band of rows at a time."""
    out = np.empty(probability.shape, np.uint8)
    for top in range(0, out.shape[0], BAND_ROWS):
        out[top : top + BAND_ROWS] = np.round(probability[top : top + BAND_ROWS] * 255)
    return out


@dataclass(frozen=True)
class Written:
    source: Path
    score: float
    tampered_fraction: float
    files: tuple[Path, ...]


def output_stem(path: Path) -> str:
    """The base of an input's output names: its name with the extension kept, so a.jpg and a.png stay apart (a_jpg, a_png)."""
    suffix = path.suffix.lstrip(".").lower()
    return f"{path.stem}_{suffix}" if suffix else path.stem


#: The longest file name most file systems take, in bytes; an output name is kept under it with room for the ending,
#: a _N counter and the ledger's temporary prefix.
NAME_BYTES = 255
STEM_BYTES = NAME_BYTES - 64


def _short(stem: str) -> str:
    """A stem within :data:`STEM_BYTES` bytes: a long one is cut (on a character boundary) and ends with a short hash of
    the whole, so two long names that share a beginning stay apart."""
    encoded = stem.encode("utf-8", "surrogateescape")
    if len(encoded) <= STEM_BYTES:
        return stem
    digest = hashlib.sha256(encoded).hexdigest()[:10]
    cut = encoded[: STEM_BYTES - 12].decode("utf-8", "ignore")
    return f"{cut}~{digest}"


def unique_stem(path: Path, used: set[str]) -> str:
    """:func:`output_stem` (cut with a hash if the name would pass what a file system takes), with _2, _3 ... when
    another input (same name, another folder) already used it."""
    base = _short(output_stem(path))
    stem, number = base, 1
    while stem in used:
        number += 1
        stem = f"{base}_{number}"
    used.add(stem)
    return stem


#: What ``pmsp localize`` writes per image, with Pillow's format and options. The probability and the mask carry the
#: result and stay lossless; the overlay is a picture for the eye, and a JPEG writes about 15x faster than a PNG of a
#: photo (1 ms against 19 ms at 576x576, 0.05 s against 0.5 s at 12 MP) at a sixth of the size.
LOCALIZE_PICTURES = (("_probability.png", "PNG", {"compress_level": 1}), ("_mask.png", "PNG", {"compress_level": 1}),
                     ("_overlay.jpg", "JPEG", {"quality": 95}))
LOCALIZE_OUTPUTS = tuple(ending for ending, _, _ in LOCALIZE_PICTURES)
ELA_OUTPUTS = ("_ela.png",)
#: Endings of outputs of earlier versions (before 2026-12-03 the overlay was a PNG): still never taken as inputs.
FORMER_OUTPUTS = ("_overlay.png",)


def plan_outputs(files: list[Path], out: Path, endings: tuple[str, ...], earlier: dict[Path, str] | None = None) -> dict[Path, str]:
    """{input: output stem}, after checking that no output can overwrite an input or another output of the run.

    ``earlier``: {image, links resolved: stem} of an earlier run into ``out`` (:meth:`RunFolder.earlier_rows`): an image
    named the same way again gets its stem back, and no other image takes one of those stems, so the earlier run's
    pictures of images not redone stay theirs (and their rows stay in ``scores.csv``). The same holds, whatever settings
    made them, for every picture the folder's :class:`Ledger` recorded with its image (:meth:`Ledger.stems_by_source`).
    Raises :class:`OutputFolderError` when ``out`` holds inputs whose names could
    collide with the outputs (an input named like an output, e.g. the output of
    an earlier run into the same folder): choose another ``--out``.
    """
    earlier = {**Ledger(out).stems_by_source(endings[0]), **(earlier or {})}
    used: set[str] = set(earlier.values())
    stems = {path: earlier.get(_resolved(path)) or unique_stem(path, used) for path in files}
    inputs = {_resolved(path) for path in files}
    out_resolved = out.resolve()
    inside = [path for path in files if _resolved(path).parent == out_resolved]
    lookalikes = [path.name for path in inside if path.name.endswith(LOCALIZE_OUTPUTS + ELA_OUTPUTS + FORMER_OUTPUTS)]
    if lookalikes:
        raise OutputFolderError(f"--out {out}: the folder holds inputs named like this command's outputs ({', '.join(lookalikes[:3])}"
                                f"{' ...' if len(lookalikes) > 3 else ''}), perhaps from an earlier run; choose an output folder that "
                                "holds no inputs, or move those files.")
    for path, stem in stems.items():
        for ending in endings:
            target = (out / f"{stem}{ending}").resolve()
            if target in inputs:
                raise OutputFolderError(f"--out {out}: writing {target.name} would overwrite the input {target}; choose an output folder "
                                        "that holds no inputs.")
    return stems


def write_outputs(out: Path, stem: str, source: Path, image: np.ndarray, probability: np.ndarray, threshold: float,
                  calibration: tuple = (), pairs: list | None = None, ledger: "Ledger | None" = None) -> Written:
    """Write ``<stem>_probability.png`` (0..255), ``<stem>_mask.png`` (0/255) and ``<stem>_overlay.jpg``
    (:data:`LOCALIZE_PICTURES`); ``pairs``: duplicated regions (:class:`~pmsp_utils.copymove.DuplicatedPair`) drawn on
    the overlay, an arrow from each source to its copy. ``ledger``: the folder's :class:`Ledger`, which records the
    pictures once written (the caller claims their names first, before any work for the image: :meth:`Ledger.claim`)."""
    mask = probability >= threshold
    files = tuple(out / f"{stem}{ending}" for ending, _, _ in LOCALIZE_PICTURES)
    pictures = (lambda: probability_picture(probability), lambda: mask.view(np.uint8) * np.uint8(255),
                lambda: draw_pairs(overlay(image, mask), pairs or []))
    written = []
    try:
        for path, picture, (_, format, options) in zip(files, pictures, LOCALIZE_PICTURES):  # one full-size picture alive at a time
            save_picture_atomic(path, picture(), format, **options)
            written.append(path)
        if ledger is not None:
            ledger.record(*files, source=source)  # a picture the ledger does not list would be refused by the next run: written with it or not at all
    except OSError:
        for path in written:  # no image leaves half its outputs behind, nor outputs its ledger does not list
            path.unlink(missing_ok=True)
        raise
    return Written(source, tamper_score(probability, calibration), float(mask.mean()), files)


class Ledger:
    """What pmsp wrote into an output folder, by name and SHA-256, and for each picture the image it was made from
    (``.pmsp-written.json``): the proof, not a guess from the name, that a file there may be replaced, and whose it is.

    A file is replaced only when the ledger lists it with the hash it still has: a user's own file of the same name,
    or a file pmsp wrote that someone edited since, is never replaced (:meth:`claim` raises). Older ledgers (a list
    of names, without hashes) count as proof for their names.
    """

    NAME = ".pmsp-written.json"

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)

    def _raw(self) -> dict:
        import json

        path = self.out / self.NAME
        if not path.exists():
            return {}
        try:
            values = json.loads(path.read_text())
        except (OSError, ValueError, TypeError):
            raise OutputFolderError(f"{path}: pmsp's record of what it wrote there is damaged (not JSON), so it cannot tell its "
                                    "files from yours and replaces none: delete that file and pmsp's outputs beside it, or "
                                    "choose another --out.") from None
        if isinstance(values, list):
            return {str(name): None for name in values}
        return {str(name): value for name, value in values.items()} if isinstance(values, dict) else {}

    def entries(self) -> dict[str, str | None]:
        """{name: SHA-256, or None for an older ledger's bare name}."""
        return {name: value.get("sha256") if isinstance(value, dict) else value for name, value in self._raw().items()}

    def stems_by_source(self, ending: str) -> dict[Path, str]:
        """{input image, links resolved: the stem of its pictures} for the pictures ending in ``ending`` that are still
        there, as recorded with their source (:meth:`record`): whatever settings made them, another image named the same
        way gets another stem, and the same image its own back."""
        stems = {}
        for name, value in self._raw().items():
            if isinstance(value, dict) and value.get("source") and name.endswith(ending) and (self.out / name).is_file():
                stems[Path(value["source"])] = name[: -len(ending)]
        return stems

    def owns(self, name: str) -> bool:
        """Whether ``name`` is absent, or pmsp wrote it and it is unchanged since."""
        path = self.out / name
        if not path.exists() and not path.is_symlink():
            return True
        entries = self.entries()
        if name not in entries or path.is_symlink() or not path.is_file():
            return False
        return entries[name] is None or entries[name] == _digest(path)

    def claim(self, *names: str) -> None:
        """Raise :class:`OutputFolderError` unless every one of ``names`` may be written (see :meth:`owns`)."""
        for name in names:
            if not self.owns(name):
                raise OutputFolderError(f"{self.out / name}: already there, and pmsp did not write it (or it was changed since); "
                                        "it is never replaced. Move it, or choose another --out.")

    def record(self, *paths: Path, source: Path | None = None) -> None:
        """Note ``paths`` (just written) with their hashes, and the input image they were made from (``source``)."""
        made = {Path(path).name: _digest(Path(path)) for path in paths}
        if source is not None:
            made = {name: {"sha256": digest, "source": str(_resolved(Path(source)))} for name, digest in made.items()}
        self._save({**self._raw(), **made})

    def forget(self, *names: str) -> None:
        """Drop ``names`` (files pmsp renamed or removed) from the ledger."""
        entries = self._raw()
        if any(name in entries for name in names):
            self._save({name: value for name, value in entries.items() if name not in names})

    def _save(self, entries: dict) -> None:
        import json

        write_text_atomic(self.out / self.NAME, json.dumps(entries, indent=0, sort_keys=True))


class RunFolder:
    """One command's output folder, kept safe: a lock against a second run, a table written as the run goes, and a
    ledger of what pmsp wrote there.

    * A second run into the same folder is refused while the first holds the lock (a lock left by a killed run, whose
      process is gone, is taken over).
    * A ``scores.csv`` that pmsp did not write there, or that was edited since (the :class:`Ledger` says), is never
      replaced: the run is refused.
    * While the run goes, its table is ``scores.incomplete.csv``, rewritten atomically after every image, so after any
      interruption it lists exactly the images whose outputs exist; only a finished run renames it ``scores.csv``
      (an earlier run's ``scores.csv`` is removed first, so it cannot pass for this run's).
    * ``settings``: what the rows depend on (model, threshold, policy ...), kept beside the table (``.pmsp-run.json``).
      ``earlier``: the rows an earlier run left (:meth:`earlier_rows`: its ``scores.csv``, or the partial table of a run
      that was stopped; read only when that run had the same settings). The rows of images this run has not started,
      whose three pictures are all still there and not rewritten, stay in the table after this run's rows; an image
      this run has started (:meth:`start`) is this run's to list (or not, when it fails), so the table lists every
      picture's image, a stopped run keeps the rows of the images it did not reach, and no two runs' settings mix.
    """

    TABLE, PARTIAL, LEDGER, LOCK, SETTINGS = "scores.csv", "scores.incomplete.csv", Ledger.NAME, ".pmsp.lock", ".pmsp-run.json"
    CWD = "working_folder"  # beside the settings: the folder the run's relative image names start from

    def __init__(self, out: Path, header: list[str], earlier: list[dict] | None = None, settings: dict | None = None) -> None:
        self.out, self.header, self.rows = Path(out), header, []
        self.given, self.earlier, self.dropped = list(earlier or ()), [], []
        self.settings, self.started, self.current, self.listed = settings, set(), None, set()  # listed: stems of this run's rows

    def _sort_earlier(self) -> None:
        """Checked once, with the lock held, before this run writes: an earlier row stays only while its three pictures
        are all there. When some are gone (removed by hand), the row goes, and so do the others, which pmsp wrote and
        which nobody changed since (the :class:`Ledger` says), so that no picture stays without its image's row:
        ``dropped`` lists (row, the missing names, the names removed) for the caller to report."""
        for row in self.given:
            names = [f"{row['_stem']}{ending}" for ending in LOCALIZE_OUTPUTS]
            missing = [name for name in names if not (self.out / name).is_file()]
            if not missing:
                self.earlier.append(row)
                continue
            self.dropped.append((row, missing, self._remove_own(row["_stem"])))

    def _remove_own(self, stem: str) -> list[str]:
        """Remove the pictures of ``stem`` that pmsp wrote and nobody changed since (the ledger says); their names."""
        removed = [name for name in (f"{stem}{ending}" for ending in LOCALIZE_OUTPUTS)
                   if (self.out / name).is_file() and self.ledger.owns(name)]
        for name in removed:
            (self.out / name).unlink(missing_ok=True)
        self.ledger.forget(*removed)
        return removed

    def dropped_except(self, files: Iterable[Path]) -> list[tuple[dict, list[str], list[str]]]:
        """The ``dropped`` earlier rows of images other than ``files`` (those this run does again)."""
        redone = {_resolved(Path(path)) for path in files}
        return [item for item in self.dropped if item[0]["_key"] not in redone]

    def start(self, image: Path, stem: str | None = None) -> None:
        """``image`` is this run's from now on: its earlier row goes, and only this run can list it again. ``stem``: its
        pictures' stem; when the image ends without a row (it failed, or the run was stopped while it was worked on),
        those of its pictures that pmsp wrote are removed, so that no picture stays without its image's row."""
        self._drop_unfinished()
        self.current = stem
        key = _resolved(Path(image))
        if key not in self.started:
            self.started.add(key)
            if any(row["_key"] == key for row in self.earlier):
                self._write()  # its earlier row leaves the table now: if it fails, no row of it stays

    @classmethod
    def earlier_rows(cls, out: Path, settings: dict | None = None) -> list[dict]:
        """The rows an earlier run left in ``out``: its ``scores.csv``, or, when it was stopped, its partial table. None
        when pmsp did not write that table or it was edited since (such a table is refused when the run starts), or
        when that run's settings were not ``settings``. Names written escaped (bytes that are not UTF-8) are restored."""
        import csv
        import json

        out, ledger = Path(out), Ledger(out)
        path = next((out / name for name in (cls.TABLE, cls.PARTIAL) if (out / name).is_file()), None)
        try:
            if path is None or not ledger.owns(path.name) or not ledger.owns(cls.SETTINGS):
                return []
            recorded = json.loads((out / cls.SETTINGS).read_text())
            folder = Path(recorded.pop(cls.CWD, None) or Path.cwd())  # relative names are the earlier run's, from its folder
            if recorded != settings:
                return []
            with path.open(newline="", encoding="utf-8") as handle:
                rows = [row for row in csv.DictReader(handle) if row.get("image") and row.get("probability_png")]
        except (OSError, ValueError, csv.Error, OutputFolderError):
            return []
        ending, kept = LOCALIZE_OUTPUTS[0], []
        for row in rows:  # each with its image's resolved path (_key) and its pictures' stem (_stem), worked out once
            image, picture = unescaped(row["image"]), unescaped(row["probability_png"])
            if not Path(image).is_absolute() and folder != Path.cwd():  # kept, it must still name its file from this run's folder
                image = str(folder / image)
            if picture.endswith(ending):
                kept.append({**row, "image": image, "probability_png": picture, "_key": _resolved(folder / image),
                             "_stem": picture[: -len(ending)]})
        return kept

    @staticmethod
    def earlier_stems(rows: list[dict]) -> dict[Path, str]:
        """{image, links resolved: output stem} of :meth:`earlier_rows`, for :func:`plan_outputs`."""
        return {row["_key"]: row["_stem"] for row in rows}

    def __enter__(self) -> "RunFolder":
        self._lock()
        try:
            self.ledger = Ledger(self.out)
            for name in (self.TABLE, self.PARTIAL, self.SETTINGS):  # every check before anything is removed
                if not self.ledger.owns(name):
                    raise OutputFolderError(f"--out {self.out}: it holds a {name} that pmsp did not write, or that was edited since "
                                            "pmsp wrote it; it is never replaced. Move it, or choose another output folder.")
            self._sort_earlier()
            for name in (self.TABLE, self.PARTIAL):
                (self.out / name).unlink(missing_ok=True)
            if self.settings is not None:
                import json

                write_text_atomic(self.out / self.SETTINGS, json.dumps({**self.settings, self.CWD: os.getcwd()}, sort_keys=True))
                self.ledger.record(self.out / self.SETTINGS)
            self._write()
        except OSError as error:
            self._unlock()
            raise _disk_full(self.out, error) from None
        except BaseException:
            self._unlock()
            raise
        return self

    def add(self, row: list[str]) -> None:
        """This run's row of the image last :meth:`start`-ed (whose pictures are written)."""
        self.rows.append(row)
        self.listed.add(self.current)
        self.current = None
        self._write()

    def _drop_unfinished(self) -> None:
        stem, self.current = self.current, None
        if stem is not None:
            self._remove_own(stem)

    def unlisted(self) -> list[str]:
        """Pictures pmsp wrote into the folder (the ledger lists them) that the table does not list: an earlier run's
        with other settings, whose rows this run does not take (each run's table lists its own settings' images).
        Asked once the run has ended (its unfinished image's pictures are gone then)."""
        listed = {f"{stem}{ending}" for stem in self.listed | {row["_stem"] for row in self._kept_rows()} for ending in LOCALIZE_OUTPUTS}
        return sorted(name for name in self.ledger.entries() if name.endswith(LOCALIZE_OUTPUTS) and name not in listed
                      and (self.out / name).is_file() and self.ledger.owns(name))

    def __exit__(self, kind, error, trace) -> None:
        try:
            self._drop_unfinished()
            if kind is None:
                os.replace(self.out / self.PARTIAL, self.out / self.TABLE)
                self.ledger.record(self.out / self.TABLE)
                self.ledger.forget(self.PARTIAL)
        finally:
            self._unlock()

    def _kept_rows(self) -> list[dict]:
        """The earlier rows still true: an image this run has not started, its three pictures there, none rewritten."""
        return [row for row in self.earlier if row["_key"] not in self.started and row["_stem"] not in self.listed]

    def _kept(self) -> list[list[str]]:
        return [[row.get(column) or "" for column in self.header] for row in self._kept_rows()]

    def _write(self) -> None:
        write_csv(self.out / self.PARTIAL, self.rows + self._kept(), self.header)
        self.ledger.record(self.out / self.PARTIAL)

    def _lock(self) -> None:
        lock = self.out / self.LOCK
        for _ in range(2):
            try:
                handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    owner = int(lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    owner = 0
                if owner and _alive(owner):
                    raise OutputFolderError(f"--out {self.out}: another pmsp run (process {owner}) is writing there; wait for it to "
                                            "finish, or choose another output folder.") from None
                lock.unlink(missing_ok=True)  # left by a run that was killed: take it over
                continue
            try:
                with os.fdopen(handle, "w") as stream:
                    stream.write(str(os.getpid()))
            except OSError as error:  # a full disk: no empty lock is left for a later run to puzzle over
                lock.unlink(missing_ok=True)
                raise _disk_full(self.out, error) from None
            return
        raise OutputFolderError(f"--out {self.out}: cannot take the lock {lock}; remove it if no pmsp run is writing there.")

    def _unlock(self) -> None:
        (self.out / self.LOCK).unlink(missing_ok=True)


def _disk_full(out: Path, error: OSError) -> Exception:
    """``error`` met while a run set up its folder, as one line naming ``out`` when the disk is full."""
    import errno

    if error.errno == errno.ENOSPC:
        return OutputFolderError(f"--out {out}: the disk is full; nothing was written. Free some space and run again.")
    return error


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
