"""Reproducible splits, deterministic from file names. Defined in 02_forgery_datasets.

Each record's place comes from a hash of its name (and a salt), never from
directory order or a random permutation: the same files give the same split
on every machine, and adding a file moves at most the records next to a cut.
Within each manipulation type the records are ordered by that hash and cut at
the requested fractions, so every type is split in the same proportions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .records import KINDS, Record
from ..safe_write import write_text_atomic

PAPER_FRACTIONS = (0.90, 0.05, 0.05)  # train, validation, test (the paper's section 4.1)
SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    """Records divided into train, validation and test, with the protocol that made them."""

    train: tuple[Record, ...]
    validation: tuple[Record, ...]
    test: tuple[Record, ...]
    protocol: str

    def parts(self) -> dict[str, tuple[Record, ...]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def counts(self) -> dict[str, dict[str, int]]:
        """{split: {kind: count}}."""
        return {part: {kind: sum(r.kind == kind for r in records) for kind in KINDS} for part, records in self.parts().items()}

    def to_lists(self, folder: str | Path) -> list[Path]:
        """Write ``train.txt``, ``validation.txt`` and ``test.txt`` (``dataset/name``, a tab and the content hash, a line)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for part, records in self.parts().items():
            path = folder / f"{part}.txt"
            write_split_list(path, records)
            written.append(path)
        write_text_atomic(folder / "protocol.txt", self.protocol + "\n")
        return written

    @classmethod
    def from_lists(cls, folder: str | Path, records: Iterable[Record]) -> "Split":
        """Rebuild a split written by :meth:`to_lists` from the same dataset's records."""
        folder = Path(folder)
        records = list(records)
        by_key = {f"{record.dataset}/{record.name}": record for record in records}
        by_hash: dict[str, Record] | None = None
        parts = {}
        for part in SPLIT_NAMES:
            entries = read_split_list(folder / f"{part}.txt")
            if any(digest for _, digest in entries) and by_hash is None:
                by_hash = {content_hash(record.image_path): record for record in records}
            chosen = [by_hash.get(digest) if digest else by_key.get(key) for key, digest in entries]
            missing = [key for (key, _), record in zip(entries, chosen) if record is None]
            if missing:
                raise ValueError(f"{folder / (part + '.txt')}: {len(missing)} of {len(entries)} listed images are not in the "
                                 f"dataset, e.g. {', '.join(missing[:3])}; check that the lists belong to this copy of the data.")
            parts[part] = tuple(chosen)
        protocol_file = folder / "protocol.txt"
        protocol = protocol_file.read_text().strip() if protocol_file.exists() else f"lists from {folder}"
        return cls(parts["train"], parts["validation"], parts["test"], protocol)


def content_hash(path: str | Path) -> str:
    """A key for an image file that survives renaming and a change of loader: ``blake2b:`` and 32 hex digits of its bytes."""
    return "blake2b:" + hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


def write_split_list(path: str | Path, records: Iterable[Record]) -> Path:
    """One line per record: ``dataset/name``, a tab, and its :func:`content_hash` (the name alone when the file cannot be read)."""

    def line(record: Record) -> str:
        try:
            return f"{record.dataset}/{record.name}\t{content_hash(record.image_path)}\n"
        except OSError:
            return f"{record.dataset}/{record.name}\n"

    path = Path(path)
    return write_text_atomic(path, "".join(line(record) for record in records))


def read_split_list(path: str | Path) -> list[tuple[str, str | None]]:
    """[(``dataset/name``, content hash or None)] from a split list (lists from before hashes hold names only)."""
    entries = []
    for line in Path(path).read_text().splitlines():
        fields = line.split("\t")
        if fields[0].strip():
            entries.append((fields[0].strip(), fields[1].strip() if len(fields) > 1 and fields[1].strip() else None))
    return entries


def _content_or_none(path) -> str | None:
    try:
        return content_hash(path)
    except OSError:
        return None


def name_hash(name: str, salt: str = "pmsp") -> int:
    """A stable 64-bit number from a name (the same everywhere, unlike Python's hash())."""
    return int.from_bytes(hashlib.blake2b(f"{salt}/{name}".encode(), digest_size=8).digest(), "big")


def _check_fractions(fractions) -> None:
    """Train, validation and test shares: three non-negative numbers summing to 1."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}.")


def paper_split(records: Iterable[Record], fractions: tuple[float, float, float] = PAPER_FRACTIONS, *, salt: str = "pmsp") -> Split:
    """The paper's protocol: 90% train, 5% validation, 5% test, stratified by manipulation type."""
    _check_fractions(fractions)
    records = list(records)
    if not records:
        raise ValueError("cannot split an empty dataset.")
    parts = {part: [] for part in SPLIT_NAMES}
    for kind in KINDS:
        stratum = sorted((r for r in records if r.kind == kind), key=lambda r: (name_hash(f"{r.dataset}/{r.name}", salt), r.name))
        n_train = round(fractions[0] * len(stratum))
        n_validation = round((fractions[0] + fractions[1]) * len(stratum)) - n_train
        parts["train"] += stratum[:n_train]
        parts["validation"] += stratum[n_train : n_train + n_validation]
        parts["test"] += stratum[n_train + n_validation :]
    # The same image under two names is one image: every copy goes where its first copy (in train, validation, test order) went.
    home: dict[str, str] = {}
    for part in SPLIT_NAMES:
        for record in parts[part]:
            digest = _content_or_none(record.image_path)
            if digest is not None:
                home.setdefault(digest, part)
    moved = {part: [] for part in SPLIT_NAMES}
    for part in SPLIT_NAMES:
        for record in parts[part]:
            digest = _content_or_none(record.image_path)
            moved[home.get(digest, part) if digest is not None else part].append(record)
    parts = moved
    names = {dataset for dataset in (r.dataset for r in records)}
    protocol = (
        f"paper split of {'+'.join(sorted(names))}: {fractions[0]:.0%}/{fractions[1]:.0%}/{fractions[2]:.0%} "
        f"train/validation/test per manipulation type, ordered by blake2b('{salt}/dataset/name')"
    )
    return Split(*(tuple(sorted(parts[p], key=lambda r: r.name)) for p in SPLIT_NAMES), protocol)


def cross_dataset_split(train_records: Iterable[Record], test_records: Iterable[Record], validation_fraction: float = 0.05, *, salt: str = "pmsp") -> Split:
    """Train (and validate) on one dataset, test on all of another."""
    train_records, test_records = list(train_records), list(test_records)
    inner = paper_split(train_records, (1.0 - validation_fraction, validation_fraction, 0.0), salt=salt)
    train_names = sorted({r.dataset for r in train_records})
    test_names = sorted({r.dataset for r in test_records})
    if set(train_names) & set(test_names):
        raise ValueError(f"cross-dataset split needs different datasets, got {train_names} and {test_names}.")
    protocol = (
        f"cross-dataset: train {'+'.join(train_names)} ({1 - validation_fraction:.0%} train / {validation_fraction:.0%} "
        f"validation per type, by name hash), test all of {'+'.join(test_names)}"
    )
    return Split(inner.train, inner.validation, tuple(sorted(test_records, key=lambda r: r.name)), protocol)


def source_groups(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Records joined into groups that share a source image (union of ``source_ids``), keyed by the group's first id.

    CASIA names carry the ids of the photos a forgery was made from
    (``Sp_D_NRN_A_ani0097_ani0082_0427``): two forgeries that share a photo show
    the same scene, so they belong on the same side of a split. A record without
    source ids is a group of its own.
    """
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    records = list(records)
    keys = [tuple(record.source_ids) or (f"{record.dataset}/{record.name}",) for record in records]
    # The same image under two names is one image: its records share a group (by content, the hash the split lists keep).
    anchors: dict[str, str] = {}
    for index, record in enumerate(records):
        digest = _content_or_none(record.image_path)
        if digest is None:
            continue
        anchor = anchors.setdefault(digest, keys[index][0])
        if anchor != keys[index][0]:
            keys[index] = keys[index] + (anchor,)  # joined to the first copy's group below
    for ids in keys:
        for other in ids[1:]:
            first, second = root(ids[0]), root(other)
            if first != second:
                parent[max(first, second)] = min(first, second)
    groups: dict[str, list[Record]] = {}
    for record, ids in zip(records, keys):
        groups.setdefault(root(ids[0]), []).append(record)
    return groups


GROUPED_FRACTIONS = (0.86, 0.07, 0.07)


def grouped_split(records: Iterable[Record], fractions: tuple[float, float, float] = GROUPED_FRACTIONS, *, salt: str = "pmsp") -> Split:
    """Train/validation/test with every group of records that share a source photo on one side (see :func:`source_groups`).

    Groups are ordered by a hash of their key (the same on every machine) and
    dealt to validation, then test, until each holds its fraction of the images;
    the rest train. Parts hold whole groups, so their sizes are close to, not
    exactly, the fractions.
    """
    _check_fractions(fractions)
    records = list(records)
    if not records:
        raise ValueError("cannot split an empty dataset.")
    groups = source_groups(records)
    order = sorted(groups, key=lambda key: (name_hash(key, salt), key))
    wanted = {"validation": fractions[1] * len(records), "test": fractions[2] * len(records)}
    parts: dict[str, list[Record]] = {part: [] for part in SPLIT_NAMES}
    for key in order:
        part = next((name for name in ("validation", "test") if len(parts[name]) + len(groups[key]) / 2 <= wanted[name]), "train")
        parts[part] += groups[key]
    names = sorted({record.dataset for record in records})
    protocol = (
        f"grouped split of {'+'.join(names)} by source photo: {len(groups)} groups of forgeries sharing a source id, "
        f"whole groups dealt in blake2b('{salt}/group') order to about {fractions[1]:.0%} validation and "
        f"{fractions[2]:.0%} test, the rest train; no source photo on two sides"
    )
    return Split(*(tuple(sorted(parts[p], key=lambda r: r.name)) for p in SPLIT_NAMES), protocol)


#: The split protocols by name, each with the words that describe it in tables and cards.
SPLIT_PROTOCOL_WORDS = {"paper": "paper split (90/5/5 by name hash)",
                        "grouped": "grouped split (by source photo, about 86/7/7; no source photo on two sides)"}
SPLIT_PROTOCOLS = tuple(SPLIT_PROTOCOL_WORDS)


def split_by(protocol: str, records: Iterable[Record]) -> Split:
    """The split a protocol names (:data:`SPLIT_PROTOCOLS`): what training, evaluation and the ship scripts all call."""
    if protocol == "paper":
        return paper_split(records)
    if protocol == "grouped":
        return grouped_split(records)
    raise ValueError(f"split protocol must be one of {SPLIT_PROTOCOLS}, got {protocol!r}.")
