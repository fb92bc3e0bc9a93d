"""Localize files: inputs expanded from files, folders and globs; maps, masks and overlays written.

Defined in 05_evaluation; behind ``pmsp localize IMAGE... --out DIR``.
"""

from __future__ import annotations

import glob
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from .data.records import IMAGE_SUFFIXES

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
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"{item}: a folder with no image files ({', '.join(sorted(IMAGE_SUFFIXES))}).")
            for found_path in found:
                add(found_path)
        elif any(character in item for character in "*?["):
            matches = sorted(Path(match) for match in glob.glob(item, recursive=True) if Path(match).is_file())
            if not matches:
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
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"--out {out}: exists and is not a folder; choose a folder path.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".pmsp-write-test-"):
            pass
    except OSError as error:
        raise OutputFolderError(f"--out {out}: cannot write there ({error.strerror or error}); choose a folder you can write to.") from error
    return out


def tamper_score(probability: np.ndarray, top_fraction: float = TOP_FRACTION) -> float:
    """An image-level score: the mean of the highest ``top_fraction`` of the pixel probabilities."""
    flat = np.asarray(probability, np.float32).ravel()
    count = max(1, int(round(flat.size * top_fraction)))
    return float(np.partition(flat, flat.size - count)[flat.size - count :].mean())


def overlay(image: np.ndarray, mask: np.ndarray, colour=(255, 0, 0), alpha: float = 0.45) -> np.ndarray:
    """The image with the predicted tampered pixels tinted."""
    tinted = np.repeat(image[..., None], 3, axis=2).astype(np.float32) if image.ndim == 2 else image[..., :3].astype(np.float32)
    tinted[mask] = (1 - alpha) * tinted[mask] + alpha * np.asarray(colour, np.float32)
    return np.clip(np.round(tinted), 0, 255).astype(np.uint8)


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


def unique_stem(path: Path, used: set[str]) -> str:
    """:func:`output_stem`, with _2, _3 ... when another input (same name, another folder) already used it."""
    base = output_stem(path)
    stem, number = base, 1
    while stem in used:
        number += 1
        stem = f"{base}_{number}"
    used.add(stem)
    return stem


LOCALIZE_OUTPUTS = ("_probability.png", "_mask.png", "_overlay.png")
ELA_OUTPUTS = ("_ela.png",)


def plan_outputs(files: list[Path], out: Path, endings: tuple[str, ...]) -> dict[Path, str]:
    """{input: output stem}, after checking that no output can overwrite an input or another output of the run.

    Raises :class:`OutputFolderError` when ``out`` holds inputs whose names could
    collide with the outputs (an input named like an output, e.g. the output of
    an earlier run into the same folder): choose another ``--out``.
    """
    used: set[str] = set()
    stems = {path: unique_stem(path, used) for path in files}
    inputs = {_resolved(path) for path in files}
    out_resolved = out.resolve()
    inside = [path for path in files if _resolved(path).parent == out_resolved]
    lookalikes = [path.name for path in inside if path.name.endswith(LOCALIZE_OUTPUTS + ELA_OUTPUTS)]
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


def write_outputs(out: Path, stem: str, source: Path, image: np.ndarray, probability: np.ndarray, threshold: float) -> Written:
    """Write ``<stem>_probability.png`` (0..255), ``<stem>_mask.png`` (0/255) and ``<stem>_overlay.png``."""
    mask = probability >= threshold
    files = (out / f"{stem}_probability.png", out / f"{stem}_mask.png", out / f"{stem}_overlay.png")
    pictures = (np.round(probability * 255).astype(np.uint8), mask.astype(np.uint8) * 255, overlay(image, mask))
    for path, picture in zip(files, pictures):
        temporary = path.with_name(f".{path.name}.tmp")
        Image.fromarray(picture).save(temporary, format="PNG", compress_level=1)  # fast; maps compress well anyway
        os.replace(temporary, path)
    return Written(source, tamper_score(probability), float(mask.mean()), files)
