"""Pixel-level metrics, the paper's section 4.3. Every function names its protocol.

Defined in 01_error_level_analysis (pixel AUC); extended in 05_evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _check_pair(scores: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    mask = np.asarray(mask)
    if scores.shape != mask.shape:
        raise ValueError(
            f"scores shape {scores.shape} differs from mask shape {mask.shape}; "
            "resize the prediction to the mask's size (nearest neighbour for masks) first."
        )
    if mask.dtype != bool and not np.isin(np.unique(mask), (0, 1)).all():
        raise ValueError("mask must hold only 0 (authentic) and 1 (tampered); threshold it first.")
    return scores.ravel().astype(np.float64), mask.ravel().astype(bool)


def pixel_auc(scores: np.ndarray, mask: np.ndarray) -> float:
    """Area under the ROC curve of per-pixel ``scores`` against ``mask`` (1 = tampered), one image.

    Protocol: every pixel of this image counts once; ties count half (the
    Mann-Whitney statistic, equal to scikit-learn's ``roc_auc_score``).
    Undefined when the mask is all 0 or all 1: that raises ``ValueError``.
    """
    scores, positive = _check_pair(scores, mask)
    n_positive = int(positive.sum())
    n_negative = positive.size - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError("pixel AUC is undefined for a mask that is all authentic or all tampered.")
    # Mann-Whitney U from average ranks (ties get the mean rank).
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [scores.size]))
    average_rank = (starts + ends + 1) / 2.0  # ranks are 1-based
    ranks[order] = np.repeat(average_rank, ends - starts)
    u = ranks[positive].sum() - n_positive * (n_positive + 1) / 2.0
    return float(u / (n_positive * n_negative))


def mean_pixel_auc(pairs) -> float:
    """Per-image pixel AUC averaged over images (protocol: per image, then mean)."""
    values = [pixel_auc(scores, mask) for scores, mask in pairs]
    if not values:
        raise ValueError("no images to average over.")
    return float(np.mean(values))


# --- streaming pixel metrics (used in training; extended in 05_evaluation) ------------

DEFAULT_BINS = 1000


def f1_score(prediction: np.ndarray, mask: np.ndarray) -> float:
    """F1 of a binary prediction against a 0/1 mask, one image: 2TP / (2TP + FP + FN).

    An empty prediction on an empty mask scores 1.0 (nothing to find, nothing claimed).
    """
    prediction, truth = np.asarray(prediction, bool).ravel(), np.asarray(mask, bool).ravel()
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction has {prediction.size} pixels, mask {truth.size}.")
    true_positive = int(np.count_nonzero(prediction & truth))
    wrong = int(np.count_nonzero(prediction ^ truth))
    return 1.0 if true_positive + wrong == 0 else 2.0 * true_positive / (2.0 * true_positive + wrong)


PROTOCOLS = ("per-image", "pooled", "weighted", "per-image oracle", "pooled oracle")
PROTOCOL_NOTES = {
    "per-image": "each tampered image scored at the threshold, then averaged over tampered images (MVSS-Net / IMDLBenCo); "
                 "AUC per image, averaged over images with both classes",
    "pooled": "all pixels of all images (authentic images included) counted together at the threshold; pooled AUC",
    "weighted": "pooled pixels at the threshold; precision, recall and F1 of the two classes averaged with weights "
                "equal to their pixel counts (scikit-learn average='weighted'); weighted recall equals accuracy",
    "per-image oracle": "ORACLE: each tampered image at its own best threshold (uses the ground truth to choose it)",
    "pooled oracle": "ORACLE: one threshold for the whole set, the one with the best pooled F1 (uses the ground truth)",
}
METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "auc")


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, 0 when the denominator is 0 (scikit-learn's zero_division=0)."""
    return float(numerator) / float(denominator) if denominator else 0.0


def _f1(true_positive, false_positive, false_negative):
    """F1 from counts (arrays allowed), 0 where nothing was claimed and nothing was there."""
    true_positive = np.asarray(true_positive, np.float64)
    denominator = 2.0 * true_positive + false_positive + false_negative
    return np.divide(2.0 * true_positive, denominator, out=np.zeros_like(denominator, dtype=np.float64), where=denominator > 0)


def _histogram_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC from score histograms (scores in one bin count as ties); NaN when a class is missing."""
    positives, negatives = positive.sum(), negative.sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    negatives_below = np.cumsum(negative) - negative
    wins = (positive * (negatives_below + 0.5 * negative)).sum()
    return float(wins / (float(positives) * float(negatives)))


def _counts_above(histogram: np.ndarray) -> np.ndarray:
    """Entry k: how many scores lie in bins k and above, i.e. score >= k / bins (k = 0..bins)."""
    return np.concatenate((np.cumsum(histogram[::-1])[::-1], [0]))


@dataclass(frozen=True)
class ImageScore:
    """One image's numbers, kept by PixelMetrics (a few floats, whatever the image size)."""

    name: str
    pixels: int
    tampered_pixels: int
    true_positive: int
    false_positive: int
    auc: float  # NaN when the mask is all authentic or all tampered
    best_f1: float  # at the image's own best threshold (oracle); NaN for authentic images
    best_threshold: float
    best_precision: float
    best_recall: float

    @property
    def tampered(self) -> bool:
        return self.tampered_pixels > 0

    @property
    def false_negative(self) -> int:
        return self.tampered_pixels - self.true_positive

    @property
    def true_negative(self) -> int:
        return self.pixels - self.tampered_pixels - self.false_positive

    @property
    def precision(self) -> float:
        return _ratio(self.true_positive, self.true_positive + self.false_positive)

    @property
    def recall(self) -> float:
        return _ratio(self.true_positive, self.tampered_pixels)

    @property
    def f1(self) -> float:
        return float(_f1(self.true_positive, self.false_positive, self.false_negative))

    @property
    def accuracy(self) -> float:
        return _ratio(self.true_positive + self.true_negative, self.pixels)


class PixelMetrics:
    """Pixel-level Accuracy, Precision, Recall, F1 and AUC under named protocols, streamed image by image.

    Defined in 04_training (per-image F1, pooled AUC); extended in 05_evaluation.

    ``update(probability, mask)`` adds one image. Kept in memory: two pooled
    score histograms of ``bins`` bins, the pooled confusion counts at
    ``threshold`` (exact), and one small :class:`ImageScore` per image, so
    5000 images at 576x576 need a few hundred kilobytes, not their pixels.

    Protocols (``PROTOCOL_NOTES`` says each in words): ``per-image``,
    ``pooled``, ``weighted``, and two oracle variants that choose the threshold
    with the ground truth and are labelled so. Counts at ``threshold`` are
    exact (score >= threshold); AUCs and oracle thresholds come from the
    histograms: scores within one bin count as ties, so an AUC is within about
    1 / bins of the exact value (exact when scores sit on the bin grid).
    """

    def __init__(self, threshold: float = 0.5, bins: int = DEFAULT_BINS) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}.")
        if bins < 2:
            raise ValueError(f"bins must be at least 2, got {bins}.")
        self.threshold, self.bins = threshold, bins
        self.positive = np.zeros(bins, np.int64)
        self.negative = np.zeros(bins, np.int64)
        self.images: list[ImageScore] = []

    def update(self, probability: np.ndarray, mask: np.ndarray, name: str = "") -> ImageScore:
        """Add one image: a probability map in [0, 1] and its 0/1 mask of the same shape."""
        scores, truth = _check_pair(probability, mask)
        if scores.size == 0:
            raise ValueError("an empty image has no pixels to score.")
        if not np.isfinite(scores).all():
            raise ValueError("probabilities contain NaN or infinity; check the model's output.")
        if scores.min() < 0.0 or scores.max() > 1.0:
            raise ValueError("probabilities must lie in [0, 1].")
        index = np.minimum((scores * self.bins).astype(np.int64), self.bins - 1)
        positive = np.bincount(index[truth], minlength=self.bins)
        negative = np.bincount(index[~truth], minlength=self.bins)
        self.positive += positive
        self.negative += negative
        claimed = scores >= self.threshold
        tampered = int(truth.sum())
        best = (float("nan"),) * 4
        if tampered:
            true_positive, false_positive = _counts_above(positive)[1:], _counts_above(negative)[1:]
            f1_values = _f1(true_positive, false_positive, tampered - true_positive)
            k = int(np.argmax(f1_values))
            best = (float(f1_values[k]), (k + 1) / self.bins, _ratio(true_positive[k], true_positive[k] + false_positive[k]),
                    _ratio(true_positive[k], tampered))
        score = ImageScore(
            name=name or f"image {len(self.images)}",
            pixels=int(truth.size),
            tampered_pixels=tampered,
            true_positive=int(np.count_nonzero(claimed & truth)),
            false_positive=int(np.count_nonzero(claimed & ~truth)),
            auc=_histogram_auc(positive, negative),
            best_f1=best[0], best_threshold=best[1], best_precision=best[2], best_recall=best[3],
        )
        self.images.append(score)
        return score

    # --- the pieces ------------------------------------------------------------------
    @property
    def tampered_images(self) -> list[ImageScore]:
        return [image for image in self.images if image.tampered]

    def _pooled_counts(self) -> tuple[int, int, int, int]:
        true_positive = sum(image.true_positive for image in self.images)
        false_positive = sum(image.false_positive for image in self.images)
        tampered = sum(image.tampered_pixels for image in self.images)
        pixels = sum(image.pixels for image in self.images)
        return true_positive, false_positive, tampered - true_positive, pixels - tampered - false_positive

    def per_image_f1(self) -> float:
        """Mean F1 at the threshold over tampered images (NaN when there were none)."""
        return self.per_image()["f1"]

    def pooled_auc(self) -> float:
        """ROC AUC over all pixels seen (NaN when one class is missing)."""
        return _histogram_auc(self.positive, self.negative)

    # --- the protocols ---------------------------------------------------------------
    def _row(self, protocol: str, threshold, images: int, **values) -> dict:
        return {"protocol": protocol, "threshold": threshold, "images": images, **{name: values[name] for name in METRIC_NAMES}}

    def per_image(self) -> dict:
        """Per image at the threshold, averaged over tampered images; AUC averaged over images with both classes."""
        tampered = self.tampered_images
        aucs = [image.auc for image in self.images if not np.isnan(image.auc)]
        mean = (lambda values: float(np.mean(values)) if len(values) else float("nan"))
        return self._row("per-image", self.threshold, len(tampered),
                         accuracy=mean([i.accuracy for i in tampered]), precision=mean([i.precision for i in tampered]),
                         recall=mean([i.recall for i in tampered]), f1=mean([i.f1 for i in tampered]), auc=mean(aucs))

    def pooled(self) -> dict:
        """Every pixel of every image counted together at the threshold."""
        true_positive, false_positive, false_negative, true_negative = self._pooled_counts()
        total = true_positive + false_positive + false_negative + true_negative
        if true_positive + false_negative == 0:  # no tampered pixel at all (authentic images only): recall and F1 are undefined
            return self._row("pooled", self.threshold, len(self.images), accuracy=_ratio(true_negative, total),
                             precision=0.0 if false_positive else float("nan"), recall=float("nan"), f1=float("nan"),
                             auc=self.pooled_auc())
        return self._row("pooled", self.threshold, len(self.images),
                         accuracy=_ratio(true_positive + true_negative, total),
                         precision=_ratio(true_positive, true_positive + false_positive),
                         recall=_ratio(true_positive, true_positive + false_negative),
                         f1=float(_f1(true_positive, false_positive, false_negative)), auc=self.pooled_auc())

    def weighted(self) -> dict:
        """scikit-learn's average='weighted' over the two classes, pooled pixels at the threshold."""
        true_positive, false_positive, false_negative, true_negative = self._pooled_counts()
        total = true_positive + false_positive + false_negative + true_negative
        classes = (  # (support, precision, recall, F1) of tampered, then authentic
            (true_positive + false_negative, _ratio(true_positive, true_positive + false_positive),
             _ratio(true_positive, true_positive + false_negative), float(_f1(true_positive, false_positive, false_negative))),
            (true_negative + false_positive, _ratio(true_negative, true_negative + false_negative),
             _ratio(true_negative, true_negative + false_positive), float(_f1(true_negative, false_negative, false_positive))),
        )
        average = (lambda column: sum(c[0] * c[column] for c in classes) / total if total else 0.0)
        return self._row("weighted", self.threshold, len(self.images), accuracy=_ratio(true_positive + true_negative, total),
                         precision=average(1), recall=average(2), f1=average(3), auc=self.pooled_auc())

    def per_image_oracle(self) -> dict:
        """ORACLE: each tampered image at its own best threshold (chosen with its ground truth)."""
        tampered = self.tampered_images
        mean = (lambda values: float(np.mean(values)) if len(values) else float("nan"))
        return self._row("per-image oracle", "best per image", len(tampered), accuracy=float("nan"),
                         precision=mean([i.best_precision for i in tampered]), recall=mean([i.best_recall for i in tampered]),
                         f1=mean([i.best_f1 for i in tampered]), auc=self.per_image()["auc"])

    def pooled_oracle(self) -> dict:
        """ORACLE: the single threshold with the best pooled F1 (chosen with the ground truth)."""
        true_positive, false_positive = _counts_above(self.positive)[1:], _counts_above(self.negative)[1:]
        tampered, total = int(self.positive.sum()), int(self.positive.sum() + self.negative.sum())
        if tampered == 0:  # no tampered pixel: no threshold has a best F1
            undefined = float("nan")
            return self._row("pooled oracle", undefined, len(self.images), accuracy=undefined, precision=undefined,
                             recall=undefined, f1=undefined, auc=self.pooled_auc())
        f1_values = _f1(true_positive, false_positive, tampered - true_positive)
        k = int(np.argmax(f1_values)) if total else 0
        true_negative = total - tampered - false_positive[k] if total else 0
        return self._row("pooled oracle", (k + 1) / self.bins, len(self.images),
                         accuracy=_ratio(true_positive[k] + true_negative, total),
                         precision=_ratio(true_positive[k], true_positive[k] + false_positive[k]),
                         recall=_ratio(true_positive[k], tampered), f1=float(f1_values[k]), auc=self.pooled_auc())

    def table(self, protocols=PROTOCOLS) -> list[dict]:
        """One row per protocol: protocol, threshold, images counted, accuracy, precision, recall, f1, auc."""
        methods = {"per-image": self.per_image, "pooled": self.pooled, "weighted": self.weighted,
                   "per-image oracle": self.per_image_oracle, "pooled oracle": self.pooled_oracle}
        unknown = set(protocols) - set(methods)
        if unknown:
            raise ValueError(f"unknown protocols {sorted(unknown)}; choose from {PROTOCOLS}.")
        return [methods[protocol]() for protocol in protocols]

    def roc_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pooled ROC curve: (false-positive rate, true-positive rate, thresholds), from high threshold to low."""
        true_positive, false_positive = _counts_above(self.positive), _counts_above(self.negative)
        thresholds = np.arange(self.bins + 1) / self.bins
        tpr = true_positive / max(1, self.positive.sum())
        fpr = false_positive / max(1, self.negative.sum())
        return fpr[::-1], tpr[::-1], thresholds[::-1]

    def precision_recall_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pooled precision-recall curve: (precision, recall, thresholds) at thresholds k / bins, k = 1..bins."""
        true_positive, false_positive = _counts_above(self.positive)[1:], _counts_above(self.negative)[1:]
        claimed = true_positive + false_positive
        precision = np.divide(true_positive, claimed, out=np.ones(self.bins), where=claimed > 0)
        recall = true_positive / max(1, self.positive.sum())
        return precision, recall, np.arange(1, self.bins + 1) / self.bins

    def result(self) -> dict[str, float]:
        """The two training metrics with their protocol in the name."""
        return {
            f"per_image_f1@{self.threshold:g}": self.per_image_f1(),
            "pooled_auc": self.pooled_auc(),
            "tampered_images": float(len(self.tampered_images)),
            "images": float(len(self.images)),
        }


# --- the ceiling of an output grid (notebook 03) -------------------------------------------------------------

def best_grid_map(mask: np.ndarray, stride: int) -> np.ndarray:
    """The best map a network with one logit per ``stride`` x ``stride`` cell can give: each cell's tampered fraction."""
    mask = np.asarray(mask, dtype=np.float32)
    height, width = mask.shape
    rows, columns = math.ceil(height / stride), math.ceil(width / stride)
    padded = np.zeros((rows * stride, columns * stride), np.float32)
    padded[:height, :width] = mask
    return padded.reshape(rows, stride, columns, stride).mean(axis=(1, 3))


def perfect_map_f1(mask: np.ndarray, *, input_size: int = 384, stride: int = 32, threshold: float = 0.5) -> float:
    """Per-image F1 at ``threshold`` of the best map an output grid of ``stride`` allows, on one mask.

    As in the network: the mask is resized to the square input (nearest), each
    grid cell takes the cell's tampered fraction (the best a logit per cell can
    say), the grid is upsampled bilinearly to the input, resized back to the
    mask's own size, thresholded and scored against the mask. A mask with no
    tampered pixel scores 1.0 when the map is empty too, else 0.0.
    """
    from PIL import Image

    mask = (np.asarray(mask) > 0).astype(np.uint8)
    height, width = mask.shape
    square = np.asarray(Image.fromarray(mask * 255).resize((input_size, input_size), Image.Resampling.NEAREST)) > 127
    grid = best_grid_map(square, stride)
    upsampled = np.asarray(Image.fromarray(grid).resize((input_size, input_size), Image.Resampling.BILINEAR))
    back = np.asarray(Image.fromarray(upsampled).resize((width, height), Image.Resampling.BILINEAR))
    predicted = back > threshold
    truth = mask.astype(bool)
    true_positive = int(np.sum(predicted & truth))
    denominator = int(predicted.sum()) + int(truth.sum())
    if denominator == 0:
        return 1.0
    return 2.0 * true_positive / denominator
