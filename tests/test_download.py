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
    """A zip of ``files``, the same bytes every call: each member carries a fixed date (``writestr`` with a bare name
    stamps the current time, two seconds apart, so two calls across a second boundary gave two SHA-256s and the
    download test that pins one failed now and then under load)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(zipfile.ZipInfo(prefix + name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def unpack(folder: Path) -> Path:
    """The source files laid out as a hand-extracted copy (CASIA1/ and gt/) in ``folder``, for --from FOLDER."""
    images, masks = source_files()
    for name, data in {**{f"CASIA1/{k}": v for k, v in images.items()}, **{f"gt/{k}": v for k, v in masks.items()}}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


class Endless(io.RawIOBase):
    """An archive member whose stream never ends (zeros); ``sizes`` lists its reads, to show a reader stopped early."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def readable(self):
        return True

    def readinto(self, buffer):
        self.sizes.append(len(buffer))
        buffer[:] = bytes(len(buffer))
        return len(buffer)


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
    unpack(tmp_path / "unpacked")
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

    stream = Endless()  # a member whose header says 10 bytes and whose stream never ends
    members = [(name, 10, lambda: io.BufferedReader(stream), "liar.zip")]
    with pytest.raises(DownloadError, match="inflates to more than"):
        download_module._write_verified(members, archive, tmp_path / "out2", "liar.zip")
    assert len(stream.sizes) < 64  # stopped after about a megabyte, not read to the end
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
    unpack(tmp_path / "unpacked")
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

    stream = Endless()  # says it is the pinned size, then never ends
    members = [(name, len(masks[name]), lambda: io.BufferedReader(stream), "liar.zip")]
    with pytest.raises(DownloadError, match=rf"{name} .*holds more than the {len(masks[name]):,} bytes it declares"):
        download_module._write_verified(members, archive, tmp_path / "out2", "liar.zip")
    assert sum(stream.sizes) <= 2 * download_module.READ_CHUNK and not [path for path in (tmp_path / "out2").rglob("*") if path.is_file()]
    # the right copy after a wrong-sized one (an edited file beside the pinned one) is still placed
    members = [(name, 7, lambda: io.BytesIO(bytes(7)), "old/copy.png"), (name, len(masks[name]), lambda: io.BytesIO(masks[name]), "right/copy.png")]
    partial = Archive("masks", (), "zip", MASKS_PREFIX, {name: archive.files[name]}, sizes={name: archive.sizes[name]})
    assert download_module._write_verified(members, partial, tmp_path / "out3", "folder") == 1
    assert (tmp_path / "out3" / name).read_bytes() == masks[name]


def _patched_zip(data: bytes, name: str, *, flags: int = 0, method: int | None = None) -> bytes:
    """The zip ``data`` with one member's central-directory entry given extra flag bits or another compression method
    (what zipfile reads them from), as a crafted or foreign archive would have them."""
    import struct

    buffer = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        position = bundle.start_dir
        for _ in bundle.infolist():
            assert buffer[position:position + 4] == b"PK\x01\x02"
            name_length, extra_length, comment_length = struct.unpack_from("<HHH", buffer, position + 28)
            if buffer[position + 46:position + 46 + name_length].decode() == name:
                struct.pack_into("<H", buffer, position + 8, struct.unpack_from("<H", buffer, position + 8)[0] | flags)
                if method is not None:
                    struct.pack_into("<H", buffer, position + 10, method)
            position += 46 + name_length + extra_length + comment_length
    return bytes(buffer)


def _broken_archives(folder: Path) -> dict[str, tuple[Path, Archive, str]]:
    """{kind: (archive file, its entry, the member at fault)}: a zstd member, an encrypted one, a deflate stream broken
    part way, a tar.gz cut off in the middle of a listed member."""
    images, masks = source_files()
    sha = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    name = "Sp/Sp_D_CNN_A_ani0001_nat0002_0101_gt.png"
    stored = zipped(masks, MASKS_PREFIX)
    kinds = {"zstd": _patched_zip(stored, MASKS_PREFIX + name, method=93), "encrypted": _patched_zip(stored, MASKS_PREFIX + name, flags=0x1)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for relative, data in masks.items():
            bundle.writestr(MASKS_PREFIX + relative, data)
    broken = bytearray(buffer.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(broken))).getinfo(MASKS_PREFIX + name)
    start = info.header_offset + 30 + len(info.filename.encode())  # past the local header (no extra field)
    broken[start:start + 64] = b"\xff" * 64
    kinds["broken deflate"] = bytes(broken)
    masks_archive = Archive("masks", (), "zip", MASKS_PREFIX, {relative: sha(data) for relative, data in masks.items()})
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    for kind, data in kinds.items():
        path = folder / f"masks_{kind.replace(' ', '_')}.zip"
        path.write_bytes(data)
        found[kind] = (path, masks_archive, name)
    last = "Au/zz_last.jpg"
    images = {**images, last: np.random.default_rng(0).bytes(200_000)}
    whole = tar_gz(images, PREFIX)
    cut = folder / "images_cut.tar.gz"
    cut.write_bytes(whole[: len(whole) - 60_000])  # ends in the middle of the last member's data
    found["tar.gz cut in a member"] = (cut, Archive("images", (), "tar.gz", PREFIX, {relative: sha(data) for relative, data in images.items()}), last)
    return found


def test_an_archive_member_that_cannot_be_read_is_one_line_naming_it(served, tmp_path, capsys, monkeypatch):
    """A member stored with a method zipfile cannot read (zstd), an encrypted one, a deflate stream broken part way and a
    tar.gz cut off mid-member: each is one DownloadError naming the member and the archive, never NotImplementedError,
    RuntimeError or zlib.error; the command says it in one line (exit 2) and leaves no staging folder behind."""
    import pmsp_utils.data.download as download_module
    from pmsp_utils.cli import main

    server, entries, archives = served
    server.close()
    (tmp_path / "images.tar.gz").write_bytes(archives["images.tar.gz"])
    broken = _broken_archives(tmp_path / "given")
    for kind, (path, archive, member) in broken.items():
        with pytest.raises(DownloadError) as caught:
            download_module.extract_verified(path, archive, tmp_path / "out" / kind)
        message = str(caught.value)
        assert message.startswith(f"{member} (in {path}) cannot be read: ") and "\n" not in message, message
        assert "the archive is not the pinned one" in message and "--from a verified copy" in message
        assert not (tmp_path / "out" / kind / member).exists()
    assert "method 93" in str(pytest.raises(DownloadError, download_module.extract_verified, broken["zstd"][0], broken["zstd"][1], tmp_path / "o").value)
    for kind in ("zstd", "encrypted", "broken deflate"):
        path, _, member = broken[kind]
        target = tmp_path / f"to_{path.stem}"
        with pytest.raises(DownloadError, match=rf"{member} \(in {path}\) cannot be read"):
            download("casia1", to=target, from_=[tmp_path / "images.tar.gz", path], accept_terms=True, entries=entries,
                     echo=lambda _: None, fetcher=no_wait)
        assert not target.exists() and not (tmp_path / f".{target.name}.pmsp-partial").exists()  # nothing half-extracted left
    capsys.readouterr()
    monkeypatch.setattr(download_module, "registry", lambda: entries)
    monkeypatch.setattr(download_module, "fetch", no_wait)
    path, _, member = broken["encrypted"]
    code = main(["data", "download", "casia1", "--to", str(tmp_path / "cli"), "--from", str(tmp_path / "images.tar.gz"), "--from",
                 str(path), "--accept-terms"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line]
    assert code == 2 and len(errors) == 1 and errors[0].startswith(f"error: {member} (in {path}) cannot be read: it is encrypted")


def test_a_to_that_is_a_symbolic_link(served, tmp_path):
    """A link to an empty folder is followed (the dataset is laid out there, the link keeps pointing at it, as a folder
    given directly would be used); a link to a file or to nothing is refused before anything is fetched."""
    server, entries, _ = served
    (tmp_path / "big_disk" / "casia1").mkdir(parents=True)
    link = tmp_path / "casia1"
    link.symlink_to(tmp_path / "big_disk" / "casia1")
    said = []
    assert download("casia1", to=link, accept_terms=True, entries=entries, echo=said.append, fetcher=no_wait) == tmp_path / "big_disk" / "casia1"
    assert link.is_symlink() and (link / "DATASET.json").is_file() and f"(where the link {link} points)" in said[-1]
    assert not list(tmp_path.glob(".*pmsp-partial")) and not list((tmp_path / "big_disk").glob(".*pmsp-partial"))
    requests = len(server.requests)
    download("casia1", to=link, accept_terms=True, entries=entries, echo=said.append, fetcher=no_wait)  # complete: nothing to do
    assert "nothing to do" in said[-1] and len(server.requests) == requests
    (tmp_path / "a_file").write_text("mine")
    (tmp_path / "to_file").symlink_to(tmp_path / "a_file")
    with pytest.raises(DownloadError, match=rf"{tmp_path / 'to_file'} is a symbolic link to {tmp_path / 'a_file'}, a file, not a folder"):
        download("casia1", to=tmp_path / "to_file", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(DownloadError, match=rf"{tmp_path / 'dangling'} is a symbolic link to {tmp_path / 'gone'}, which does not exist"):
        download("casia1", to=tmp_path / "dangling", accept_terms=True, entries=entries, echo=lambda _: None, fetcher=no_wait)
    assert len(server.requests) == requests and (tmp_path / "a_file").read_text() == "mine" and (tmp_path / "dangling").is_symlink()
    assert not list(tmp_path.glob(".*pmsp-partial"))


def test_a_tar_gz_inflating_past_any_pinned_archive_is_stopped_by_its_headers(served, tmp_path, monkeypatch):
    """Members pmsp does not read are still inflated on the way past in a gzip stream: a huge unlisted member (zeros,
    a few kilobytes compressed) is refused by its header once the archive would pass ARCHIVE_LIMIT, before it is
    inflated, and so are many small ones together; the shipped archives are far under the limit."""
    import pmsp_utils.data.download as download_module

    for entry in registry().values():
        assert all(archive.size * 8 < download_module.ARCHIVE_LIMIT for archive in entry.archives)
    monkeypatch.setattr(download_module, "ARCHIVE_LIMIT", 4 << 20)
    server, entries, archives = served
    server.close()
    images, _ = source_files()
    images_archive = entries["casia1"].archives[0]
    (tmp_path / "gt.zip").write_bytes(archives["masks.zip"])
    for label, extra in {"one huge": {"Au/aaa_unlisted.bin": bytes(64 << 20)},
                         "many small": {f"Au/aaa_unlisted_{i}.bin": bytes(1 << 20) for i in range(8)}}.items():
        path = tmp_path / f"{label.replace(' ', '_')}.tar.gz"
        path.write_bytes(tar_gz({**extra, **images}, PREFIX))  # the unlisted members come first
        assert path.stat().st_size < 200_000
        with pytest.raises(DownloadError, match=rf"{path}: inflates to more than 4,194,304 bytes, far more than the pinned images archive"):
            download_module.extract_verified(path, images_archive, tmp_path / "out")
        # given with --from, it is named (not passed over for a download that would hide why)
        with pytest.raises(DownloadError, match=rf"{path}: inflates to more than"):
            download("casia1", to=tmp_path / "casia1", from_=[path, tmp_path / "gt.zip"], accept_terms=True, entries=entries,
                     echo=lambda _: None, fetcher=no_wait)
    listed_first = tmp_path / "listed_first.tar.gz"
    listed_first.write_bytes(tar_gz({**images, "zz/unlisted.bin": bytes(64 << 20)}, PREFIX))
    with pytest.raises(DownloadError, match=rf"{listed_first}: inflates to more than"):
        download("casia1", to=tmp_path / "casia1", from_=[listed_first, tmp_path / "gt.zip"], accept_terms=True, entries=entries,
                 echo=lambda _: None, fetcher=no_wait)
    assert not (tmp_path / "casia1").exists() and not (tmp_path / ".casia1.pmsp-partial").exists()


def test_an_unreadable_file_in_an_unpacked_copy_is_named_and_another_copy_still_serves(served, tmp_path, monkeypatch):
    """A file of an unpacked --from folder that cannot be opened (permissions) gave a raw "[Errno 13]"; it is named with
    what to do, and a readable copy of the same file elsewhere in the folder is still used."""
    import builtins

    import pmsp_utils.data.download as download_module

    server, entries, _ = served
    server.close()
    images, _ = source_files()
    unpack(tmp_path / "unpacked")
    locked = tmp_path / "unpacked" / "CASIA1" / "Au" / "Au_ani_0001.jpg"

    def guarded(path, *arguments, **options):  # as chmod 000 would, for a user who is not root
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return builtins.open(path, *arguments, **options)

    monkeypatch.setattr(download_module, "open", guarded, raising=False)
    with pytest.raises(DownloadError, match=rf"{locked}: cannot be read \(Permission denied\); make it readable"):
        download("casia1", to=tmp_path / "a", from_=[tmp_path / "unpacked"], accept_terms=True, entries=entries,
                 echo=lambda _: None, fetcher=no_wait)
    spare = tmp_path / "unpacked" / "spare" / "Au_ani_0001.jpg"
    spare.parent.mkdir()
    spare.write_bytes(images["Au/Au_ani_0001.jpg"])
    target = download("casia1", to=tmp_path / "b", from_=[tmp_path / "unpacked"], accept_terms=True, entries=entries,
                      echo=lambda _: None, fetcher=no_wait)
    assert len(list((target / "images").iterdir())) == 3


@pytest.mark.parametrize("kind", ["gnu long name", "pax record"])
def test_a_tar_member_header_too_large_for_any_name_is_refused_before_it_is_read(served, tmp_path, kind):
    """tarfile reads a GNU long name or a pax header whole into memory before it knows what it is: under the archive's
    1 GiB cap alone, one crafted header could take a gigabyte. A header above TAR_HEADER_LIMIT is refused unread, in
    one line naming the archive."""
    import io
    import tarfile

    import pmsp_utils.data.download as download_module

    server, entries, _ = served
    server.close()
    size = download_module.TAR_HEADER_LIMIT * 4
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT if kind == "gnu long name" else tarfile.PAX_FORMAT) as bundle:
        info = tarfile.TarInfo("a" * size if kind == "gnu long name" else "short.bin")
        if kind == "pax record":
            info.pax_headers = {"comment": "x" * size}
        info.size = 3
        bundle.addfile(info, io.BytesIO(b"abc"))
    path = tmp_path / "crafted.tar.gz"
    path.write_bytes(buffer.getvalue())
    assert path.stat().st_size < 10_000
    with pytest.raises(DownloadError, match=rf"{path}: a member header of [\d,]+ bytes \(a long name or pax record\)"):
        download_module.extract_verified(path, entries["casia1"].archives[0], tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
