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
