"""A seeded mutation fuzzer over image loading and ELA: damaged files raise only the documented errors.

Seeds: small JPEG, PNG, GIF (several frames), TIFF, WebP and BMP files made from
a real photo. Each round flips, inserts, deletes or truncates bytes (more often
in the header, where the parsers branch) and feeds the result to
``load_image`` and ``ela``. Anything but a decoded image or an
``ImageReadError`` / ``ImageTooLargeError`` (both ``ValueError``) fails the test.
Bounded by a time budget (``PMSP_FUZZ_SECONDS``, default 20) and a round count,
so it stays near a minute in CI with every format covered.
"""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
from PIL import Image

from pmsp_utils.ela import ela
from pmsp_utils.images import ImageReadError, load_image

FORMATS = ("JPEG", "PNG", "GIF", "TIFF", "WEBP", "BMP")
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")]


def seeds(photo: np.ndarray) -> dict[str, bytes]:
    small = Image.fromarray(photo[:40, :48])
    made = {}
    for fmt in FORMATS:
        buffer = io.BytesIO()
        if fmt == "GIF":
            frames = [small.convert("P"), Image.fromarray(photo[40:80, :48]).convert("P")]
            frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
        elif fmt == "TIFF":
            small.save(buffer, format="TIFF", compression="tiff_lzw")
        else:
            small.save(buffer, format=fmt)
        made[fmt] = buffer.getvalue()
    return made


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        operation = rng.integers(0, 4)
        header = rng.random() < 0.6
        limit = min(len(data), 64) if header else len(data)
        if not data or limit == 0:
            break
        position = int(rng.integers(0, limit))
        if operation == 0:
            data[position] = int(rng.integers(0, 256))
        elif operation == 1:
            data[position:position] = bytes(rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8))
        elif operation == 2:
            del data[position : position + int(rng.integers(1, 8))]
        else:
            data = data[: max(1, position if not header else int(rng.integers(1, len(data) + 1)))]
    return bytes(data)


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_files_raise_only_documented_errors(photo, fmt):
    budget = float(os.environ.get("PMSP_FUZZ_SECONDS", "20")) / len(FORMATS)
    seed = seeds(photo)[fmt]
    rng = np.random.default_rng(list(fmt.encode()))
    started, rounds, refused = time.perf_counter(), 0, 0
    while rounds < 2000 and (rounds < 50 or time.perf_counter() - started < budget):
        damaged = mutate(seed, rng)
        rounds += 1
        try:
            loaded = load_image(damaged, name=f"{fmt} round {rounds}")
            ela(damaged)
        except ImageReadError as error:  # ImageTooLargeError is one too
            assert f"{fmt} round {rounds}" in str(error) or "bytes" in str(error)
            refused += 1
            continue
        except Exception as error:  # noqa: BLE001  (the point of the test)
            pytest.fail(f"{fmt} round {rounds}: {type(error).__name__}: {error} (mutation of a {len(seed)}-byte seed)")
        assert loaded.image.size[0] > 0 and loaded.image.size[1] > 0
    assert rounds >= 50 and refused > 0
