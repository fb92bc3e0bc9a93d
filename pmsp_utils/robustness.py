"""Robustness: how the metrics fall as test images are recompressed, resized, blurred and noised.

Defined in 05_evaluation. Each perturbation is applied to the image as a user
would meet it (a JPEG recompression is handed over as JPEG bytes, so ELA sees
the new compression history); the mask follows resizing by nearest neighbour.
Every curve starts from the clean image ("none").
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from .data.records import Record
from .data.splits import name_hash
from .metrics import PixelMetrics
from .progress import progress

#: (perturbation, levels): the levels each curve visits after the clean image.
DEFAULT_LEVELS = {
    "jpeg": (100, 90, 80, 70, 60, 50),  # quality
    "resize": (0.75, 0.5),  # scale factor
    "blur": (0.5, 1.0, 2.0),  # Gaussian sigma, pixels
    "noise": (2.0, 5.0, 10.0),  # Gaussian sigma, grey levels
}
UNITS = {"jpeg": "JPEG quality", "resize": "scale", "blur": "blur sigma (px)", "noise": "noise sigma (grey levels)"}


def perturb(image: np.ndarray, mask: np.ndarray, kind: str, level: float, *, seed: int = 0) -> tuple[np.ndarray | bytes, np.ndarray]:
    """(perturbed image, mask at its size); a JPEG recompression comes back as the file's bytes."""
    if kind not in DEFAULT_LEVELS:
        raise ValueError(f"perturbation must be one of {tuple(DEFAULT_LEVELS)}, got {kind!r}.")
    picture = Image.fromarray(image)
    if kind == "jpeg":
        if not 1 <= level <= 100:
            raise ValueError(f"JPEG quality must be 1..100, got {level}.")
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=int(level))
        return buffer.getvalue(), mask
    if kind == "resize":
        if not 0 < level <= 4:
            raise ValueError(f"scale must be in (0, 4], got {level}.")
        size = (max(1, round(image.shape[1] * level)), max(1, round(image.shape[0] * level)))
        resized_mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
        return np.asarray(picture.resize(size, Image.Resampling.BILINEAR)), resized_mask
    if level < 0:
        raise ValueError(f"{kind} sigma must be non-negative, got {level}.")
    if kind == "blur":
        return np.asarray(picture.filter(ImageFilter.GaussianBlur(level))), mask
    noise = np.random.default_rng(seed).normal(0.0, level, image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8), mask


@dataclass(frozen=True)
class CurvePoint:
    perturbation: str
    level: str
    images: int
    per_image_f1: float
    pooled_auc: float


def robustness_curves(records: Iterable[Record], predict: Callable[[np.ndarray | bytes], np.ndarray], *,
                      levels: dict[str, Sequence[float]] | None = None, threshold: float = 0.5,
                      show_progress: bool | None = None) -> list[CurvePoint]:
    """Per-image F1 at ``threshold`` and pooled AUC at each level of each perturbation.

    ``predict`` maps an image (array or encoded bytes) to a probability map at
    its size: ``lambda image: localize(model, image).probability`` or a baseline.
    Tampered images only (F1 is defined on them).
    """
    levels = dict(DEFAULT_LEVELS if levels is None else levels)
    unknown = set(levels) - set(DEFAULT_LEVELS)
    if unknown:
        raise ValueError(f"unknown perturbations {sorted(unknown)}; choose from {tuple(DEFAULT_LEVELS)}.")
    records = [record for record in records if record.is_tampered]
    if not records:
        raise ValueError("robustness curves need tampered images.")
    clean = PixelMetrics(threshold)
    metrics = {(kind, level): PixelMetrics(threshold) for kind, values in levels.items() for level in values}
    for record in progress(records, total=len(records), description="robustness", show=show_progress):
        image = record.load_image()
        mask = record.load_mask(image.shape[:2])
        clean.update(predict(image), mask)
        for (kind, level), accumulator in metrics.items():
            perturbed, perturbed_mask = perturb(image, mask, kind, level, seed=name_hash(record.name) % 2**32)
            accumulator.update(predict(perturbed), perturbed_mask)
    points = []
    for kind in levels:
        points.append(CurvePoint(kind, "none", len(records), clean.per_image_f1(), clean.pooled_auc()))
        points += [CurvePoint(kind, f"{level:g}", len(records), metrics[kind, level].per_image_f1(), metrics[kind, level].pooled_auc())
                   for level in levels[kind]]
    return points
