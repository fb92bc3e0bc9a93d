"""Pixel-level metrics, the paper's section 4.3. Every function names its protocol.

Defined in 01_error_level_analysis (pixel AUC); extended in 05_evaluation.
"""

from __future__ import annotations

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


class PixelMetrics:
    """Accumulates pixel metrics image by image, in bounded memory.

    - ``per_image_f1``: F1 at ``threshold`` per tampered image, averaged over
      tampered images (the MVSS-Net / IMDLBenCo protocol);
    - ``pooled_auc``: ROC AUC over all pixels of all images together, from two
      score histograms of ``bins`` bins (scores within one bin count as ties;
      the error against the exact AUC is at most about 1 / bins).

    Memory is two histograms and a list of one float per tampered image,
    whatever the number of images.
    """

    def __init__(self, threshold: float = 0.5, bins: int = DEFAULT_BINS) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}.")
        self.threshold, self.bins = threshold, bins
        self.positive = np.zeros(bins, np.int64)
        self.negative = np.zeros(bins, np.int64)
        self.f1_values: list[float] = []
        self.images = 0

    def update(self, probability: np.ndarray, mask: np.ndarray) -> None:
        """Add one image: a probability map in [0, 1] and its 0/1 mask of the same shape."""
        scores, truth = _check_pair(probability, mask)
        if scores.min() < 0.0 or scores.max() > 1.0:
            raise ValueError("probabilities must lie in [0, 1].")
        index = np.minimum((scores * self.bins).astype(np.int64), self.bins - 1)
        self.positive += np.bincount(index[truth], minlength=self.bins)
        self.negative += np.bincount(index[~truth], minlength=self.bins)
        if truth.any():
            self.f1_values.append(f1_score(scores >= self.threshold, truth))
        self.images += 1

    def per_image_f1(self) -> float:
        """Mean F1 at the threshold over tampered images (NaN when there were none)."""
        return float(np.mean(self.f1_values)) if self.f1_values else float("nan")

    def pooled_auc(self) -> float:
        """ROC AUC over all pixels seen (NaN when one class is missing)."""
        positives, negatives = self.positive.sum(), self.negative.sum()
        if positives == 0 or negatives == 0:
            return float("nan")
        # For each positive bin: negatives in lower bins win fully, in the same bin count half.
        negatives_below = np.cumsum(self.negative) - self.negative
        wins = (self.positive * (negatives_below + 0.5 * self.negative)).sum()
        return float(wins / (positives * negatives))

    def result(self) -> dict[str, float]:
        """The metrics with their protocol in the name."""
        return {
            f"per_image_f1@{self.threshold:g}": self.per_image_f1(),
            "pooled_auc": self.pooled_auc(),
            "tampered_images": float(len(self.f1_values)),
            "images": float(self.images),
        }
