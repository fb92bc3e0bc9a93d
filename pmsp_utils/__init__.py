"""pmsp_utils: the helper package of the PMSP image-tampering-localization tutorials.

Meng et al., "Image Tampering Localization based on Pyramid Multi-Scale Pooling
Module". The modules follow the paper: ``ela`` (3.1), ``data`` (4.1),
``metrics`` (4.3). Importing this package never imports Keras or TensorFlow,
so the Keras backend can still be chosen after ``import pmsp_utils``.
"""

from __future__ import annotations

import os
import random

from . import environment
from .environment import import_keras_quietly, smoke_mode

__version__ = "0.1.0"

#: True when notebooks run in smoke mode (seconds, tiny data). See ``pmsp_utils.environment``.
SMOKE: bool = smoke_mode()


def setup(seed: int = 0, *, dpi: int = 80, keras: bool = False) -> dict:
    """Fix the random seeds and plotting defaults; the first call of every notebook.

    ``keras=True`` (the notebooks that build networks) also imports Keras now,
    quietly (see :func:`import_keras_quietly`), and seeds its generators.
    Returns a short summary (seed, smoke mode, versions) that notebooks print.
    """
    import numpy as np

    if keras:
        import_keras_quietly().utils.set_random_seed(seed)

    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import matplotlib as mpl

        mpl.rcParams.update(
            {
                "figure.dpi": dpi,
                "savefig.dpi": dpi,
                "figure.figsize": (8, 4),
                "image.interpolation": "nearest",
                "axes.titlesize": "medium",
            }
        )
    except ImportError:  # matplotlib is a dependency; this only guards odd installs.
        pass
    import PIL

    return {"seed": seed, "smoke": SMOKE, "pmsp_utils": __version__, "numpy": np.__version__, "pillow": PIL.__version__}


__all__ = ["SMOKE", "__version__", "environment", "import_keras_quietly", "setup"]
