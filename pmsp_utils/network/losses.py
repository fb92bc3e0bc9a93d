"""Losses for imbalanced masks (tampered pixels are few). Defined in 04_training.

Registered for Keras serialisation, so checkpoints that use them load in safe mode.
Every loss skips pixels whose target is negative (-1): padding outside the image
(``pipeline.IGNORE`` in a mask), so only the image's own pixels count.
"""

from __future__ import annotations

import keras
from keras import ops

_EPSILON = 1e-7


def _valid(target):
    """(target with ignored pixels set to 0, 1 where the pixel counts and 0 where it is ignored)."""
    valid = ops.cast(target >= 0.0, target.dtype)
    return target * valid, valid


def _masked_mean(per_pixel, valid):
    return ops.sum(per_pixel * valid, axis=(1, 2, 3)) / ops.maximum(ops.sum(valid, axis=(1, 2, 3)), 1.0)


def _weighted_bce(target, prediction, positive_weight):
    target, valid = _valid(target)
    prediction = ops.clip(prediction, _EPSILON, 1.0 - _EPSILON)
    per_pixel = -(positive_weight * target * ops.log(prediction) + (1.0 - target) * ops.log(1.0 - prediction))
    return _masked_mean(per_pixel, valid)


@keras.saving.register_keras_serializable(package="pmsp")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy with tampered pixels weighted ``positive_weight`` times."""

    def __init__(self, positive_weight: float = 1.0, name: str = "weighted_bce", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.positive_weight = positive_weight

    def call(self, target, prediction):
        return _weighted_bce(ops.cast(target, prediction.dtype), prediction, self.positive_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "positive_weight": self.positive_weight}


@keras.saving.register_keras_serializable(package="pmsp")
class WeightedBceDice(WeightedBinaryCrossentropy):
    """(Weighted) binary cross-entropy plus the soft Dice loss of each image."""

    def __init__(self, positive_weight: float = 1.0, name: str = "bce_dice", **kwargs) -> None:
        super().__init__(positive_weight, name=name, **kwargs)

    def call(self, target, prediction):
        target = ops.cast(target, prediction.dtype)
        positive, valid = _valid(target)
        inside = prediction * valid
        overlap = ops.sum(positive * inside, axis=(1, 2, 3))
        total = ops.sum(positive, axis=(1, 2, 3)) + ops.sum(inside, axis=(1, 2, 3))
        dice = 1.0 - (2.0 * overlap + 1.0) / (total + 1.0)
        return super().call(target, prediction) + dice


@keras.saving.register_keras_serializable(package="pmsp")
class BinaryFocal(keras.losses.Loss):
    """Focal loss (Lin et al. 2017): easy pixels count less; ``gamma`` 2, ``alpha`` 0.25 for tampered pixels."""

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25, name: str = "binary_focal", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.gamma, self.alpha = gamma, alpha

    def call(self, target, prediction):
        target, valid = _valid(ops.cast(target, prediction.dtype))
        prediction = ops.clip(prediction, _EPSILON, 1.0 - _EPSILON)
        right = target * prediction + (1.0 - target) * (1.0 - prediction)
        weight = target * self.alpha + (1.0 - target) * (1.0 - self.alpha)
        return _masked_mean(-weight * (1.0 - right) ** self.gamma * ops.log(right), valid)

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}
