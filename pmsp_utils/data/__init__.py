"""Forgery data, the paper's section 4.1: sample photos, the embedded synthetic set, loaders."""

from .photos import PHOTOS, load_photo, photo_names

__all__ = ["PHOTOS", "load_photo", "photo_names"]
