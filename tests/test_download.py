"""`pmsp data download`: a small archive with CASIA's layout served from 127.0.0.1, verified, resumed and laid out.

No internet: a local HTTP server (with Range requests, and a switch that drops a transfer half way) serves a
tar.gz of "images" and a zip of "masks" shaped like the real ones, and the registry entry points at it.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pmsp_utils.data.download import Archive, DownloadError, Downloadable, download, fetch, registry

PREFIX = "repo-abc123/data/CASIA1/"
MASKS_PREFIX = "CASIA 1.0 groundtruth/"


def jpeg(seed: int, size=(48, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, size + (3,), dtype=np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def png_mask(seed: int, size=(48, 64)) -> bytes:
    mask = np.zeros(size, np.uint8)
    mask[10 + seed % 5 : 30, 12:40] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return buffer.getvalue()


def source_files() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Images (Au/, Sp/) and masks (Sp/, CM/) with CASIA's quirks: swapped source ids, a tampered image without a mask."""
    images = {
        "Au/Au_ani_0001.jpg": jpeg(1), "Au/Au_nat_0002.jpg": jpeg(2),
        "Sp/Sp_D_CNN_A_ani0001_nat0002_0101.jpg": jpeg(3),
        "Sp/Sp_D_NRN_A_nat0002_ani0001_0102.jpg": jpeg(4),  # its mask has the two ids swapped
        "Sp/Sp_S_NNN_A_ani0001_ani0001_0103.jpg": jpeg(5),
        "Sp/Sp_D_NRN_A_sce0011_cha0011_0542.jpg": jpeg(6),  # no mask, as in CASIA v1
    }
    masks = {
        "Sp/Sp_D_CNN_A_ani0001_nat0002_0101_gt.png": png_mask(1),
        "Sp/Sp_D_NRN_A_ani0001_nat0002_0102_gt.png": png_mask(2),
        "CM/Sp_S_NNN_A_ani0001_ani0001_0103_gt.png": png_mask(3),
    }
    return images, masks


def tar_gz(files: dict[str, bytes], prefix: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zipped(files: dict[str, bytes], prefix: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(prefix + name, data)
    return buffer.getvalue()


class Server:
    """Files served from memory on 127.0.0.1, with Range support; ``drop_after`` cuts the next transfer short."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.requests, self.drop_after = files, [], None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.files.get(self.path.lstrip("/"))
                server.requests.append((self.path, self.headers.get("Range")))
                if data is None:
                    self.send_error(404)
                    return
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                if start >= len(data):
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if server.drop_after is not None:
                    body, server.drop_after = body[: server.drop_after], None
                    self.wfile.write(body)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def entry_for(images, masks, urls: tuple[str, str], *, images_archive: bytes | None = None) -> Downloadable:
    sha = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    masks_archive = zipped(masks, MASKS_PREFIX)
    return Downloadable("casia1", (
        Archive("images", (urls[0],), "tar.gz", PREFIX, {name: sha(data) for name, data in images.items()},
                size=len(images_archive or b""), commit="abc123"),
        Archive("masks", (urls[1],), "zip", MASKS_PREFIX, {name: sha(data) for name, data in masks.items()},
                size=len(masks_archive), archive_sha256=sha(masks_archive), commit="def456"),
    ), "research use only (a test)", "casia")


@pytest.fixture()
def served():
    images, masks = source_files()
    archives = {"images.tar.gz": tar_gz(images, PREFIX), "masks.zip": zipped(masks, MASKS_PREFIX)}
    server = Server(archives)
    entry = entry_for(images, masks, (server.url + "images.tar.gz", server.url + "masks.zip"), images_archive=archives["images.tar.gz"])
    yield server, {"casia1": entry}, archives
    server.close()


no_wait = functools.partial(fetch, sleep=lambda seconds: None, retries=3, timeout=5)


def test_download_verifies_and_lays_out(served, tmp_path):
    server, entries, _ = served
    target = download("casia1", to=tmp_path / "casia1", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    assert sorted(p.name for p in (target / "authentic").iterdir()) == ["Au_ani_0001.jpg", "Au_nat_0002.jpg"]
    assert sorted(p.name for p in (target / "images").iterdir()) == ["Sp_D_CNN_A_ani0001_nat0002_0101.jpg", "Sp_D_NRN_A_nat0002_ani0001_0102.jpg",
                                                                      "Sp_S_NNN_A_ani0001_ani0001_0103.jpg"]
    assert (target / "masks" / "Sp_D_NRN_A_nat0002_ani0001_0102_gt.png").is_file()  # named after its image
    report = json.loads((target / "fixes.json").read_text())
    assert report["swapped_ids"] == [{"image": "Sp_D_NRN_A_nat0002_ani0001_0102", "mask": "Sp_D_NRN_A_ani0001_nat0002_0102_gt.png"}]
    assert report["without_mask"] == ["Sp_D_NRN_A_sce0011_cha0011_0542.jpg"]
    card = json.loads((target / "DATASET.json").read_text())
    assert card["source"] == "casia1" and [a["commit"] for a in card["archives"]] == ["abc123", "def456"]
    assert card["layout"]["masks/Sp_D_NRN_A_nat0002_ani0001_0102_gt.png"]["sha256"]
    assert not (tmp_path / ".casia1.pmsp-partial").exists()  # nothing half-finished is left beside it
    from pmsp_utils.data import load_casia1

    loaded = load_casia1(target)
    assert loaded.counts() == {"splicing": 2, "copy-move": 1, "authentic": 2} and not loaded.fixes


def test_a_changed_file_is_named_with_both_hashes(served, tmp_path):
    server, entries, archives = served
    images, _ = source_files()
    images["Sp/Sp_S_NNN_A_ani0001_ani0001_0103.jpg"] = jpeg(99)
    server.files["images.tar.gz"] = tar_gz(images, PREFIX)
    with pytest.raises(DownloadError, match=r"Sp/Sp_S_NNN_A_ani0001_ani0001_0103\.jpg .*has changed: expected SHA-256 [0-9a-f]{64}, got [0-9a-f]{64}"):
        download("casia1", to=tmp_path / "casia1", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    assert not (tmp_path / "casia1").exists()


def test_an_interrupted_transfer_resumes(served, tmp_path):
    server, entries, archives = served
    server.drop_after = len(archives["images.tar.gz"]) // 2
    download("casia1", to=tmp_path / "casia1", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    ranges = [value for path, value in server.requests if path == "/images.tar.gz"]
    assert ranges[0] is None and ranges[1] == f"bytes={len(archives['images.tar.gz']) // 2}-"  # the second request resumed
    assert (tmp_path / "casia1" / "DATASET.json").is_file()


def test_a_complete_copy_is_left_alone_and_a_foreign_folder_refused(served, tmp_path):
    server, entries, _ = served
    target = download("casia1", to=tmp_path / "casia1", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    stamp = (target / "DATASET.json").stat().st_mtime_ns
    count = len(server.requests)
    said = []
    download("casia1", to=target, accept_terms=True, entries=entries, echo=said.append, fetcher=no_wait)
    assert "nothing to do" in said[-1] and len(server.requests) == count and (target / "DATASET.json").stat().st_mtime_ns == stamp
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own file")
    with pytest.raises(DownloadError, match="not a complete copy made by pmsp; nothing was changed"):
        download("casia1", to=mine, accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    assert (mine / "notes.txt").read_text() == "my own file"


def test_from_local_archives_and_folders_without_network(served, tmp_path):
    server, entries, archives = served
    server.close()  # nothing may be fetched
    (tmp_path / "images.tar.gz").write_bytes(archives["images.tar.gz"])
    (tmp_path / "gt.zip").write_bytes(archives["masks.zip"])
    target = download("casia1", to=tmp_path / "a", from_=[tmp_path / "images.tar.gz", tmp_path / "gt.zip"], accept_terms=True,
                      entries=entries, echo=lambda _: None, fetcher=no_wait)
    assert len(list((target / "images").iterdir())) == 3
    # an unpacked copy (the official zip extracted by hand, say) works as a folder
    images, masks = source_files()
    for name, data in {**{f"CASIA1/{k}": v for k, v in images.items()}, **{f"gt/{k}": v for k, v in masks.items()}}.items():
        (tmp_path / "unpacked" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "unpacked" / name).write_bytes(data)
    target = download("casia1", to=tmp_path / "b", from_=[tmp_path / "unpacked"], accept_terms=True, entries=entries,
                      echo=lambda _: None, fetcher=no_wait)
    assert len(list((target / "masks").iterdir())) == 3


def test_no_network_terms_and_target_errors(served, tmp_path, monkeypatch):
    server, entries, _ = served
    server.close()
    with pytest.raises(DownloadError, match="could not download .*check your network connection"):
        download("casia1", to=tmp_path / "x", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    with pytest.raises(DownloadError, match="terms were not accepted; run again with --accept-terms"):
        download("casia1", to=tmp_path / "y", entries=entries, echo=lambda _: None, ask=lambda prompt: "n", fetcher=no_wait)
    monkeypatch.delenv("PMSP_DATA_DIR", raising=False)
    with pytest.raises(DownloadError, match="--to FOLDER, or set PMSP_DATA_DIR"):
        download("casia1", accept_terms=True, entries=entries, echo=lambda _: None)
    with pytest.raises(DownloadError, match="cannot be downloaded by pmsp; downloadable: casia1"):
        download("coverage", to=tmp_path / "z", entries=entries)


def test_the_shipped_registry_is_pinned_and_complete():
    entry = registry()["casia1"]
    images, masks = entry.archives
    assert len(images.commit) == 40 and all(images.commit in url for url in images.urls)
    assert len(masks.commit) == 40 and all(masks.commit in url for url in masks.urls)
    assert sum(name.startswith("Au/") for name in images.files) == 800 and sum(name.startswith("Sp/") for name in images.files) == 921
    assert sum(name.endswith("_gt.png") for name in masks.files) == 920 and "FileNameCorrection.xlsx" in masks.files
    assert all(len(digest) == 64 for digest in (*images.files.values(), *masks.files.values()))


MAINTAINERS_COPY = Path(__file__).resolve().parents[2] / "shared" / "data" / "casia1"


@pytest.mark.skipif(not MAINTAINERS_COPY.is_dir(), reason="a maintainer's check: needs the development copy of CASIA v1 beside the checkout")
def test_the_real_hash_list_matches_the_maintainers_copy():
    listed = {Path(name).name: digest for name, digest in registry()["casia1"].archives[0].files.items()}
    overlap = [path for folder in ("images", "authentic") for path in (MAINTAINERS_COPY / folder).iterdir() if path.name in listed]
    assert len(overlap) > 1000
    changed = [path.name for path in overlap if hashlib.sha256(path.read_bytes()).hexdigest() != listed[path.name]]
    assert not changed


def test_a_full_disk_is_one_line_and_leaves_no_partial_dataset(served, tmp_path, monkeypatch):
    import errno

    from pmsp_utils.data import download as module

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    server, entries, _ = served
    monkeypatch.setitem(module.FIXERS, "casia", full)
    with pytest.raises(DownloadError, match=f"{tmp_path}: the disk is full"):
        download("casia1", to=tmp_path / "casia1", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    assert not (tmp_path / "casia1").exists() and not (tmp_path / ".casia1.pmsp-partial" / "extracted").exists()


def test_data_list_names_every_source(capsys, tmp_path, monkeypatch):
    from pmsp_utils.cli import main

    monkeypatch.setenv("PMSP_DATA_DIR", str(tmp_path))
    (tmp_path / "casia2").mkdir()
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "casia1\n  present:  no\n  get it:   pmsp data download casia1 (" in out
    assert f"casia2\n  present:  yes ({tmp_path / 'casia2'}; not made by pmsp data download)" in out
    assert "research use only" in out and "ChinaSIP 2013" in out


def test_evaluate_records_the_dataset_card(served, tmp_path):
    """A number from pmsp evaluate can be traced to the exact downloaded copy it was measured on."""
    from pmsp_utils.cli import main
    from pmsp_utils.data.download import sha256_of

    pytest.importorskip("keras")
    server, entries, _ = served
    target = download("casia1", to=tmp_path / "casia1", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    out = tmp_path / "evaluation"
    assert main(["evaluate", "--data", "casia1", "--root", str(target), "--weights", "synthetic", "--split", "all",
                 "--baselines", "--out", str(out)]) == 0
    recorded = json.loads((out / "table1.json").read_text())["dataset_cards"]["casia1"]
    assert recorded["card_sha256"] == sha256_of(target / "DATASET.json") and recorded["commits"] == {"images": "abc123", "masks": "def456"}


def test_the_notebook_cell_uses_a_copy_downloads_when_hosted_and_otherwise_says_how(served, tmp_path, monkeypatch):
    from pmsp_utils.data import download as module

    server, entries, _ = served
    said = []
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("PMSP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("PMSP_SMOKE", "0")
    assert module.notebook_copy("casia1", echo=said.append) is None and "pmsp data download casia1" in said[-1]
    monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    monkeypatch.setattr(module, "registry", lambda: entries)
    monkeypatch.setattr(module, "fetch", no_wait)
    assert module.notebook_copy("casia1", echo=said.append) is None and "ACCEPT_CASIA_TERMS = True" in said[-1]
    found = module.notebook_copy("casia1", accept_terms=True, echo=said.append)
    assert found == tmp_path / "data" / "casia1" and (found / "DATASET.json").is_file()
    assert module.notebook_copy("casia1", echo=said.append) == found and said[-1].startswith("casia1: using $PMSP_DATA_DIR/casia1 (")
    assert all(str(tmp_path) not in line for line in said[-1:])  # no local path in a saved output


def test_an_archive_member_that_inflates_past_any_dataset_file_is_refused_unread(tmp_path, monkeypatch):
    """A zip bomb: one listed mask replaced by megabytes of zeros (a few kilobytes compressed). Its declared size is
    refused before it is read; a member that lies about its size is stopped once it passes the limit, chunk by chunk."""
    import pmsp_utils.data.download as download_module

    monkeypatch.setattr(download_module, "MEMBER_LIMIT", 1 << 20)
    images, masks = source_files()
    name = "Sp/Sp_D_CNN_A_ani0001_nat0002_0101_gt.png"
    bomb = tmp_path / "masks.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative, data in masks.items():
            archive.writestr(MASKS_PREFIX + relative, data if relative != name else bytes(8 << 20))
    assert bomb.stat().st_size < 100_000
    archive = Archive("masks", (), "zip", MASKS_PREFIX, {relative: hashlib.sha256(data).hexdigest() for relative, data in masks.items()})
    with pytest.raises(DownloadError, match=r"declares 8,388,608 bytes, more than the 1,048,576"):
        download_module.extract_verified(bomb, archive, tmp_path / "out")
    assert not [path for path in (tmp_path / "out").rglob("*") if path.is_file()]  # no partial file left

    class Endless(io.RawIOBase):  # a member whose header says 10 bytes and whose stream never ends
        reads = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            Endless.reads += 1
            buffer[:] = bytes(len(buffer))
            return len(buffer)

    members = [(name, 10, lambda: io.BufferedReader(Endless()), "liar.zip")]
    with pytest.raises(DownloadError, match="inflates to more than"):
        download_module._write_verified(members, archive, tmp_path / "out2", "liar.zip")
    assert Endless.reads < 64  # stopped after about a megabyte, not read to the end
    assert not [path for path in (tmp_path / "out2").rglob("*") if path.is_file()]


def test_a_users_folder_named_like_the_staging_folder_is_never_emptied(served, tmp_path):
    server, entries, _ = served
    mine = tmp_path / ".casia1.pmsp-partial"
    (mine / "extracted").mkdir(parents=True)
    (mine / "extracted" / "notes.txt").write_text("my own file")
    with pytest.raises(DownloadError, match=r"exists and was not made by pmsp .*Move it away"):
        download("casia1", to=tmp_path / "casia1", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    assert (mine / "extracted" / "notes.txt").read_text() == "my own file" and not server.requests
    old_name = tmp_path / "other" / ".casia1.partial"  # the name pmsp used before: not pmsp's to touch any more
    (old_name / "extracted").mkdir(parents=True)
    (old_name / "extracted" / "keep.txt").write_text("kept")
    download("casia1", to=tmp_path / "other" / "casia1", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    assert (old_name / "extracted" / "keep.txt").read_text() == "kept"


def test_an_unwritable_to_fails_before_any_download(served, tmp_path):
    server, entries, _ = served
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(DownloadError, match=r"--to .*cannot write in .*a_file .*nothing was downloaded"):
        download("casia1", to=blocker / "casia1", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    assert not server.requests


def test_end_of_input_at_the_terms_prompt_is_no(served, tmp_path):
    server, entries, _ = served

    def ctrl_d(prompt):
        raise EOFError

    with pytest.raises(DownloadError, match="terms were not accepted"):
        download("casia1", to=tmp_path / "c", entries=entries, echo=lambda _: None, ask=ctrl_d, fetcher=no_wait)


def test_a_truncated_archive_in_from_is_named(served, tmp_path):
    server, entries, archives = served
    server.close()
    cut = tmp_path / "gt.zip"
    cut.write_bytes(archives["masks.zip"][: len(archives["masks.zip"]) // 2])
    (tmp_path / "images.tar.gz").write_bytes(archives["images.tar.gz"])
    with pytest.raises(DownloadError, match=rf"--from {cut}: not a readable zip or tar.gz archive \(truncated"):
        download("casia1", to=tmp_path / "a", from_=[tmp_path / "images.tar.gz", cut], accept_terms=True, entries=entries,
                 echo=lambda _: None, fetcher=no_wait)


def test_an_edited_copy_beside_the_right_one_is_passed_over_and_alone_is_named(served, tmp_path):
    server, entries, _ = served
    server.close()
    images, masks = source_files()
    for name, data in {**{f"CASIA1/{k}": v for k, v in images.items()}, **{f"gt/{k}": v for k, v in masks.items()}}.items():
        (tmp_path / "unpacked" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "unpacked" / name).write_bytes(data)
    edited = tmp_path / "unpacked" / "aaa_old" / "Sp_S_NNN_A_ani0001_ani0001_0103.jpg"  # found first by name
    edited.parent.mkdir()
    edited.write_bytes(jpeg(77))
    target = download("casia1", to=tmp_path / "b", from_=[tmp_path / "unpacked"], accept_terms=True, entries=entries,
                      echo=lambda _: None, fetcher=no_wait)
    assert len(list((target / "images").iterdir())) == 3
    (tmp_path / "unpacked" / "CASIA1" / "Sp" / "Sp_S_NNN_A_ani0001_ani0001_0103.jpg").unlink()
    with pytest.raises(DownloadError, match=rf"Sp_S_NNN_A_ani0001_ani0001_0103\.jpg \({edited}\) has changed"):
        download("casia1", to=tmp_path / "c", from_=[tmp_path / "unpacked"], accept_terms=True, entries=entries,
                 echo=lambda _: None, fetcher=no_wait)


def test_the_shipped_entry_pins_every_files_size_and_a_member_of_another_size_is_never_read(tmp_path):
    """Every listed file of the shipped entries has its size pinned (read from the two public repositories' trees at
    the pinned commits), so a bomb is refused by its header, long before MEMBER_LIMIT, and a member whose stream runs
    past its pinned size is stopped after one chunk; the message names the member and both sizes."""
    import pmsp_utils.data.download as download_module

    for entry in registry().values():
        for archive in entry.archives:
            assert set(archive.sizes) == set(archive.files) and all(0 < size < download_module.MEMBER_LIMIT for size in archive.sizes.values())
    images, masks = source_files()
    name = "Sp/Sp_D_CNN_A_ani0001_nat0002_0101_gt.png"
    archive = Archive("masks", (), "zip", MASKS_PREFIX, {relative: hashlib.sha256(data).hexdigest() for relative, data in masks.items()},
                      sizes={relative: len(data) for relative, data in masks.items()})
    bomb = tmp_path / "masks.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as bundle:
        for relative, data in masks.items():
            bundle.writestr(MASKS_PREFIX + relative, data if relative != name else bytes(512 << 10))  # under MEMBER_LIMIT
    with pytest.raises(DownloadError, match=rf"{name} \(in .*masks.zip\) declares 524,288 bytes where the pinned file has {len(masks[name]):,}"):
        download_module.extract_verified(bomb, archive, tmp_path / "out")
    assert not (tmp_path / "out" / name).exists()

    reads = []

    def endless():  # says it is the pinned size, then never ends
        class Stream(io.RawIOBase):
            def readable(self):
                return True

            def readinto(self, buffer):
                reads.append(len(buffer))
                buffer[:] = bytes(len(buffer))
                return len(buffer)
        return io.BufferedReader(Stream())

    members = [(name, len(masks[name]), endless, "liar.zip")]
    with pytest.raises(DownloadError, match=rf"{name} .*holds more than the {len(masks[name]):,} bytes it declares"):
        download_module._write_verified(members, archive, tmp_path / "out2", "liar.zip")
    assert sum(reads) <= 2 * download_module.READ_CHUNK and not [path for path in (tmp_path / "out2").rglob("*") if path.is_file()]
    # the right copy after a wrong-sized one (an edited file beside the pinned one) is still placed
    members = [(name, 7, lambda: io.BytesIO(bytes(7)), "old/copy.png"), (name, len(masks[name]), lambda: io.BytesIO(masks[name]), "right/copy.png")]
    partial = Archive("masks", (), "zip", MASKS_PREFIX, {name: archive.files[name]}, sizes={name: archive.sizes[name]})
    assert download_module._write_verified(members, partial, tmp_path / "out3", "folder") == 1
    assert (tmp_path / "out3" / name).read_bytes() == masks[name]
