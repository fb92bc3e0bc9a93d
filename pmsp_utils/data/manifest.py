"""``data_manifest.csv``: the one table naming every data source the suite knows, read and checked.

Defined in 02_forgery_datasets. Each row gives where to get a source, what a
complete copy holds, where its masks come from, its terms and citation, and
its role in the tutorials. ``sha256`` is filled where a checksum is published
for the ``archive`` file; :func:`pmsp_utils.data.verify` checks it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

COLUMNS = (
    "source", "title", "role", "layout", "manipulation", "url", "request", "tampered", "authentic",
    "contents", "masks", "archive", "sha256", "licence", "citation",
)
LAYOUTS = {"generated", "packaged", "casia1", "casia2", "folder"}
MANIPULATIONS = {"splicing", "copy-move", "mixed", "authentic"}
REQUIRED = ("source", "title", "role", "layout", "manipulation", "url", "contents", "masks", "licence", "citation")


@dataclass(frozen=True)
class ManifestEntry:
    """One data source of the manifest."""

    source: str
    title: str
    role: str
    layout: str
    manipulation: str
    url: str
    request: str
    tampered: int | None
    authentic: int | None
    contents: str
    masks: str
    archive: str
    sha256: str
    licence: str
    citation: str


def manifest_text(path: str | Path | None = None) -> str:
    """The manifest's text: ``path``, else the copy that ships inside the package."""
    if path is not None:
        return Path(path).read_text(encoding="utf-8")
    return resources.files("pmsp_utils.data").joinpath("data_manifest.csv").read_text(encoding="utf-8")


def read_manifest(path: str | Path | None = None) -> dict[str, ManifestEntry]:
    """Parse and check the manifest; raises ``ValueError`` listing every problem found."""
    rows = list(csv.DictReader(io.StringIO(manifest_text(path))))
    problems = []
    if not rows:
        raise ValueError("data_manifest.csv has no rows.")
    header = tuple(rows[0].keys())
    if header != COLUMNS:
        raise ValueError(f"data_manifest.csv columns are {header}; expected {COLUMNS}.")
    entries: dict[str, ManifestEntry] = {}
    for number, row in enumerate(rows, start=2):
        where = f"data_manifest.csv line {number} ({row.get('source') or '?'})"
        if None in row or any(value is None for value in row.values()):
            problems.append(f"{where}: wrong number of fields (quote fields that contain commas)")
            continue
        for column in REQUIRED:
            if not row[column].strip():
                problems.append(f"{where}: '{column}' is empty")
        if row["layout"] not in LAYOUTS:
            problems.append(f"{where}: layout {row['layout']!r} is not one of {sorted(LAYOUTS)}")
        if row["manipulation"] not in MANIPULATIONS:
            problems.append(f"{where}: manipulation {row['manipulation']!r} is not one of {sorted(MANIPULATIONS)}")
        counts = {}
        for column in ("tampered", "authentic"):
            value = row[column].strip()
            if value and not value.isdigit():
                problems.append(f"{where}: '{column}' must be a whole number or empty, got {value!r}")
            counts[column] = int(value) if value.isdigit() else None
        if row["sha256"] and not re.fullmatch(r"[0-9a-f]{64}", row["sha256"]):
            problems.append(f"{where}: sha256 must be 64 lowercase hex digits")
        if row["sha256"] and not row["archive"]:
            problems.append(f"{where}: a sha256 needs the archive file name it belongs to")
        if row["source"] in entries:
            problems.append(f"{where}: source {row['source']!r} appears twice")
        entries[row["source"]] = ManifestEntry(**{**row, **counts})
    if problems:
        raise ValueError("data_manifest.csv has problems:\n  " + "\n  ".join(problems))
    return entries
