"""The generic layout: ``images/`` with ``masks/`` beside it, and optionally ``authentic/``.

Used for IFS-TC, COVERAGE, Columbia, NIST16, IMD2020, Korus' set and your own
data. A mask matches an image by stem, with or without a suffix such as
``_gt`` or ``_mask``, in any image format; where two images share a stem (``a.jpg``
and ``a.png``), only a mask named after an image's whole name (``a.jpg.png``) is
taken. A mask named exactly after one image (``a_gt.png`` beside ``a_gt.jpg``) is
that image's only, never another's by suffix (``a.jpg``), and no mask is paired
with two images. Defined in 02_forgery_datasets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from .records import KINDS, Dataset, Record, finish_mask, image_files, read_pair, size_mismatch

MASK_SUFFIXES = ("", "_gt", "_mask", "_groundtruth", "-mask", "_forged")


def load_folder(
    root: str | Path,
    name: str = "folder",
    *,
    kind: str = "splicing",
    images: str = "images",
    masks: str = "masks",
    authentic: str = "authentic",
    fix_inverted: bool = True,
) -> Dataset:
    """Load ``root/images`` (tampered, ``kind``) with ``root/masks`` and optional ``root/authentic``."""
    root = Path(root)
    if kind not in KINDS or kind == "authentic":
        raise ValueError(f"kind must be 'splicing' or 'copy-move' (the tampered images' type), got {kind!r}.")
    image_folder, mask_folder = root / images, root / masks
    for folder in (image_folder, mask_folder):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder}: no such folder. The generic layout is {root}/{images}/ (tampered images), "
                f"{root}/{masks}/ (their masks) and optionally {root}/{authentic}/."
            )
    dataset = Dataset(name=name, root=root)
    mask_files, same_stem = {}, {}
    for mask in image_files(mask_folder):  # a_gt.png beside a_gt.tif: one name, two files (either could be meant)
        same_stem.setdefault(mask.stem, []).append(mask)
        mask_files.setdefault(mask.stem, mask)
    used = set()
    tampered = image_files(image_folder)
    shared = Counter(path.stem for path in tampered)
    # A mask named exactly after an image (its stem, or its whole name: a_gt.png for a_gt.jpg) is that image's alone:
    # a.jpg beside a_gt.jpg does not take a_gt.png through the _gt suffix.
    exact: dict[str, set[Path]] = {}
    for path in tampered:
        for key in {path.stem, path.name}:
            exact.setdefault(key, set()).add(path)

    def free(path: Path, key: str) -> bool:  # a mask this image may take: named after it exactly, or after no image
        return key in mask_files and (key not in exact or path in exact[key])

    chosen: dict[Path, Path] = {}
    for path in tampered:
        # A mask named after the image's whole name (a.jpg.png, a.jpg_mask.png) is that image's; one named after its stem
        # only while no other image shares the stem (a.jpg beside a.png are two pictures: a.png's mask is neither's).
        fitting = [path.name + suffix for suffix in MASK_SUFFIXES if free(path, path.name + suffix)]
        if not fitting and shared[path.stem] == 1:
            fitting = [path.stem + suffix for suffix in MASK_SUFFIXES if free(path, path.stem + suffix)]
        candidates = sorted({mask for key in fitting for mask in same_stem[key]})
        if len(candidates) > 1:  # a_gt.png and a_mask.png, or a_gt.png and a_gt.tif: which one is meant is not ours to guess
            dataset.inconsistent.append((path, f"has {len(candidates)} masks ({', '.join(mask.name for mask in candidates)}); "
                                               "not used: keep one"))
            used.update(fitting)
            continue
        if candidates:
            chosen[path] = candidates[0]
            continue
        stem_keys = [path.stem + suffix for suffix in MASK_SUFFIXES if free(path, path.stem + suffix)]
        if shared[path.stem] > 1 and stem_keys:
            others = ", ".join(sorted(other.name for other in tampered if other.stem == path.stem and other != path))
            dataset.inconsistent.append((path, f"shares its stem with {others}, so a mask named {path.stem}.* could be either's; "
                                               f"name this image's mask after its whole name ({path.name}.png) or rename one image"))
            used.update(stem_keys)
        else:
            dataset.missing_masks.append(path)
    # No mask is paired with two images: where two still claim one (a.jpg and a.jpg.tif both fit a.jpg_gt.png), neither gets it.
    claims = Counter(chosen.values())
    for path, mask_path in chosen.items():
        used.add(mask_path.stem)
        if claims[mask_path] > 1:
            others = ", ".join(sorted(other.name for other, taken in chosen.items() if taken == mask_path and other != path))
            dataset.inconsistent.append((path, f"mask {mask_path.name} fits the name of this image and of {others}, so it could be "
                                               "either's; not used: rename the mask or one of the images"))
            continue
        record = _checked(name, kind, path, mask_path, dataset, fix_inverted)
        if record is not None:
            dataset.records.append(record)
    dataset.unmatched_masks = sorted(path for stem, path in mask_files.items() if stem not in used)
    untouched = image_files(root / authentic) if (root / authentic).is_dir() else []
    for path in untouched:
        dataset.records.append(Record(name, path.stem, "authentic", path))
    # a.jpg beside a.png: two images, two names (a record's name is its stem only while no other image shares it, scored
    # or not: a.png without a mask still makes a.jpg "a.jpg", so that another evaluation scoring a.png cannot pair with it)
    stems = Counter(path.stem for path in [*tampered, *untouched])
    dataset.records = [replace(record, name=record.image_path.name) if stems[record.image_path.stem] > 1 else record
                       for record in dataset.records]
    # images/a.jpg beside authentic/a.jpg: one file name, two images (one tampered, one not); named with their folder
    names = Counter(record.name for record in dataset.records)
    dataset.records = [replace(record, name=f"{record.image_path.parent.name}/{record.image_path.name}") if names[record.name] > 1
                       else record for record in dataset.records]
    dataset.records.sort(key=lambda record: (record.kind, record.name))
    return dataset


def _checked(name, kind, path, mask_path, dataset: Dataset, fix_inverted: bool) -> Record | None:
    notes: list[str] = []
    pair = read_pair(path, mask_path, dataset, notes)
    if pair is None:
        return None
    mask, height, width = pair
    if mask.shape != (height, width):
        dataset.inconsistent.append((path, size_mismatch(mask, height, width, path)))
        return None
    flip = finish_mask(path, mask, dataset, fix_inverted, notes)
    if flip is None:
        return None
    for note in notes:
        dataset.fixes.append((path.stem, note))
    return Record(name, path.stem, kind, path, mask_path, invert_mask=flip, notes=tuple(notes))
