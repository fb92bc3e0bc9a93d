"""Distillation: a teacher's maps, computed once, mixed with the ground truth in the training targets.

Defined in 04_training. A strong model (the shipped ``casia1`` pair) sees every
training image once, at the student's input; its probability maps are cached on
disk as uint8 beside the input cache (``PMSP_CACHE_DIR/teacher``), keyed by the
teacher's weights, the image and mask bytes, and the input settings. During
training the target of a pixel becomes

    target = (1 - w) * mask + w * teacher,    w = ``distill_weight``

on images that have a teacher map (``mix_targets``); the others keep their
exact masks. The soft targets carry what the teacher learned beyond the
binary mask (how sure it is near an edge, where a region is ambiguous), the
way Hinton et al. (2015) distil an ensemble into one network.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .data.records import Record
from .ela import load_npy, save_npy_atomic


def mix_targets(mask: np.ndarray, teacher: np.ndarray | None, weight: float) -> np.ndarray:
    """float32 targets: ``(1 - weight) * mask + weight * teacher / 255`` (``teacher`` uint8 of the mask's shape,
    resized bilinearly when its shape differs); the mask as float when there is no teacher map."""
    target = mask.astype(np.float32)
    if teacher is None or weight == 0:
        return target
    if teacher.shape != mask.shape:
        teacher = np.asarray(Image.fromarray(np.ascontiguousarray(teacher)).resize((mask.shape[1], mask.shape[0]), Image.Resampling.BILINEAR))
    return (1.0 - weight) * target + weight * (teacher.astype(np.float32) / 255.0)


def teacher_identity(spec: str) -> str:
    """A digest of the teacher's weights (a shipped name's files and card, a run folder's weights, or a file)."""
    from .runtime import model_identity

    return model_identity(spec)


class TeacherMaps:
    """The teacher's map of each training image at the student's input, on disk, computed once.

    ``input_cache``: the student's :class:`~pmsp_utils.train.InputCache`; a teacher map is keyed by that cache's
    entry for the record (image, mask and input settings) and the teacher's identity.
    """

    def __init__(self, teacher: str, input_cache, directory: str | Path | None = None) -> None:
        self.teacher = teacher
        self.input_cache = input_cache
        self.identity = teacher_identity(teacher)
        self.directory = Path(directory) if directory is not None else input_cache.directory.parent / "teacher"
        self._maps: dict[Path, np.ndarray] = {}
        self._lock = threading.Lock()

    def path_for(self, record: Record) -> Path:
        key = hashlib.blake2b((self.identity + "|" + self.input_cache.path_for(record).stem).encode(), digest_size=16).hexdigest()
        return self.directory / key[:2] / f"{key}.npy"

    def prepare(self, records: Sequence[Record], load, *, echo=print, show_progress: bool | None = None) -> int:
        """Compute the missing maps of ``records`` (``load(index)`` gives a record's (image, ela, mask)); returns how
        many were computed. The teacher is loaded only when a map is missing."""
        from .progress import progress

        missing = [index for index, record in enumerate(records) if not self.path_for(record).exists()]
        if missing:
            from .models import load_model

            echo(f"distillation: computing {self.teacher}'s maps of {len(missing)} of {len(records)} training images once "
                 f"(cached in {self.directory})")
            teacher = load_model(self.teacher, input_size=self.input_cache.input_size, inference=True).model
            size = self.input_cache.input_size
            for index in progress(missing, total=len(missing), description="teacher maps", show=show_progress):
                record = records[index]
                entry = self.input_cache.get(record, lambda index=index: load(index))
                height, width = entry.shape[:2]
                rgb = np.zeros((1, size, size, 3), np.uint8)
                ela = np.zeros((1, size, size, 3), np.uint8)
                rgb[0, :height, :width], ela[0, :height, :width] = entry[..., 0:3], entry[..., 3:6]
                probability = np.asarray(teacher.predict_on_batch({"rgb": rgb, "ela": ela}), np.float32)[0, :height, :width, 0]
                save_npy_atomic(self.path_for(record), np.round(np.clip(probability, 0, 1) * 255).astype(np.uint8))
        return len(missing)

    def get(self, record: Record) -> np.ndarray | None:
        """uint8 (h, w) map of ``record`` at its placed extent, or None when it was not prepared."""
        path = self.path_for(record)
        with self._lock:
            known = self._maps.get(path)
        if known is None:
            try:
                known = load_npy(path)
            except (OSError, ValueError):
                return None
            with self._lock:
                self._maps[path] = known
        return known
