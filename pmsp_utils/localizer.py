"""Deprecated name of :mod:`pmsp_utils.batch_files`, kept for one release."""

from ._renamed import hand_over

hand_over(__name__)
