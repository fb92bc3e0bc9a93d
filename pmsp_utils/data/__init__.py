"""Forgery data, the paper's section 4.1: sample photos, real-dataset loaders, splits, the synthetic set.

- :func:`load_casia1`, :func:`load_casia2`, :func:`load_folder`, :func:`load_dataset`: one :class:`Record` per image.
- :func:`verify`: what a downloaded copy holds, against ``data_manifest.csv``.
- :func:`paper_split`, :func:`cross_dataset_split`: reproducible splits from file names.
"""

from .casia import load_casia1, load_casia2, parse_name
from .folder import load_folder
from .manifest import read_manifest
from .photos import PHOTOS, load_photo, photo_names
from .records import KINDS, Dataset, Record, read_mask
from .splits import SPLIT_PROTOCOLS, Split, cross_dataset_split, grouped_split, paper_split, source_groups, split_by
from .verify import VerifyReport, load_dataset, verify

__all__ = [
    "KINDS", "PHOTOS", "SPLIT_PROTOCOLS", "Dataset", "Record", "Split", "VerifyReport", "cross_dataset_split", "grouped_split", "load_casia1",
    "load_casia2", "load_dataset", "load_folder", "load_photo", "paper_split", "parse_name", "photo_names",
    "read_manifest", "read_mask", "source_groups", "split_by", "verify",
]
