"""``verify(dataset, root)``: what a downloaded copy holds, against the manifest. Defined in 02_forgery_datasets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .manifest import ManifestEntry, read_manifest
from .records import Dataset


@dataclass
class VerifyReport:
    """What was found: counts against the manifest, and every problem, as data and as text (``str()``)."""

    source: str
    root: Path
    counts: dict[str, int]
    expected: dict[str, int | None]
    missing_masks: list[Path] = field(default_factory=list)
    unmatched_masks: list[Path] = field(default_factory=list)
    inconsistent: list[tuple[Path, str]] = field(default_factory=list)
    fixes: list[tuple[str, str]] = field(default_factory=list)
    checksums: list[tuple[str, str]] = field(default_factory=list)  # (file, "ok" | "MISMATCH" | "absent")

    @property
    def missing_counts(self) -> dict[str, int]:
        """How many of each kind the manifest promises but the copy lacks."""
        present = {"tampered": self.counts["splicing"] + self.counts["copy-move"], "authentic": self.counts["authentic"]}
        return {kind: max(0, (self.expected[kind] or 0) - present[kind]) for kind in ("tampered", "authentic") if self.expected[kind] is not None}

    @property
    def ok(self) -> bool:
        """True when the copy is complete and every pair is usable."""
        return not (
            self.missing_masks or self.unmatched_masks or self.inconsistent
            or any(self.missing_counts.values()) or any(status == "MISMATCH" for _, status in self.checksums)
        )

    def __str__(self) -> str:
        tampered = self.counts["splicing"] + self.counts["copy-move"]
        lines = [f"{self.source} at {self.root}: {'complete' if self.ok else 'NOT complete or NOT consistent'}"]
        for kind, present in (("tampered", tampered), ("authentic", self.counts["authentic"])):
            expected = self.expected[kind]
            status = "" if expected is None else f" of {expected} expected" + (f" ({expected - present} missing)" if present < expected else "")
            lines.append(f"  {kind}: {present} usable{status}")
        lines.append(f"    splicing {self.counts['splicing']}, copy-move {self.counts['copy-move']}")
        for title, items in (
            ("tampered images without a mask", self.missing_masks),
            ("masks without an image", self.unmatched_masks),
        ):
            if items:
                lines.append(f"  {title}: {len(items)}")
                lines += [f"    {item}" for item in items[:10]] + ([f"    ... and {len(items) - 10} more"] if len(items) > 10 else [])
        if self.inconsistent:
            lines.append(f"  pairs refused: {len(self.inconsistent)}")
            lines += [f"    {path.name}: {why}" for path, why in self.inconsistent[:10]]
        if self.fixes:
            lines.append(f"  fixed while loading: {len(self.fixes)}")
            lines += [f"    {name}: {what}" for name, what in self.fixes[:10]] + ([f"    ... and {len(self.fixes) - 10} more"] if len(self.fixes) > 10 else [])
        for name, status in self.checksums:
            lines.append(f"  checksum of {name}: {status}")
        return "\n".join(lines)


def load_dataset(source: str, root: str | Path, *, manifest: str | Path | None = None, **options) -> Dataset:
    """Load any source of the manifest from ``root`` with the loader its layout names."""
    from .casia import load_casia
    from .folder import load_folder

    entry = _entry(source, manifest)
    if entry.layout in {"casia1", "casia2"}:
        return load_casia(root, source, **options)
    if entry.layout == "folder":
        kind = options.pop("kind", "splicing" if entry.manipulation in {"splicing", "mixed"} else entry.manipulation)
        return load_folder(root, source, kind=kind, **options)
    raise ValueError(f"{source!r} is {entry.layout}: it is not loaded from a folder (see pmsp_utils.data.synthetic).")


def verify(source: str, root: str | Path, *, manifest: str | Path | None = None, decode: bool = False,
           show_progress: bool | None = None, **options) -> VerifyReport:
    """Check a downloaded copy of ``source`` at ``root``: counts, pairs, quirks and checksums.

    With ``decode``, every image is also decoded in full (with a progress bar) and
    checked against its mask, so the report lists everything training and
    evaluation would later refuse: truncated or corrupt images as well as the
    empty, all-tampered, inverted, grey and mis-sized masks the loader finds.
    """
    entry = _entry(source, manifest)
    dataset = load_dataset(source, root, manifest=manifest, **options)
    if decode:
        dataset.records, refused = usable_records(dataset.records, show_progress=show_progress)
        dataset.inconsistent += refused
    checksums = []
    if entry.sha256:
        archive = Path(root) / entry.archive
        checksums.append((entry.archive, "absent" if not archive.exists() else ("ok" if sha256(archive) == entry.sha256 else "MISMATCH")))
    return VerifyReport(
        source=source,
        root=Path(root),
        counts=dataset.counts(),
        expected={"tampered": entry.tampered, "authentic": entry.authentic},
        missing_masks=dataset.missing_masks,
        unmatched_masks=dataset.unmatched_masks,
        inconsistent=dataset.inconsistent,
        fixes=dataset.fixes,
        checksums=checksums,
    )


def usable_records(records, *, show_progress: bool | None = None, decode=None) -> tuple[list, list[tuple[Path, str]]]:
    """(records that decode in full with a mask of their size, [(image path, why) for the others]).

    ``decode(record)`` returns (image, mask) (default: :func:`pmsp_utils.images.load_image` and the
    record's mask); training passes its ELA cache, so this pass also fills the cache.
    """
    from ..images import load_image
    from ..progress import progress

    def read(record):
        image = np.asarray(load_image(record.image_path).to_display())
        return image, record.load_mask(image.shape[:2])

    records = list(records)
    usable, refused = [], []
    for record in progress(records, total=len(records), description="decoding images", show=show_progress):
        try:
            image, mask = (decode or read)(record)
            if mask.shape != image.shape[:2]:
                raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {image.shape[1]}x{image.shape[0]}")
        except (ValueError, OSError) as error:
            refused.append((record.image_path, f"cannot be used: {error}"))
            continue
        usable.append(record)
    return usable, refused


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _entry(source: str, manifest) -> ManifestEntry:
    entries = read_manifest(manifest)
    if source not in entries:
        raise ValueError(f"Unknown data source {source!r}; the manifest names {sorted(entries)}.")
    return entries[source]
