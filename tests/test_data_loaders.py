"""Loaders, verify() and splits on small fixtures that reproduce the real layouts and their quirks."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pmsp_utils.data import (
    Record,
    cross_dataset_split,
    load_casia1,
    load_casia2,
    load_dataset,
    load_folder,
    paper_split,
    parse_name,
    read_manifest,
    read_mask,
    verify,
)
from pmsp_utils.data.manifest import COLUMNS
from pmsp_utils.data.splits import Split


def scene(height: int, width: int, box: tuple[int, int, int, int], seed: int = 0) -> np.ndarray:
    """A textured image with a bright box (top, left, bottom, right): strong edges along the box."""
    rng = np.random.default_rng(seed)
    image = rng.integers(20, 60, size=(height, width, 3), dtype=np.uint8)
    top, left, bottom, right = box
    image[top:bottom, left:right] = rng.integers(190, 240, size=(bottom - top, right - left, 3), dtype=np.uint8)
    return image


def box_mask(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = 255
    return mask


def save(array: np.ndarray, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)
    return path


BOX = (8, 6, 30, 40)  # in a 48x64 (height x width) landscape image


@pytest.fixture()
def casia1_official(tmp_path) -> Path:
    """CASIA v1 as distributed: Au/, Tp/Sp, Tp/CM and the groundtruth folder beside them, with every quirk."""
    root = tmp_path / "CASIA1"
    au, sp, cm, gt = root / "Au", root / "Tp" / "Sp", root / "Tp" / "CM", root / "CASIA 1.0 groundtruth"
    save(scene(48, 64, BOX, 1), au / "Au_ani_0001.jpg")
    save(scene(48, 64, BOX, 2), au / "Au_pla_0002.JPG", format="JPEG")
    # a plain pair, with an RGB mask that has grey edges
    save(scene(48, 64, BOX, 3), sp / "Sp_D_CNN_A_ani0001_pla0002_0001.jpg")
    rgb = np.stack([box_mask(48, 64, BOX)] * 3, axis=-1)
    rgb[BOX[0] - 1, BOX[1] : BOX[3]] = 100  # anti-aliased edge, below the threshold
    rgb[BOX[2], BOX[1] : BOX[3]] = 200  # above it
    save(rgb, gt / "Sp" / "Sp_D_CNN_A_ani0001_pla0002_0001_gt.png")
    # the two source ids swapped in the mask's name; RGBA mask
    save(scene(48, 64, BOX, 4), sp / "Sp_D_NRN_A_cha0003_ani0004_0002.jpg")
    rgba = np.dstack([np.stack([box_mask(48, 64, BOX)] * 3, -1), np.full((48, 64), 255, np.uint8)])
    save(rgba, gt / "Sp" / "Sp_D_NRN_A_ani0004_cha0003_0002_gt.png")
    # a renamed file: distributed as copy-move (S), corrected to splicing (D) in the mask's name
    save(scene(48, 64, BOX, 5), cm / "Sp_S_CND_A_nat0005_sec0006_0003.jpg")
    save(box_mask(48, 64, BOX), gt / "Sp" / "Sp_D_CND_A_nat0005_sec0006_0003_gt.png")
    # a splicing mask stored rotated: portrait image 64x48 (h x w), mask stored landscape
    portrait_box = (5, 8, 40, 30)
    save(scene(64, 48, portrait_box, 6), sp / "Sp_D_CNN_A_sec0012_ani0007_0275.jpg", quality=95)
    save(np.rot90(box_mask(64, 48, portrait_box), 1).copy(), gt / "Sp" / "Sp_D_CNN_A_sec0012_ani0007_0275_gt.png")
    # a tampered image with no mask
    save(scene(48, 64, BOX, 7), sp / "Sp_D_NRN_A_sce0011_cha0011_0542.jpg")
    # a TIFF image; its mask a different size (refused, not resized)
    save(scene(48, 64, BOX, 8), sp / "Sp_D_NNN_A_art0008_art0009_0004.tif")
    save(box_mask(40, 64, BOX), gt / "Sp" / "Sp_D_NNN_A_art0008_art0009_0004_gt.png")
    # a copy-move image with an inverted mask
    save(scene(48, 64, BOX, 9), cm / "Sp_S_NNN_A_txt0010_txt0010_0005.jpg")
    save(255 - box_mask(48, 64, BOX), gt / "CM" / "Sp_S_NNN_A_txt0010_txt0010_0005_gt.png")
    # a mask with no image
    save(box_mask(48, 64, BOX), gt / "CM" / "Sp_S_NNN_A_txt0099_txt0099_0099_gt.png")
    return root


def records_by_name(dataset):
    return {record.name: record for record in dataset.records}


def test_casia_names_are_decoded():
    name = parse_name("Sp_D_CND_A_pla0005_pla0023_0281")
    assert (name.kind, name.codes, name.source_ids, name.image_id) == ("splicing", "CND_A", ("pla0005", "pla0023"), "0281")
    name = parse_name("Tp_S_NRN_M_N_pla00020_pla00020_10988")
    assert (name.kind, name.codes, name.source_ids) == ("copy-move", "NRN_M_N", ("pla00020", "pla00020"))
    assert parse_name("Au_ani_00001").kind == "authentic"
    assert parse_name("holiday_photo") is None


def test_casia1_official_layout_and_quirks(casia1_official):
    dataset = load_casia1(casia1_official, show_progress=False)
    records = records_by_name(dataset)
    assert dataset.counts() == {"splicing": 4, "copy-move": 1, "authentic": 2}
    # plain pair: grey edges thresholded at 127
    mask = records["Sp_D_CNN_A_ani0001_pla0002_0001"].load_mask()
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    np.testing.assert_array_equal(mask[BOX[0] - 1, BOX[1] : BOX[3]], 0)
    np.testing.assert_array_equal(mask[BOX[2], BOX[1] : BOX[3]], 1)
    # swapped ids
    swapped = records["Sp_D_NRN_A_cha0003_ani0004_0002"]
    assert "mask name has the two source ids swapped" in swapped.notes
    assert swapped.source_ids == ("cha0003", "ani0004")
    # renamed: the corrected (mask) name and kind win, the file name is reported
    renamed = records["Sp_D_CND_A_nat0005_sec0006_0003"]
    assert renamed.kind == "splicing" and renamed.image_path.name == "Sp_S_CND_A_nat0005_sec0006_0003.jpg"
    assert any("FileNameCorrection" in note for note in renamed.notes)
    # rotated mask, turned to fit
    rotated = records["Sp_D_CNN_A_sec0012_ani0007_0275"]
    np.testing.assert_array_equal(rotated.load_mask(), box_mask(64, 48, (5, 8, 40, 30)) // 255)
    assert rotated.load_image().shape == (64, 48, 3)
    # inverted mask, flipped and said so
    inverted = records["Sp_S_NNN_A_txt0010_txt0010_0005"]
    np.testing.assert_array_equal(inverted.load_mask(), box_mask(48, 64, BOX) // 255)
    assert any("looks inverted" in note for note in inverted.notes)
    # missing mask, unmatched mask, size mismatch reported
    assert [path.name for path in dataset.missing_masks] == ["Sp_D_NRN_A_sce0011_cha0011_0542.jpg"]
    assert [path.name for path in dataset.unmatched_masks] == ["Sp_S_NNN_A_txt0099_txt0099_0099_gt.png"]
    assert len(dataset.inconsistent) == 1
    path, why = dataset.inconsistent[0]
    assert path.suffix == ".tif" and "mask is 64x40 but the image is 64x48; not resized" in why
    # authentic images: .JPG too, all-zero masks at the image's size
    authentic = records["Au_pla_0002"]
    assert authentic.image_path.suffix == ".JPG"
    assert authentic.load_mask().shape == (48, 64) and not authentic.load_mask().any()


def test_inverted_masks_can_be_kept_as_stored(casia1_official):
    dataset = load_casia1(casia1_official, fix_inverted=False, show_progress=False)
    record = records_by_name(dataset)["Sp_S_NNN_A_txt0010_txt0010_0005"]
    assert record.load_mask().mean() > 0.5 and any("kept as stored" in note for note in record.notes)


def test_rotated_copy_move_mask_is_refused(tmp_path):
    root = tmp_path / "c"
    box = (5, 8, 40, 30)
    save(scene(64, 48, box), root / "Sp_S_CNN_A_sec0001_sec0001_0001.jpg")
    save(np.rot90(box_mask(64, 48, box)).copy(), root / "Sp_S_CNN_A_sec0001_sec0001_0001_gt.png")
    dataset = load_casia1(root, show_progress=False)
    assert len(dataset) == 0 and "rotated 90 degrees but the direction is unclear" in dataset.inconsistent[0][1]


def test_casia2_flat_layout(tmp_path):
    root = tmp_path / "casia2"
    save(scene(48, 64, BOX), root / "Tp" / "Tp_D_CRN_S_N_cha00063_art00014_11818.tif")
    save(scene(48, 64, BOX, 1), root / "Tp" / "Tp_S_NRN_M_N_pla00020_pla00020_10988.jpg")
    save(scene(48, 64, BOX, 2), root / "Au" / "Au_ind_00001.jpg")
    save(box_mask(48, 64, BOX), root / "gt" / "Tp_D_CRN_S_N_cha00063_art00014_11818_gt.png")
    save(box_mask(48, 64, BOX), root / "gt" / "Tp_S_NRN_M_N_pla00020_pla00020_10988_gt.png")
    dataset = load_casia2(root)
    assert dataset.counts() == {"splicing": 1, "copy-move": 1, "authentic": 1}
    assert {r.codes for r in dataset if r.is_tampered} == {"CRN_S_N", "NRN_M_N"}


def test_not_a_casia_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_casia1(tmp_path / "missing")
    save(scene(10, 10, (1, 1, 5, 5)), tmp_path / "x" / "holiday.jpg")
    with pytest.raises(FileNotFoundError, match="no CASIA images"):
        load_casia1(tmp_path / "x")


def test_masks_in_every_storage_mode(tmp_path):
    truth = box_mask(20, 30, (4, 5, 12, 20))
    for mode in ("L", "RGB", "RGBA", "1", "P"):
        path = save(np.array(Image.fromarray(truth).convert(mode)) if mode != "1" else truth > 0, tmp_path / f"{mode}.png")
        np.testing.assert_array_equal(read_mask(path), truth // 255, err_msg=mode)
    alpha_only = np.zeros((20, 30, 4), np.uint8)
    alpha_only[..., 3] = truth
    np.testing.assert_array_equal(read_mask(save(alpha_only, tmp_path / "alpha.png")), truth // 255)


@pytest.fixture()
def folder_dataset(tmp_path) -> Path:
    root = tmp_path / "coverage"
    for index in range(3):
        save(scene(48, 64, BOX, index), root / "images" / f"{index}t.tif")
    save(box_mask(48, 64, BOX), root / "masks" / "0t_mask.png")
    save(box_mask(48, 64, BOX), root / "masks" / "1t.png")
    save(box_mask(48, 64, BOX), root / "masks" / "orphan_gt.png")
    save(scene(48, 64, BOX, 5), root / "authentic" / "0.tif")
    return root


def test_generic_folder_layout(folder_dataset):
    dataset = load_folder(folder_dataset, "coverage", kind="copy-move")
    assert dataset.counts() == {"splicing": 0, "copy-move": 2, "authentic": 1}
    assert [p.name for p in dataset.missing_masks] == ["2t.tif"]
    assert [p.name for p in dataset.unmatched_masks] == ["orphan_gt.png"]
    with pytest.raises(FileNotFoundError, match="generic layout"):
        load_folder(folder_dataset / "images")
    with pytest.raises(ValueError, match="kind must be"):
        load_folder(folder_dataset, kind="authentic")


# --- manifest and verify --------------------------------------------------------------


def test_the_manifest_is_complete_and_valid():
    entries = read_manifest()
    for source in ("synthetic", "casia1", "casia2", "ifs_tc", "coverage", "columbia", "nist16", "imd2020", "korus"):
        assert source in entries
    assert entries["casia1"].tampered == 920 and entries["casia1"].authentic == 800
    assert entries["casia2"].tampered == 5123 and entries["casia2"].authentic == 7491
    assert "Pham" in entries["casia1"].masks and "Pham" in entries["casia1"].citation
    root_copy = Path(__file__).resolve().parent.parent / "data_manifest.csv"
    assert root_copy.read_text() == (Path(__file__).resolve().parent.parent / "pmsp_utils" / "data" / "data_manifest.csv").read_text()


def write_manifest(path: Path, rows: list[dict]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({column: row.get(column, "x") for column in COLUMNS})
    path.write_text(buffer.getvalue())
    return path


def test_manifest_problems_are_listed(tmp_path):
    bad = write_manifest(tmp_path / "m.csv", [
        {"source": "a", "layout": "zip", "manipulation": "mixed", "tampered": "ten", "authentic": "", "archive": "", "sha256": "abc"},
        {"source": "a", "layout": "folder", "manipulation": "mixed", "tampered": "1", "authentic": "1", "archive": "", "sha256": "", "url": ""},
    ])
    with pytest.raises(ValueError) as error:
        read_manifest(bad)
    message = str(error.value)
    for expected in ("layout 'zip'", "'tampered' must be a whole number", "sha256 must be 64", "'url' is empty", "appears twice"):
        assert expected in message


def test_verify_reports_and_checks_checksums(casia1_official, tmp_path):
    archive = casia1_official / "CASIA1.zip"
    archive.write_bytes(b"pretend archive")
    digest = hashlib.sha256(b"pretend archive").hexdigest()
    manifest = write_manifest(tmp_path / "m.csv", [
        {"source": "casia1", "layout": "casia1", "manipulation": "mixed", "tampered": "7", "authentic": "2", "archive": "CASIA1.zip", "sha256": digest},
    ])
    report = verify("casia1", casia1_official, manifest=manifest, show_progress=False)
    assert not report.ok
    assert report.counts == {"splicing": 4, "copy-move": 1, "authentic": 2}
    assert report.missing_counts == {"tampered": 2, "authentic": 0}
    assert report.checksums == [("CASIA1.zip", "ok")]
    text = str(report)
    for expected in ("tampered: 5 usable of 7 expected (2 missing)", "tampered images without a mask: 1", "masks without an image: 1",
                     "pairs refused: 1", "fixed while loading", "checksum of CASIA1.zip: ok"):
        assert expected in text
    archive.write_bytes(b"tampered with")
    assert verify("casia1", casia1_official, manifest=manifest, show_progress=False).checksums == [("CASIA1.zip", "MISMATCH")]


def test_verify_of_a_complete_copy_is_ok(folder_dataset, tmp_path):
    import shutil

    shutil.rmtree(folder_dataset / "masks")
    (folder_dataset / "images" / "2t.tif").unlink()
    save(box_mask(48, 64, BOX), folder_dataset / "masks" / "0t.png")
    save(box_mask(48, 64, BOX), folder_dataset / "masks" / "1t.png")
    manifest = write_manifest(tmp_path / "m.csv", [
        {"source": "coverage", "layout": "folder", "manipulation": "copy-move", "tampered": "2", "authentic": "1", "archive": "", "sha256": ""},
    ])
    report = verify("coverage", folder_dataset, manifest=manifest)
    assert report.ok, str(report)
    assert "complete" in str(report).splitlines()[0]
    assert load_dataset("coverage", folder_dataset, manifest=manifest).counts()["copy-move"] == 2


def test_unknown_source():
    with pytest.raises(ValueError, match="Unknown data source 'casia3'"):
        verify("casia3", ".")


# --- splits ---------------------------------------------------------------------------


def fake_records(count: int, kind: str, dataset: str = "d", prefix: str = "") -> list[Record]:
    return [Record(dataset, f"{prefix}{kind}_{index:04d}", kind, Path(f"/nowhere/{index}.jpg")) for index in range(count)]


def test_paper_split_is_stratified_and_order_free():
    records = fake_records(400, "splicing") + fake_records(300, "copy-move") + fake_records(200, "authentic")
    split = paper_split(records)
    assert split.counts() == {
        "train": {"splicing": 360, "copy-move": 270, "authentic": 180},
        "validation": {"splicing": 20, "copy-move": 15, "authentic": 10},
        "test": {"splicing": 20, "copy-move": 15, "authentic": 10},
    }
    shuffled = list(reversed(records))
    assert paper_split(shuffled) == split
    assert not set(split.train) & set(split.test) and not set(split.validation) & set(split.test)
    assert paper_split(records, salt="other") != split


def test_adding_a_file_moves_at_most_the_records_at_the_cuts():
    records = fake_records(500, "splicing")
    before = paper_split(records)
    after = paper_split(records + fake_records(1, "splicing", prefix="new"))
    place = lambda split: {r.name: part for part, rs in split.parts().items() for r in rs}  # noqa: E731
    moved = [name for name, part in place(before).items() if place(after)[name] != part]
    assert len(moved) <= 2


def test_split_lists_round_trip(tmp_path):
    records = fake_records(60, "splicing") + fake_records(40, "authentic")
    split = paper_split(records)
    split.to_lists(tmp_path)
    assert (tmp_path / "train.txt").read_text().splitlines()[0].startswith("d/")
    assert Split.from_lists(tmp_path, records) == split
    with pytest.raises(ValueError, match="not in the dataset"):
        Split.from_lists(tmp_path, records[:10])


def test_cross_dataset_split():
    train = fake_records(100, "splicing", "casia2")
    test = fake_records(30, "splicing", "casia1")
    split = cross_dataset_split(train, test)
    assert len(split.train) == 95 and len(split.validation) == 5 and len(split.test) == 30
    assert {r.dataset for r in split.test} == {"casia1"} and "cross-dataset" in split.protocol
    with pytest.raises(ValueError, match="different datasets"):
        cross_dataset_split(train, train)


def test_bad_fractions():
    with pytest.raises(ValueError, match="summing to 1"):
        paper_split(fake_records(10, "splicing"), (0.9, 0.2, 0.1))
    with pytest.raises(ValueError, match="empty"):
        paper_split([])


def test_folder_refuses_an_empty_mask(folder_dataset):
    save(np.zeros((48, 64), np.uint8), folder_dataset / "masks" / "2t.png")
    dataset = load_folder(folder_dataset, "coverage", kind="copy-move")
    assert [(path.name, why) for path, why in dataset.inconsistent] == [("2t.tif", "mask is empty (no tampered pixel); not used")]


# --- what loading refuses or changes is said (issue 11) ----------------------------------


def test_all_white_masks_are_refused_not_flipped_into_empty_ones(tmp_path):
    root = tmp_path / "set"
    save(scene(48, 64, BOX, 0), root / "images" / "a.png")
    save(np.full((48, 64), 255, np.uint8), root / "masks" / "a.png")  # all tampered: blank or inverted
    save(scene(48, 64, BOX, 1), root / "images" / "b.png")
    save(box_mask(48, 64, BOX), root / "masks" / "b.png")
    dataset = load_folder(root, "set")
    assert [record.name for record in dataset.records if record.is_tampered] == ["b"]
    assert [(path.name, why.split(":")[0]) for path, why in dataset.inconsistent] == [("a.png", "mask marks every pixel tampered (all white)")]


def test_grey_masks_and_size_mismatches_are_reported(tmp_path):
    root = tmp_path / "set"
    grey = box_mask(48, 64, BOX)
    grey[BOX[0], BOX[1] : BOX[3]] = 128  # an anti-aliased edge
    save(scene(48, 64, BOX, 0), root / "images" / "grey.png")
    save(grey, root / "masks" / "grey.png")
    save(scene(48, 64, BOX, 1), root / "images" / "off.png")
    save(box_mask(47, 64, BOX), root / "masks" / "off.png")  # one row short
    dataset = load_folder(root, "set")
    assert any(name == "grey" and "grey mask" in note and "thresholded at 127" in note for name, note in dataset.fixes)
    assert [(path.name, "mask is 64x47 but the image is 64x48" in why) for path, why in dataset.inconsistent] == [("off.png", True)]
    report = str(verify_folder(root))
    assert "grey mask" in report and "64x47" in report
    said = dataset.loading_report()  # what pmsp train and pmsp evaluate print
    assert said[0] == "set: 1 pairs refused (not used):" and "off.png: mask is 64x47" in said[1]
    assert said[-2].startswith("set: 1 changes made while loading (grey mask")
    assert said[-1] == "  grey: grey mask: 1.1% of its pixels between black and white, thresholded at 127"  # each kind said in full


def test_verify_can_decode_everything_and_lists_truncated_images(tmp_path):
    from pmsp_utils.data.verify import usable_records

    root = tmp_path / "set"
    save(scene(48, 64, BOX, 0), root / "images" / "good.png")
    save(box_mask(48, 64, BOX), root / "masks" / "good.png")
    save(scene(48, 64, BOX, 1), root / "images" / "cut.jpg", quality=90)
    save(box_mask(48, 64, BOX), root / "masks" / "cut.png")
    data = (root / "images" / "cut.jpg").read_bytes()
    (root / "images" / "cut.jpg").write_bytes(data[: len(data) // 2])  # the header is intact: loading sees no problem
    dataset = load_folder(root, "set")
    assert len(dataset.records) == 2
    usable, refused = usable_records(dataset.records, show_progress=False)
    assert [record.name for record in usable] == ["good"]
    assert [(path.name, "truncated" in why) for path, why in refused] == [("cut.jpg", True)]


def verify_folder(root):
    from pmsp_utils.data.verify import VerifyReport

    dataset = load_folder(root, "set")
    return VerifyReport("set", root, dataset.counts(), {"tampered": None, "authentic": None}, dataset.missing_masks,
                        dataset.unmatched_masks, dataset.inconsistent, dataset.fixes)


def test_a_sixteen_bit_rgb_png_says_it_was_reduced(tmp_path):
    import struct
    import zlib

    from pmsp_utils.ela import ela_result

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    height, width = 4, 5
    rows = b"".join(b"\x00" + np.arange(width * 3, dtype=np.uint16).astype(">u2").tobytes() * 1 for _ in range(height))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    (tmp_path / "deep.png").write_bytes(png)
    result = ela_result(tmp_path / "deep.png")
    assert "16-bit RGB PNG reduced to 8 bits per channel" in result.describe()
