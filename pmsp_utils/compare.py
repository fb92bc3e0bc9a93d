"""Is one model better than another on the same images? A paired comparison of two evaluations.

Two runs scored on the same 52 images differ by a few hundredths of per-image F1
from the images' luck alone. :func:`compare` pairs the runs image by image (the
``per_image.csv`` that ``pmsp evaluate`` writes), resamples the images with
replacement, and gives the difference of the means with a percentile interval:
"B better" only when the whole interval is above zero. A group of fewer than
:data:`MIN_IMAGES` images gets no interval and no verdict.
Used as ``pmsp compare A B`` (A, B: evaluation folders or their ``per_image.csv``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data.casia import parse_name
from .evaluate import MISSED_BELOW, Evaluation, format_table


#: The fewest paired images a bootstrap interval is given for. The percentile bootstrap treats the images at hand as
#: the whole population, so on few images its interval is too narrow: one image gives an interval of zero width,
#: and measured on normal differences (2000 trials each) its nominal 90% interval holds the true mean 48% of the
#: time on 2 images, 78% on 5 and 85% on 10, the common floor for a bootstrap. Fewer: no interval, no verdict.
MIN_IMAGES = 10


@dataclass(frozen=True)
class Scores:
    """One method's per-image F1 on the tampered images of one evaluation."""

    source: str  # the file, and which method in it
    f1: dict[str, float]  # image -> per-image F1 at the threshold
    kinds: dict[str, str]  # image -> manipulation kind ("" where neither the file nor the name says)
    threshold: float | None = None  # the threshold the F1 was taken at (None: not known)
    datasets: dict[str, str] = field(default_factory=dict)  # image -> the dataset the table names it under (where known)

    @classmethod
    def of(cls, evaluation: Evaluation, method: str, label: str | None = None) -> Scores:
        """One method's scores from an :class:`~pmsp_utils.evaluate.Evaluation` in memory (no CSV needed);
        ``label`` names them in the printout (default: the method and dataset)."""
        if method not in evaluation.metrics:
            raise KeyError(f"no method {method!r} in this evaluation; it holds {', '.join(map(repr, evaluation.metrics))}")
        images = evaluation.metrics[method].tampered_images
        return cls(label or f"{method} on {evaluation.dataset}", {image.name: image.f1 for image in images},
                   {image.name: evaluation.kinds.get(image.name, "") for image in images}, evaluation.threshold,
                   {image.name: evaluation.dataset for image in images})


def read_scores(path: str | Path, method: str | None = None) -> Scores:
    """Per-image F1 of one method from ``pmsp evaluate``'s ``per_image.csv`` (or the folder holding it).

    The network's scores are taken (the first method named ``PMSP ...``, else the file's first) unless ``method``
    names another; authentic
    images (no F1) are left out. Raises ``ValueError`` naming the file when it is
    not such a table or the method is not in it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "per_image.csv"
    if path.exists() and not path.is_file():  # a FIFO, a device: "no such file" would be false
        raise ValueError(f"{path}: not a regular file; give an output folder of 'pmsp evaluate' or its per_image.csv")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give an output folder of 'pmsp evaluate' or its per_image.csv")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a byte-order mark (Excel's "CSV UTF-8") is not a column
            return _read_rows(path, csv.DictReader(handle), method)
    except csv.Error as error:  # a field past the csv module's limit, a NUL byte ...
        raise ValueError(f"{path}: not a table that can be read as CSV ({error}); restore it or run pmsp evaluate again.") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8 (CSV UTF-8) or run "
                         "pmsp evaluate again.") from None


def _read_rows(path: Path, reader: csv.DictReader, method: str | None) -> Scores:
    """One method's scores, read row by row (a table of millions of rows is not held whole)."""
    columns = list(reader.fieldnames or [])
    f1_column = next((column for column in columns if column.startswith("f1@")), None)
    if f1_column is None or "image" not in columns or "method" not in columns:
        raise ValueError(f"{path}: not a per-image table of 'pmsp evaluate' (needs columns method, image, f1@...)")
    try:
        threshold = float(f1_column[3:])
    except ValueError:
        threshold = -1.0
    if not 0.0 < threshold < 1.0:  # NaN fails this too
        raise ValueError(f"{path}: its column {f1_column} names no threshold between 0 and 1 (pmsp evaluate writes f1@0.5); "
                         "restore the table or run pmsp evaluate again.")
    methods: dict[str, None] = {}
    f1: dict[str, float] = {}
    kinds: dict[str, str] = {}
    datasets: dict[str, str] = {}
    shared: dict[str, str] = {}  # one copy of each kind and dataset name, not one per row (1.5 M rows: about 180 MB less)
    for line, row in enumerate(reader, start=2):  # line 1 is the header
        if None in row.values() or None in row:  # fewer cells than columns, or more: a row cut short or run together
            raise ValueError(f"{path}, line {line}: {len(columns)} columns in the header but not in this row; the table is cut "
                             "short or damaged: run pmsp evaluate again.")
        if all(row[column] == column for column in ("method", "image", f1_column)):
            raise ValueError(f"{path}, line {line}: the header again, inside the table (two tables joined?); compare each "
                             "evaluation's per_image.csv as it was written.")
        methods.setdefault(row["method"])
        if method is None and row["method"].startswith("PMSP"):  # the network, which pmsp evaluate writes first
            method = row["method"]
        if row["method"] != method or row[f1_column] == "":  # authentic images have no F1
            continue
        text = row[f1_column].strip()
        try:
            if not text.isascii():  # float() reads other scripts' digits too: not what evaluate writes
                raise ValueError
            value = float(text)
        except ValueError:
            raise ValueError(f"{path}, line {line}, column {f1_column}: {row[f1_column]!r} is not a number; restore the table "
                             "or run pmsp evaluate again.") from None
        if not 0.0 <= value <= 1.0:  # NaN fails this too
            raise ValueError(f"{path}, line {line}, column {f1_column}: an F1 must lie in [0, 1], found {value}; the table is "
                             "damaged or edited: run pmsp evaluate again.")
        image = row["image"]
        dataset = row.get("dataset") or ""
        dataset = shared.setdefault(dataset, dataset)
        if image in datasets and datasets[image] != dataset:
            raise ValueError(f"{path}, line {line}: {image!r} is listed under two datasets ({datasets[image]!r} and {dataset!r}); "
                             "images of two datasets cannot be paired by name: compare each dataset's evaluation apart.")
        if image in f1 and f1[image] != value:
            raise ValueError(f"{path}, line {line}: {image!r} is listed twice for {method!r} with different F1 ({f1[image]} and "
                             f"{value}); one table must score each image once.")
        f1[image], datasets[image] = value, dataset
        kind = row.get("kind") or _kind_from_name(image)
        kinds[image] = shared.setdefault(kind, kind)
    if not methods:
        raise ValueError(f"{path}: the per-image table has its columns but no rows: no image was scored; run pmsp evaluate again.")
    if method is None:  # no network in the table: its first method, read again
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _read_rows(path, csv.DictReader(handle), next(iter(methods)))
    if method not in methods:
        raise ValueError(f"{path}: no method {method!r}; it holds {', '.join(repr(name) for name in methods)}")
    return Scores(f"{path} ({method})", f1, kinds, threshold, {image: dataset for image, dataset in datasets.items() if dataset})



def _kind_from_name(image: str) -> str:
    """CASIA names say their kind (tables written before the kind column was added); "" for other names."""
    parsed = parse_name(image)
    return parsed.kind if parsed else ""


@dataclass
class Comparison:
    """B against A on the images both scored: one row per group (all, then each kind)."""

    a: str
    b: str
    rows: list[dict]
    confidence: float
    only_a: int  # images scored by A alone (left out)
    only_b: int
    draws: np.ndarray  # the resampled mean differences B - A over all images (for a histogram)

    @property
    def verdict(self) -> str:
        """For all images together: "B better", "A better", "within noise" or "too few images" (under
        :data:`MIN_IMAGES`: no interval, no verdict)."""
        return self.rows[0]["verdict"]


TOO_FEW = "too few images"


def too_few(images: int) -> str:
    """What a group of fewer than :data:`MIN_IMAGES` images says instead of a verdict."""
    return f"{TOO_FEW}: {images}; at least {MIN_IMAGES} are needed for an interval"


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return "B better"
    if high < 0:
        return "A better"
    return "within noise"


#: How many resampled images :func:`bootstrap_means` draws at once: 8 M (64 MB of indices, as much again of values).
#: Drawn whole, 10 000 resamples of 150 000 images took 23 GB; the draws come in the same order either way.
BOOTSTRAP_CHUNK = 8_000_000


def bootstrap_means(difference: np.ndarray, resamples: int, random: np.random.Generator) -> np.ndarray:
    """The means of ``resamples`` resamplings (with replacement) of paired per-image differences, drawn a block of
    resamples at a time (:data:`BOOTSTRAP_CHUNK`): the same means as drawing them all at once, in bounded memory."""
    count = len(difference)
    block = max(1, BOOTSTRAP_CHUNK // max(1, count))
    means = np.empty(resamples, np.float64)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        means[start:stop] = difference[random.integers(0, count, size=(stop - start, count))].mean(axis=1)
    return means


def compare(a: Scores, b: Scores, *, confidence: float = 0.9, resamples: int = 10000, seed: int = 0) -> Comparison:
    """B's per-image F1 minus A's on the images both scored, with a paired bootstrap interval, overall and per kind.

    Each row: images, A's and B's mean F1 and share missed (F1 < 0.1), the mean
    difference B - A with its ``confidence`` percentile interval over
    ``resamples`` resamplings of the images, how many images each won, and the
    verdict. A group of fewer than :data:`MIN_IMAGES` images has no interval (NaN) and the verdict
    "too few images". Raises ``ValueError`` when the two share no image.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if a.threshold is not None and b.threshold is not None and a.threshold != b.threshold:
        raise ValueError(f"{a.source} holds F1 at threshold {a.threshold:g}, {b.source} at {b.threshold:g}: a threshold changes "
                         "F1 by itself, so they are not compared; evaluate both at one --threshold.")
    common = sorted(set(a.f1) & set(b.f1))
    other = next((image for image in common if image in a.datasets and image in b.datasets and a.datasets[image] != b.datasets[image]), None)
    if other is not None:
        raise ValueError(f"{a.source} scores {other!r} in the dataset {a.datasets[other]!r}, {b.source} in {b.datasets[other]!r}: a "
                         "paired comparison needs the same images; compare evaluations of one dataset.")
    if not common:
        raise ValueError(f"{a.source} and {b.source} share no scored image; compare evaluations of the same images")
    clash = next((image for image in common if a.kinds.get(image) and b.kinds.get(image) and a.kinds[image] != b.kinds[image]), None)
    if clash is not None:  # one image, two kinds: one table was edited, or they are not the same images
        raise ValueError(f"{a.source} calls {clash!r} a {a.kinds[clash]}, {b.source} a {b.kinds[clash]}: the two tables disagree on "
                         "what the image is, so their per-kind rows would not mean one thing; compare evaluations of the same images.")
    kinds = {image: a.kinds.get(image) or b.kinds.get(image) or "" for image in common}
    groups = {"all tampered": common}
    for kind in sorted({kind for kind in kinds.values() if kind}):
        groups[kind] = [image for image in common if kinds[image] == kind]
    random = np.random.default_rng(seed)
    tail = (1 - confidence) / 2 * 100
    rows = []
    for group, images in groups.items():
        first = np.array([a.f1[image] for image in images])
        second = np.array([b.f1[image] for image in images])
        difference = second - first
        means = bootstrap_means(difference, resamples, random)
        enough = len(images) >= MIN_IMAGES
        low, high = np.percentile(means, [tail, 100 - tail]) if enough else (np.nan, np.nan)
        if not rows:
            draws = means  # the first group is all images together
        rows.append({
            "group": group, "images": len(images), "a_f1": float(first.mean()), "b_f1": float(second.mean()),
            "a_missed": float(np.mean(first < MISSED_BELOW)), "b_missed": float(np.mean(second < MISSED_BELOW)),
            "difference": float(difference.mean()), "low": float(low), "high": float(high),
            "b_wins": int(np.sum(difference > 0)), "a_wins": int(np.sum(difference < 0)),
            "verdict": _verdict(low, high) if enough else TOO_FEW,
        })
    return Comparison(a.source, b.source, rows, confidence, len(set(a.f1) - set(b.f1)), len(set(b.f1) - set(a.f1)),
                      draws)


def format_comparison(comparison: Comparison) -> str:
    """The comparison as a few lines of text: what was compared, one line per group, the verdict."""
    percent = f"{comparison.confidence:.0%}"
    table = [{"group": row["group"], "images": row["images"], "A F1": row["a_f1"], "B F1": row["b_f1"],
              "B - A": row["difference"],
              f"{percent} interval": f"{row['low']:+.3f} .. {row['high']:+.3f}" if row["verdict"] != TOO_FEW else "-",
              "A missed": f"{row['a_missed']:.0%}", "B missed": f"{row['b_missed']:.0%}",
              "wins A/B": f"{row['a_wins']}/{row['b_wins']}", "verdict": row["verdict"]} for row in comparison.rows]
    lines = [f"A: {comparison.a}", f"B: {comparison.b}",
             f"per-image F1 at the evaluations' threshold, paired image by image; missed = F1 < {MISSED_BELOW:g}; "
             f"interval: paired bootstrap over images", format_table(table)]
    left_out = [f"{count} scored by {name} only" for name, count in (("A", comparison.only_a), ("B", comparison.only_b)) if count]
    if left_out:
        lines.append("left out: " + ", ".join(left_out))
    lines += [f"{row['group']}: {too_few(row['images'])}; no verdict" for row in comparison.rows[1:] if row["verdict"] == TOO_FEW]
    overall = comparison.rows[0]
    lines.append(f"verdict (all tampered images): "
                 f"{comparison.verdict if comparison.verdict != TOO_FEW else 'none (' + too_few(overall['images']) + ')'}")
    return "\n".join(lines)
