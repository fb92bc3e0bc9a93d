"""Forgeries made on real photos (pmsp_utils.data.forgeries): exact masks, no fill, disjoint splits, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pmsp_utils.data.forgeries import (PhotoForgeryConfig, PhotoForgerySet, final_save, forged_parts, photo_id, segment_region,
                                       segments, split_photos, transform_patch)

PNG_ONLY = PhotoForgeryConfig(final_saves=(0.0, 0.0, 1.0), resize=0.0)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Ten camera-like JPEGs cut from the packaged photos, named as CASIA names its authentic images."""
    from pmsp_utils.data import load_photo

    folder = tmp_path_factory.mktemp("authentic")
    paths = []
    for index, (name, top, left) in enumerate([(n, t, c) for n in ("china", "coffee", "chelsea", "astronaut", "rocket")
                                               for t, c in ((0, 0), (90, 110))]):
        pixels = load_photo(name)[top : top + 160, left : left + 224]
        path = folder / f"Au_{name[:3]}_{index:04d}.jpg"
        Image.fromarray(pixels).save(path, quality=88)
        paths.append(path)
    return paths


def host_of(forgery, photos):
    return np.asarray(Image.open(next(p for p in photos if p.name == forgery.provenance["host_file"])).convert("RGB"))


def test_outside_the_mask_a_lossless_forgery_equals_its_host(photos):
    generator = PhotoForgerySet(photos, 24, seed=3, config=PNG_ONLY)
    tampered = 0
    for forgery in generator:
        host = host_of(forgery, photos)
        rows, cols = forgery.provenance.get("crop", (0, 0))
        host = host[rows:, cols:]
        outside = forgery.mask == 0
        assert forgery.image.shape == host.shape
        assert np.array_equal(forgery.image[outside], host[outside]), forgery.provenance
        if forgery.provenance["kind"] != "authentic":
            tampered += 1
            assert forgery.mask.any() and (forgery.image[~outside] != host[~outside]).any(), forgery.provenance
    assert tampered >= 12  # the default shares: about 84% forgeries


def test_outside_the_mask_a_jpeg_forgery_equals_its_host_through_the_same_save(photos):
    """Away from the mask (two 16x16 JPEG units), the forged file decodes to the host saved the same way."""
    config = PhotoForgeryConfig(final_saves=(1.0, 1.0, 0.0), resize=0.0, splicing=0.5, copy_move=0.5)
    for forgery in PhotoForgerySet(photos, 8, seed=5, config=config):
        host = host_of(forgery, photos)
        _, saved, _ = final_save(host, np.zeros(host.shape[:2], np.uint8), forgery.provenance)
        far = np.asarray(Image.fromarray(forgery.mask * 255).filter(__import__("PIL.ImageFilter").ImageFilter.MaxFilter(65))) == 0
        assert far.any()
        assert np.array_equal(forgery.image[far], saved[far]), forgery.provenance


def test_a_rotated_or_scaled_paste_carries_no_fill():
    """A white photo rotated, scaled and mirrored: every pixel the paste keeps is white, none is the black fill."""
    white = np.full((120, 160, 3), 255, np.uint8)
    region = np.zeros((120, 160), np.uint8)
    region[2:118, 3:157] = 1  # up to the border: rotation must drop the corners that would sample outside
    for angle, scale, mirror in ((37.0, 1.0, False), (0.0, 1.4, True), (-55.0, 0.7, False), (80.0, 1.3, True)):
        patch, alpha = transform_patch(white, region, angle=angle, scale=scale, mirror=mirror)
        assert alpha.sum() > 1000
        assert patch[alpha == 1].min() >= 254, (angle, scale)
        if angle:
            assert (patch[alpha == 0] < 250).any()  # the rotation's fill is there, outside what is pasted


def test_rotated_and_scaled_forgeries_paste_only_photo_pixels(photos):
    """Through the whole generator: a rotated or scaled copy-move of a white photo pastes only white."""
    folder = photos[0].parent / "white"
    folder.mkdir(exist_ok=True)
    for index in range(2):
        Image.fromarray(np.full((150, 200, 3), 255, np.uint8)).save(folder / f"w{index}.png")
    config = PhotoForgeryConfig(rotate=1.0, scale=1.0, splicing=0.5, copy_move=0.5, final_saves=(0, 0, 1), resize=0.0, adjust=0.0, feather=0.0)
    generator = PhotoForgerySet(sorted(folder.iterdir()), 6, seed=1, config=config)
    for forgery in generator:
        if forgery.provenance["kind"] != "authentic":
            assert forgery.provenance["angle"] != 0 and forgery.provenance["scale"] != 1
            assert forgery.image[forgery.mask == 1].min() >= 254


def test_regions_follow_segments_and_are_connected(photos):
    pixels = np.asarray(Image.open(photos[0]).convert("RGB"))
    rng = np.random.default_rng(0)
    labels = segments(pixels, "slic", rng)
    region = segment_region(labels, 0.08, rng)
    assert 0.02 < region.mean() < 0.2
    inside = np.unique(labels[region == 1])
    assert all((labels[region == 1] == label).sum() == (labels == label).sum() for label in inside if not (labels == label)[:6].any())
    from scipy import ndimage

    assert ndimage.label(region)[1] == 1  # one connected piece


def test_forgeries_are_deterministic_and_record_their_history(photos):
    first = PhotoForgerySet(photos, 6, seed=2)
    second = PhotoForgerySet(photos, 6, seed=2)
    for a, b in zip(first, second):
        assert a.data == b.data and np.array_equal(a.mask, b.mask) and a.provenance == b.provenance
        assert a.provenance["final"] in ("jpeg", "double_jpeg", "png") and a.provenance["host_history"] == "camera JPEG"
        assert len(a.provenance.get("qualities", [])) == {"jpeg": 1, "double_jpeg": 2, "png": 0}[a.provenance["final"]]
    assert PhotoForgerySet(photos, 6, seed=3)[0].data != first[0].data or PhotoForgerySet(photos, 6, seed=3)[1].data != first[1].data


def test_parts_share_no_photo_and_keep_reserved_photos(photos, tmp_path):
    reserved = {"validation": {photo_id(photos[1])}, "test": {photo_id(photos[2]), photo_id(photos[3])}}
    split = split_photos(photos, reserved=reserved, fractions=(0.6, 0.2, 0.2))
    assert photos[1] in split["validation"] and photos[2] in split["test"] and photos[3] in split["test"]
    assert sum(len(part) for part in split.values()) == len(photos)
    parts = forged_parts(photos, {"train": 10, "validation": 4, "test": 4}, seed=0, reserved=reserved, cache=tmp_path)
    used = {part: {source for record in dataset.records for source in record.source_ids} for part, dataset in parts.items()}
    assert used["train"] and used["validation"] and used["test"]
    assert not used["train"] & used["validation"] and not used["train"] & used["test"] and not used["validation"] & used["test"]
    assert used["validation"] <= {photo_id(p) for p in split["validation"]}
    # written once, read back with the same records
    again = forged_parts(photos, {"train": 10}, seed=0, reserved=reserved, cache=tmp_path)["train"]
    assert [(r.name, r.kind, r.source_ids) for r in again.records] == [(r.name, r.kind, r.source_ids) for r in parts["train"].records]
    for record in again.records:
        mask = record.load_mask()
        assert mask.any() == record.is_tampered


def test_too_few_photos_is_a_clear_error(tmp_path):
    from pmsp_utils.data.forgeries import list_photos

    with pytest.raises(FileNotFoundError, match="no such folder"):
        list_photos(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="at least two"):
        list_photos(tmp_path)


def test_authentic_negatives_come_from_the_training_side_only(tmp_path):
    """``--authentic N``: untouched photos whose forgeries are in validation or test never train, and the choice is a
    fixed sample of the training side's photos."""
    from types import SimpleNamespace

    from pmsp_utils.data.records import Record
    from pmsp_utils.train import authentic_negatives

    photos = [Record("casia1", f"Au_ani_{index:04d}", "authentic", tmp_path / f"Au_ani_{index:04d}.jpg") for index in range(40)]
    held = Record("casia1", "Sp_D_CNN_A_ani0003_ani0007_0001", "splicing", tmp_path / "x.jpg", source_ids=("ani0003", "ani0007"))
    tested = Record("casia1", "Sp_S_CNN_A_ani0011_ani0011_0002", "copy-move", tmp_path / "y.jpg", source_ids=("ani0011",))
    split = SimpleNamespace(parts=lambda: {"train": (), "validation": (held,), "test": (tested,)})
    dataset = [*photos, held, tested]
    chosen = authentic_negatives(dataset, split, 1000)
    names = {record.name for record in chosen}
    assert names and not names & {"Au_ani_0003", "Au_ani_0007", "Au_ani_0011"}
    assert all(not record.is_tampered for record in chosen)
    assert len(chosen) < len(photos) - 3  # the photo split keeps some untouched photos for validation and test too
    few = authentic_negatives(dataset, split, 5)
    assert len(few) == 5 and {record.name for record in few} <= names
    assert few == authentic_negatives(dataset, split, 5)  # the same sample every time
