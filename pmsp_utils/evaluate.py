"""Evaluation, the paper's section 4.3 and Tables I and II. Defined in 05_evaluation.

- :func:`select_records`: which images are scored (a split of the data, named in every table).
- :func:`evaluate`: streams images through several methods (the network, the
  classic baselines) into one :class:`~pmsp_utils.metrics.PixelMetrics` each.
- :class:`Evaluation`: Table I and Table II style rows, written as CSV and JSON,
  with the paper's reported numbers beside ours, cited as reported.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .data.records import Record
from .data.splits import SPLIT_PROTOCOL_WORDS, split_by
from .safe_write import write_csv, write_text_atomic
from .images import ImageReadError, LoadedImage, load_image
from .metrics import PROTOCOL_NOTES, PixelMetrics
from .progress import progress

SPLITS = ("test", "validation", "train", "all", "unseen")
PAPER_CITATION = ("Meng et al., Image Tampering Localization based on Pyramid Multi-Scale Pooling Module; "
                  "numbers as reported there (protocol not stated in the paper)")
#: Table I of the paper (its CASIA V2 experiment): F1 and AUC of every method as printed (None: printed as "-"), in its order.
PAPER_TABLE_I = {
    "dataset": "CASIA v2.0",
    "rows": {"ELA": (0.214, 0.613), "NOI1": (0.263, 0.612), "CFA1": (0.207, 0.522), "RGB-N": (0.408, 0.795),
             "LSTM-EnDec-Skip": (0.432, 0.814), "Constrained R-CNN": (0.475, 0.789), "HybridArch": (0.525, None),
             "PMSP (Meng et al.)": (0.543, 0.795)},  # the paper's network, not ours: our rows carry model names
}
#: Table II of the paper: the proposed method on three datasets, every cell as printed.
PAPER_TABLE_II = {
    "casia1": {"dataset": "CASIA v1.0", "accuracy": 0.8927, "precision": 0.9053, "recall": 0.8927, "f1": 0.8813, "auc": 0.5922},
    "casia2": {"dataset": "CASIA v2.0", "accuracy": 0.9527, "precision": 0.6139, "recall": 0.5646, "f1": 0.5428, "auc": 0.7953},
    "ifs_tc": {"dataset": "IFS-TC", "accuracy": 0.9083, "precision": 0.8537, "recall": 0.9083, "f1": 0.8692, "auc": 0.5125},
}


def paper_tables() -> dict[str, list[dict]]:
    """The paper's reported numbers in their own tables, every row and cell as printed, each row with where it comes
    from and its protocol.

    Never mixed into our rows: the paper's data, splits and protocols are not ours.
    """
    table1 = [{"method": method, "dataset (as the paper labels it)": PAPER_TABLE_I["dataset"], "f1": f1, "auc": auc,
               "source": "Meng et al., Table I", "protocol": "not stated in the paper"}
              for method, (f1, auc) in PAPER_TABLE_I["rows"].items()]
    table2 = []
    for row in PAPER_TABLE_II.values():
        if row["accuracy"] == row["recall"]:
            protocol = ("class-weighted averages, as the paper states for Table II: accuracy equals recall, as weighting "
                        "each class by its share of pixels implies")
        else:
            protocol = ("not class-weighted: recall differs from accuracy, and F1 0.5428 is Table I's PMSP (Meng et al.) F1 (0.543, "
                        "the tampered class) to three places")
        table2.append({"dataset": row["dataset"], **{key: row[key] for key in ("accuracy", "precision", "recall", "f1", "auc")},
                       "source": "Meng et al., Table II", "protocol": protocol})
    return {"table1": table1, "table2": table2}


BASELINE_LABELS = {"ela": "ELA", "noi1": "NOI1", "cfa1": "CFA1"}
DATASET_LABELS = {"casia1": "casia1 (CASIA v1.0)", "casia2": "casia2 (CASIA v2.0)", "synthetic": "synthetic (embedded, held out)", "folder": "folder"}


# --- what is scored ------------------------------------------------------------------

def select_records(records: Sequence[Record], split: str = "test", *, model_splits: Path | None = None,
                   protocol: str = "paper") -> tuple[list[Record], str]:
    """The records of ``split`` and a sentence saying which images they are.

    ``test``/``validation``/``train``: a part of the suite's split, ``protocol``
    ``"paper"`` (90/5/5 by name hash) or ``"grouped"`` (by source photo), the same
    on every machine; ``all``: every record; ``unseen``: every record not in the
    model's own train or validation lists (needs ``model_splits``).
    """
    records = list(records)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    if not records:
        raise ValueError("no images to evaluate.")
    if split == "all":
        return records, f"all {len(records)} images"
    if split == "unseen":
        if model_splits is None:
            raise ValueError("split 'unseen' needs a model with split lists (a shipped model or a run folder).")
        from .data.splits import content_hash, read_split_list

        entries = [entry for part in ("train", "validation") if (Path(model_splits) / f"{part}.txt").exists()
                   for entry in read_split_list(Path(model_splits) / f"{part}.txt")]
        seen_hashes = {digest for _, digest in entries if digest}
        seen_names = {key for key, digest in entries if not digest}
        chosen, matched = [], 0
        for record in records:
            # By content where the list has hashes: the same file under another loader or name is still recognised.
            seen = (seen_hashes and content_hash(record.image_path) in seen_hashes) or f"{record.dataset}/{record.name}" in seen_names
            matched += bool(seen)
            if not seen:
                chosen.append(record)
        how = "by file content" if seen_hashes else "by dataset/name (lists without content hashes)"
        return chosen, (f"{len(chosen)} images not in the model's training or validation lists (matched {how}; "
                        f"{matched} of the {len(records)} images are the model's own and were left out)")
    if protocol not in SPLIT_PROTOCOL_WORDS:
        raise ValueError(f"protocol must be one of {tuple(SPLIT_PROTOCOL_WORDS)}, got {protocol!r}.")
    parts = split_by(protocol, records).parts()
    if not parts[split]:
        raise ValueError(f"the {split} part of the {SPLIT_PROTOCOL_WORDS[protocol]} of these {len(records)} images is empty (too few "
                         "images for its share); score them all with --split all, or another part.")
    return list(parts[split]), f"the {split} part ({len(parts[split])} images) of the {SPLIT_PROTOCOL_WORDS[protocol]}"


# --- streaming evaluation ------------------------------------------------------------

#: A method to score: an image read once by :func:`pmsp_utils.images.load_image` in, a map at its size out.
Predictor = Callable[[LoadedImage], np.ndarray]


def model_predictor(model, *, policy: str | None = None, flip: bool | None = None, copy_move: bool = False) -> Predictor:
    """The network (a :class:`~pmsp_utils.models.LoadedModel`) as a predictor: a probability map at the image's size.

    ``policy`` and ``flip`` None use the model's own settings; ``flip`` True/False forces flipped test-time augmentation on/off.
    ``copy_move``: fuse the copy-move matcher's pairs into the map (:func:`pmsp_utils.copymove.fuse`), as ``pmsp localize``
    and ``pmsp evaluate`` do by default.
    """
    from .pipeline import localize

    if not copy_move:
        return lambda image: localize(model, image, policy=policy, flip=flip).probability

    def fused(image):  # the network's map with the copy-move matcher's pairs fused in, as pmsp localize does
        from .copymove import fused_with

        return fused_with(localize(model, image, policy=policy, flip=flip))[0]

    return fused


def baseline_predictor(name: str) -> Predictor:
    """A classic baseline as a predictor."""
    from .baselines import heatmap

    return lambda image: heatmap(name, image)


@dataclass
class Evaluation:
    """The metrics of several methods on one set of images."""

    dataset: str
    images: str  # which images, in words
    threshold: float
    metrics: dict[str, PixelMetrics]
    skipped: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # image name -> manipulation kind

    def by_kind(self, method: str | None = None) -> list[dict]:
        """Per manipulation kind (and all tampered images): per-image F1, the share missed (F1 < 0.1) and F1 on the images found."""
        rows = []
        for name, metrics in self.metrics.items():
            if method is not None and name != method:
                continue
            tampered = metrics.tampered_images
            groups = {"all tampered": tampered}
            for kind in sorted({self.kinds.get(image.name, "unknown") for image in tampered}):
                groups[kind] = [image for image in tampered if self.kinds.get(image.name, "unknown") == kind]
            for kind, images in groups.items():
                rows.append({"method": name, "dataset": self.dataset, "kind": kind, **miss_summary(images, self.threshold)})
        return rows

    def table1(self) -> list[dict]:
        """Table I style: one row per method, F1 and AUC under named protocols (the paper's numbers: :func:`paper_tables`)."""
        rows = []
        for method, metrics in self.metrics.items():
            per_image, pooled, oracle = metrics.per_image(), metrics.pooled(), metrics.per_image_oracle()
            rows.append({
                "method": method, "dataset": self.dataset, "images": pooled["images"], "tampered_images": per_image["images"],
                f"f1_per_image@{self.threshold:g}": per_image["f1"], "f1_per_image_oracle": oracle["f1"],
                f"f1_pooled@{self.threshold:g}": pooled["f1"], "auc_pooled": pooled["auc"], "auc_per_image": per_image["auc"],
            })
        return rows

    def table2(self, method: str | None = None) -> list[dict]:
        """Table II style: Accuracy, Precision, Recall, F1 and AUC of one method, one row per protocol."""
        method = method or next(iter(self.metrics))
        return [{"dataset": self.dataset, "method": method, **row}
                for row in self.metrics[method].table(("per-image", "pooled", "weighted", "pooled oracle"))]


MISSED_BELOW = 0.1  # an image whose F1 is under this is counted as missed


def miss_summary(images, threshold: float = 0.5) -> dict:
    """images, per-image F1 at ``threshold``, share missed (F1 < 0.1), and mean F1 over the images not missed."""
    scores = [image.f1 for image in images]
    found = [score for score in scores if score >= MISSED_BELOW]
    return {"images": len(scores), f"f1_per_image@{threshold:g}": float(np.mean(scores)) if scores else float("nan"),
            "missed_share": (len(scores) - len(found)) / len(scores) if scores else float("nan"),
            "f1_found": float(np.mean(found)) if found else float("nan")}


def evaluate(records: Iterable[Record], methods: dict[str, Predictor], *, dataset: str, images: str = "",
             threshold: float = 0.5, show_progress: bool | None = None, warn: Callable[[str], None] | None = None) -> Evaluation:
    """Score every method on every record in one pass, in bounded memory.

    An image that cannot be read, or whose mask size differs from the image,
    is reported and skipped for every method (never resized silently).
    """
    records = list(records)
    metrics = {name: PixelMetrics(threshold) for name in methods}
    skipped = []
    for record in progress(records, total=len(records), description=f"evaluating {dataset}", show=show_progress):
        try:
            image = load_image(record.image_path)  # decoded once for every method
            maps = {name: predict(image) for name, predict in methods.items()}
            shape = next(iter(maps.values())).shape
            mask = record.load_mask(shape)
            if mask.shape != shape:
                raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, image {shape[1]}x{shape[0]}")
        except (ImageReadError, OSError, ValueError, MemoryError) as error:  # unreadable in any role: skipped and listed
            skipped.append(f"{record.name}: {error if not isinstance(error, MemoryError) else 'out of memory'}")
            (warn or _warn)(f"skipped {record.name}: {error}")
            continue
        for name, probability in maps.items():
            metrics[name].update(probability, mask, name=record.name)
    return Evaluation(dataset, images or f"{len(records)} images", threshold, metrics, skipped, {record.name: record.kind for record in records})


def _warn(text: str) -> None:
    print(text, file=sys.stderr)


# --- tables out ----------------------------------------------------------------------

def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


#: What :func:`write_tables` writes into ``out``.
TABLE_FILES = (*(f"{name}.{ending}" for name in ("table1", "table2", "by_kind", "paper_table1", "paper_table2") for ending in ("csv", "json")),
               "per_image.csv")


def claim_tables(out: str | Path) -> None:
    """Refuse, before any work, an ``out`` holding a user's own table1.csv (or one edited since pmsp wrote it): such a
    file is never replaced (:class:`~pmsp_utils.localize_outputs.Ledger`)."""
    from .localize_outputs import Ledger

    Ledger(out).claim(*TABLE_FILES)


def write_tables(evaluations: Sequence[Evaluation], out: str | Path, *, extra: dict | None = None) -> list[Path]:
    """Write table1.csv/.json and table2.csv/.json (and per_image.csv) under ``out`` (:data:`TABLE_FILES`).

    Each table enters the folder's ledger as soon as it is whole, so after a disk that filled part of the way a rerun
    may replace what was written (a table the ledger cannot list is removed again); the error names ``out``."""
    import errno

    from .localize_outputs import Ledger, OutputFolderError

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(out)
    ledger.claim(*TABLE_FILES)  # a user's own table1.csv is refused before any write
    table1 = [row for evaluation in evaluations for row in evaluation.table1()]
    table2 = [row for evaluation in evaluations for row in evaluation.table2()]
    by_kind = [row for evaluation in evaluations for row in evaluation.by_kind()]
    protocol = {
        "protocols": PROTOCOL_NOTES,
        "images": {evaluation.dataset: evaluation.images for evaluation in evaluations},
        "skipped": {evaluation.dataset: evaluation.skipped for evaluation in evaluations},
        "paper": PAPER_CITATION + "; in paper_table1/paper_table2 (every row and cell as printed), never in our rows",
        "baselines": "heat maps scaled per image to [0, 1] (pmsp_utils.baselines)",
        **(extra or {}),
    }
    written = []

    def keep(path: Path) -> None:
        try:
            ledger.record(path)
        except OSError:  # a table the ledger does not list would be refused by the next run: listed or not there at all
            path.unlink(missing_ok=True)
            raise
        written.append(path)

    paper = paper_tables()
    try:
        for name, rows in (("table1", table1), ("table2", table2), ("by_kind", by_kind), ("paper_table1", paper["table1"]),
                           ("paper_table2", paper["table2"])):
            keep(_write_csv(out / f"{name}.csv", rows))
            path = out / f"{name}.json"
            keep(write_text_atomic(path, json.dumps({"rows": [{k: _clean(v) for k, v in row.items()} for row in rows], **protocol},
                                                    indent=2) + "\n"))
        per_image = [
            {"dataset": evaluation.dataset, "method": method, "image": image.name, "kind": evaluation.kinds.get(image.name, ""),
             "tampered_fraction": image.tampered_pixels / image.pixels,
             f"f1@{evaluation.threshold:g}": image.f1 if image.tampered else None, "auc": _clean(image.auc), "best_f1": _clean(image.best_f1)}
            for evaluation in evaluations for method, metrics in evaluation.metrics.items() for image in metrics.images
        ]
        keep(_write_csv(out / "per_image.csv", per_image))
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise OutputFolderError(f"--out {out}: the disk is full after {len(written)} of the {len(TABLE_FILES)} tables; free some "
                                "space and run again (a rerun replaces the tables written so far).") from None
    return written


def _write_csv(path: Path, rows: list[dict]) -> Path:
    if not rows:
        return write_text_atomic(path, "")
    return write_csv(path, [{k: ("" if _clean(v) is None else (f"{v:.4f}" if isinstance(v, float) else v)) for k, v in row.items()}
                            for row in rows], list(rows[0]))


def format_table(rows: list[dict], columns: Sequence[str] | None = None) -> str:
    """Rows as an aligned plain-text table (numbers to 3 decimals, missing as '-')."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0])

    def cell(value):
        value = _clean(value)
        if value is None:
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines += ["  ".join(value.ljust(width) for value, width in zip(line, widths)) for line in cells]
    return "\n".join(lines)
