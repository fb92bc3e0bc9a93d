"""Deprecated name of :mod:`pmsp_utils.network` (the network's layers and builders), kept for one release; its
submodules ``network`` and ``weights`` are now ``pmsp_utils.network.build`` and ``pmsp_utils.network.imagenet``."""

from .._renamed import hand_over

hand_over(__name__)
