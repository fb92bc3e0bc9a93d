"""Camera-like test photos for the benchmarks (bench_localize.py and run.py): packaged photos, zoomed and cropped to a
size, saved as JPEG; every file differs in content."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from pmsp_utils.data import load_photo, photo_names


def make_images(folder: Path, size: tuple[int, int], count: int) -> list[Path]:
    """``count`` distinct camera-like JPEGs (quality 85) of ``size`` (width, height) from packaged photos.

    Every file differs in content (another zoom of the photo), so the content-keyed
    cache cannot turn repeats into hits during the first pass.
    """
    paths = []
    names = photo_names()
    for index in range(count):
        photo = Image.fromarray(load_photo(names[index % len(names)]))
        zoom = 1.0 + 0.07 * (index // len(names))
        scale = zoom * max(size[0] / photo.width, size[1] / photo.height)
        enlarged = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.BICUBIC)
        left, top = (enlarged.width - size[0]) // 2, (enlarged.height - size[1]) // 2
        picture = enlarged.crop((left, top, left + size[0], top + size[1]))
        path = folder / f"{size[0]}x{size[1]}_{index:02d}.jpg"
        picture.save(path, format="JPEG", quality=85)
        paths.append(path)
    return paths
