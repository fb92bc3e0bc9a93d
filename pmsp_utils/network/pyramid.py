"""The pyramid pooling module, the paper's section 3.3. Defined in 03_building_the_network.

The fused F5 map is average-pooled into 1x1, 2x2, 3x3 and 6x6 bins; each bin map
is reduced by a 1x1 convolution, normalised, passed through ReLU and upsampled
bilinearly back to F5's size; the four are concatenated with F5 itself.
"""

from __future__ import annotations

from keras import layers

from ..model_settings import BINS


def pyramid_pooling(x, bins: tuple[int, ...] = BINS, channels: int = 256, name: str = "ppm"):
    """Apply the pyramid pooling module to ``x`` (B, h, w, C); h and w must divide by every bin."""
    height, width = x.shape[1], x.shape[2]
    for size in bins:
        if height % size or width % size:
            raise ValueError(f"a {height}x{width} feature map does not divide into {size}x{size} bins.")
    branches = [x]
    for size in bins:
        pool = (height // size, width // size)
        y = layers.AveragePooling2D(pool_size=pool, strides=pool, name=f"{name}_pool_{size}")(x)
        y = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_reduce_{size}")(y)
        y = layers.BatchNormalization(name=f"{name}_bn_{size}")(y)
        y = layers.ReLU(name=f"{name}_relu_{size}")(y)
        y = layers.UpSampling2D(size=pool, interpolation="bilinear", name=f"{name}_upsample_{size}")(y)
        branches.append(y)
    return layers.Concatenate(name=f"{name}_concat")(branches)
