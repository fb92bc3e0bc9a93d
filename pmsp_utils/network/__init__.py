"""The PMSP network in Keras 3, the paper's sections 3.2 and 3.3. Importing this imports Keras.

- :mod:`.attention`: Coordinate Attention (Hou et al. 2021).
- :mod:`.backbone`: a MobileNetV1 stream with the layer names of ``keras.applications.MobileNet``.
- :mod:`.pyramid`: the pyramid pooling module.
- :mod:`.network`: :func:`build_pmsp`, the dual-stream network.
- :mod:`.weights`: ImageNet and local ``.h5`` weights, loaded by layer name.
- :mod:`.folding`: batch normalisation folded into the convolutions, for faster inference.
- :mod:`.ensemble`: several trained networks averaged as one model, each seeing the image or its mirror.
"""

from .attention import CoordinateAttention
from .backbone import FEATURE_LAYERS, mobilenet_v1_stream
from .ensemble import VIEWS, Mirror, build_ensemble, ensemble_members
from .folding import Folded, fold_batch_norm
from .build import ATTENTION_PLACEMENTS, FUSIONS, STREAMS, build_pmsp, nearest_valid_sizes
from .pyramid import pyramid_pooling
from .imagenet import WeightReport, WeightsUnavailableError, imagenet_weights_path, load_backbone_weights

__all__ = [
    "ATTENTION_PLACEMENTS", "FEATURE_LAYERS", "FUSIONS", "STREAMS", "VIEWS", "CoordinateAttention", "Folded", "Mirror",
    "WeightReport", "WeightsUnavailableError", "build_ensemble", "build_pmsp", "ensemble_members", "fold_batch_norm",
    "imagenet_weights_path", "load_backbone_weights", "mobilenet_v1_stream", "nearest_valid_sizes", "pyramid_pooling",
]
