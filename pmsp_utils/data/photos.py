"""Photos that ship inside installed packages: the raw material of the embedded examples.

No download is needed: scikit-image, scikit-learn and matplotlib carry these
files. They are found by path, without importing those packages.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..images import ImageTooLargeError, load_image


@dataclass(frozen=True)
class Photo:
    """One packaged photo: where it lives and where it comes from."""

    name: str
    package: str
    relative_path: str
    credit: str

    def path(self) -> Path:
        """The file's location in the installed package."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"Photo {self.name!r} ships with the package {self.package!r}, which is not installed. "
                f"Install it with: pip install {_PIP_NAMES.get(self.package, self.package)}"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.relative_path
        if not path.is_file():
            raise FileNotFoundError(f"Photo {self.name!r}: {path} is missing from the installed {self.package}.")
        return path


_PIP_NAMES = {"skimage": "scikit-image", "sklearn": "scikit-learn"}

#: Natural colour photos, by short name.
PHOTOS: dict[str, Photo] = {
    photo.name: photo
    for photo in [
        Photo("astronaut", "skimage", "data/astronaut.png", "NASA (Eileen Collins), public domain; scikit-image"),
        Photo("chelsea", "skimage", "data/chelsea.png", "Stefan van der Walt, CC0; scikit-image"),
        Photo("coffee", "skimage", "data/coffee.png", "Rachel Michetti, CC0; scikit-image"),
        Photo("rocket", "skimage", "data/rocket.jpg", "SpaceX, public domain; scikit-image"),
        Photo("motorcycle", "skimage", "data/motorcycle_left.png", "Middlebury stereo set; scikit-image"),
        Photo("china", "sklearn", "datasets/images/china.jpg", "Summer Palace, CC-BY; scikit-learn"),
        Photo("flower", "sklearn", "datasets/images/flower.jpg", "Flower, CC-BY; scikit-learn"),
        Photo("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "US Navy, public domain; matplotlib"),
    ]
}


def photo_names() -> list[str]:
    """The names accepted by :func:`load_photo`."""
    return list(PHOTOS)


def load_photo(name: str) -> np.ndarray:
    """A packaged photo as a uint8 RGB array (H, W, 3)."""
    if name not in PHOTOS:
        raise ValueError(f"Unknown photo {name!r}; choose one of {photo_names()}.")
    try:
        return np.array(load_image(PHOTOS[name].path()).image.convert("RGB"))
    except ImageTooLargeError:  # the limit is meant for inputs: say which setting stops a packaged photo
        from PIL import Image

        raise ImageTooLargeError(f"PMSP_MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS} is below the size of the packaged photo "
                                 f"{name!r} that the synthetic set is made from (under a megapixel); raise it, or unset it.") from None
