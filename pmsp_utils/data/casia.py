"""CASIA v1.0 and v2.0 in their official layouts, with the Pham et al. masks. Defined in 02_forgery_datasets.

CASIA names encode the forgery (Pham et al.'s write-up of the convention):
``Sp_D_CND_A_pla0005_pla0023_0281.jpg`` (v1) and ``Tp_D_CRN_S_N_cha00063_art00014_11818.jpg``
(v2): ``Sp``/``Tp`` tampered, ``D`` region from a different image (splicing) or
``S`` from the same image (copy-move), technique codes never documented by the
authors, the source (donor) and target (host) image ids, and the image id.
Authentic images are ``Au_<category>_<number>``. Masks are ``<image stem>_gt.png``.

The loaders search ``root`` at any depth, so the official folders (``Au/``,
``Tp/``, ``Tp/Sp``, ``Tp/CM``), the groundtruth archive unpacked beside them,
and flat ``images/ masks/ authentic/`` copies all load. They handle the real
quirks: renamed files (FileNameCorrection), masks whose two source ids are
swapped, a mask rotated 90 degrees, a tampered image with no mask, mixed
extensions (.jpg, .JPG, .tif), L/RGB/RGBA masks with grey edges, a mask whose
size differs from its image (refused and reported, never resized), and
inverted masks (detected, flipped and reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .records import Dataset, Record, finish_mask, image_files, read_pair, size_mismatch

CATEGORIES = {
    "ani": "animal", "arc": "architecture", "art": "art", "cha": "characters", "ind": "indoor",
    "nat": "nature", "pla": "plants", "sec": "scene", "txt": "texture", "obj": "object",
}


@dataclass(frozen=True)
class CasiaName:
    """A CASIA file name taken apart."""

    stem: str
    kind: str
    codes: str
    source_ids: tuple[str, ...]
    image_id: str
    prefix: str  # the fields before the source ids, e.g. "Sp_D_CNN_A"

    def swapped_key(self) -> tuple:
        """Matches names that differ only in the order of the two source ids."""
        return (self.prefix, tuple(sorted(self.source_ids)), self.image_id)

    def loose_key(self) -> tuple:
        """Matches names that differ in the codes or the D/S letter (renamed files)."""
        return (tuple(sorted(self.source_ids)), self.image_id)


def parse_name(stem: str) -> CasiaName | None:
    """Parse a CASIA v1/v2 file stem; None for names that are not CASIA's."""
    fields = stem.split("_")
    if fields[0] == "Au" and len(fields) == 3:
        return CasiaName(stem, "authentic", "", (fields[1] + fields[2],), fields[2], "Au")
    if fields[0] in {"Sp", "Tp"} and len(fields) >= 6 and fields[1] in {"D", "S"}:
        kind = "splicing" if fields[1] == "D" else "copy-move"
        return CasiaName(stem, kind, "_".join(fields[2:-3]), (fields[-3], fields[-2]), fields[-1], "_".join(fields[:-3]))
    return None


def load_casia(
    root: str | Path,
    name: str,
    *,
    masks: str | Path | None = None,
    include_authentic: bool = True,
    fix_inverted: bool = True,
    show_progress: bool | None = None,
) -> Dataset:
    """Load a CASIA copy from ``root`` (masks searched under ``masks``, default ``root``)."""
    from ..progress import progress

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder. Download {name} (see data_manifest.csv) and pass its folder.")
    mask_root = Path(masks) if masks is not None else root
    dataset = Dataset(name=name, root=root)
    mask_files = {path.name[: -len("_gt.png")]: path for path in mask_root.rglob("*_gt.png")}
    images = [path for path in image_files(root) if not path.stem.endswith("_gt")]
    parsed = [(path, parse_name(path.stem)) for path in images]
    parsed = [(path, casia) for path, casia in parsed if casia is not None]
    if not parsed:
        raise FileNotFoundError(f"{root}: no CASIA images (Au_*, Sp_*, Tp_*) found at any depth. Is this the {name} folder?")

    unmatched = dict(mask_files)
    by_swapped, by_loose = {}, {}
    for stem in mask_files:
        casia = parse_name(stem)
        if casia is not None:
            by_swapped.setdefault(casia.swapped_key(), []).append(stem)
            by_loose.setdefault(casia.loose_key(), []).append(stem)

    pairs = []
    for path, casia in parsed:
        if casia.kind == "authentic":
            if include_authentic:
                dataset.records.append(Record(name, casia.stem, "authentic", path, source_ids=casia.source_ids))
            continue
        mask_stem, note = _find_mask(casia, unmatched, by_swapped, by_loose)
        if mask_stem is None:
            dataset.missing_masks.append(path)
            continue
        pairs.append((path, casia, unmatched.pop(mask_stem), mask_stem, note))
    dataset.unmatched_masks = sorted(unmatched.values())

    for path, casia, mask_path, mask_stem, note in progress(pairs, total=len(pairs), description=f"checking {name} masks", show=show_progress):
        record = _checked_record(name, path, casia, mask_path, mask_stem, note, dataset, fix_inverted)
        if record is not None:
            dataset.records.append(record)
    dataset.records.sort(key=lambda record: (record.kind, record.name))
    return dataset


def _find_mask(casia: CasiaName, unmatched: dict, by_swapped: dict, by_loose: dict) -> tuple[str | None, str | None]:
    if casia.stem in unmatched:
        return casia.stem, None
    candidates = [stem for stem in by_swapped.get(casia.swapped_key(), []) if stem in unmatched]
    if len(candidates) == 1:
        return candidates[0], "mask name has the two source ids swapped"
    candidates = [stem for stem in by_loose.get(casia.loose_key(), []) if stem in unmatched]
    if len(candidates) == 1:
        return candidates[0], "file renamed to the mask's (corrected) name, as in FileNameCorrection"
    # A typo in one source id of the image's name (CASIA v1's ``ant0063`` for ``nat0063``): the same prefix and image
    # id, the other source id shared, and only one such mask left.
    candidates = [stem for stem in unmatched if (other := parse_name(stem)) is not None and other.prefix == casia.prefix
                  and other.image_id == casia.image_id and set(other.source_ids) & set(casia.source_ids)]
    if len(candidates) == 1:
        return candidates[0], "mask name differs in one source id (a typo in the image's name)"
    return None, None


def _checked_record(name, path, casia, mask_path, mask_stem, note, dataset: Dataset, fix_inverted: bool) -> Record | None:
    notes = [note] if note else []
    renamed = bool(note) and note.startswith(("file renamed", "mask name differs in one source id"))
    canonical = parse_name(mask_stem) if renamed else casia
    pair = read_pair(path, mask_path, dataset, notes)
    if pair is None:
        return None
    mask, height, width = pair
    rotation = 0
    if mask.shape != (height, width):
        if mask.shape != (width, height):
            dataset.inconsistent.append((path, size_mismatch(mask, height, width)))
            return None
        rotation, evidence = mask_rotation(path, mask)
        if canonical.kind == "copy-move":
            rotation = 0  # the copied content lies elsewhere in the image too: edge evidence misleads
        if rotation == 0:
            dataset.inconsistent.append((path, f"mask is rotated 90 degrees but the direction is unclear ({evidence}); not used"))
            return None
        notes.append(f"mask rotated {90 * rotation} degrees to fit its image ({evidence})")
        mask = np.rot90(mask, rotation)
    flip = finish_mask(path, mask, dataset, fix_inverted, notes)
    if flip is None:
        return None
    if renamed:
        notes.append(f"image file name: {path.name}")
    record = Record(
        name, canonical.stem, canonical.kind, path, mask_path, canonical.source_ids, canonical.codes,
        mask_rotation=rotation, invert_mask=flip, notes=tuple(notes),
    )
    for text in notes:
        dataset.fixes.append((record.name, text))
    return record


def mask_rotation(image_path: Path, mask: np.ndarray, *, margin: float = 1.5) -> tuple[int, str]:
    """Which quarter turn (1 or 3) aligns a transposed mask with its image, judged by edges.

    The boundary of a pasted region usually follows strong image edges. The
    turn whose mask boundary sits on the larger mean gradient wins if it beats
    the other by ``margin``; otherwise 0 (undecided). Returns (turns, evidence).

    Measured on 300 real CASIA v1 masks turned the wrong way on purpose: at
    margin 1.5, 223 decided, no splicing mask wrong, 4 copy-move masks wrong
    (the copied content also lies elsewhere). The loader therefore turns only
    splicing masks and refuses rotated copy-move masks.
    """
    from ..images import load_image

    gray = np.asarray(load_image(image_path).to_display().convert("L"), dtype=np.float32)
    gradient = np.hypot(*np.gradient(gray))
    scores = {}
    for turns in (1, 3):
        candidate = np.rot90(mask, turns).astype(bool)
        boundary = candidate & ~_erode(candidate)
        scores[turns] = float(gradient[boundary].mean()) if boundary.any() else 0.0
    best, other = (1, 3) if scores[1] >= scores[3] else (3, 1)
    evidence = f"edge score {scores[best]:.1f} vs {scores[other]:.1f}"
    return (best if scores[best] >= margin * max(scores[other], 1e-6) else 0), evidence


def _erode(mask: np.ndarray) -> np.ndarray:
    """One step of binary erosion with a 3x3 cross (pure NumPy)."""
    padded = np.pad(mask, 1, constant_values=False)
    return padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


def load_casia1(root: str | Path, **options) -> Dataset:
    """CASIA v1.0 (920 tampered with Pham et al. masks, 800 authentic) from its folder."""
    return load_casia(root, "casia1", **options)


def load_casia2(root: str | Path, **options) -> Dataset:
    """CASIA v2.0 (5123 tampered with Pham et al. masks, 7491 authentic) from its folder."""
    return load_casia(root, "casia2", **options)


def read_name_corrections(path: str | Path) -> dict[str, str]:
    """{original file name: corrected file name} from the masks' ``FileNameCorrection.xlsx`` (read with the standard
    library: an .xlsx is a zip of XML), for the CASIA images whose names the mask release corrects."""
    import io
    import zipfile
    import xml.etree.ElementTree as ElementTree

    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    with zipfile.ZipFile(io.BytesIO(Path(path).read_bytes())) as book:
        strings = [''.join(text.text or '' for text in item.iter(f"{main}t"))
                   for item in ElementTree.fromstring(book.read("xl/sharedStrings.xml")).findall(f"{main}si")]
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    corrections = {}
    for row in sheet.iter(f"{main}row"):
        values = {}
        for cell in row.findall(f"{main}c"):
            value = cell.find(f"{main}v")
            if value is not None:
                values[cell.get("r", "").rstrip("0123456789")] = strings[int(value.text)] if cell.get("t") == "s" else value.text
        original, corrected = values.get("B", ""), values.get("C", "")
        if original.lower().endswith((".jpg", ".jpeg", ".tif", ".bmp")) and corrected and original != corrected:
            corrections[original] = corrected
    return corrections
