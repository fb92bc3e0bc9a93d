"""Maintainers: the per-file SHA-256 lists behind ``pmsp data download``, computed from pinned git commits.

    python scripts/make_download_lists.py casia1 IMAGES_GIT_DIR MASKS_GIT_DIR

``IMAGES_GIT_DIR``: a clone of kPsarakis/Image-Forgery-Detection-CNN (with commit 424d7d1...), ``MASKS_GIT_DIR``: a
clone of namtpham/casia1groundtruth (commit c22a192...). Hashes come from the commits' blobs, never from an archive a
forge serves (whose bytes may change), and go to ``pmsp_utils/data/downloads/casia1.json``'s file lists.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pmsp_utils.safe_write import write_text_atomic  # noqa: E402

DOWNLOADS = Path(__file__).resolve().parents[1] / "pmsp_utils" / "data" / "downloads"


def blobs(git_dir: str, commit: str, folder: str) -> dict[str, bytes]:
    listing = subprocess.run(["git", "-C", git_dir, "ls-tree", "-r", commit, "--", folder], capture_output=True, text=True, check=True).stdout
    result = {}
    for line in listing.splitlines():
        meta, path = line.split("\t", 1)
        sha = meta.split()[2]
        result[path] = subprocess.run(["git", "-C", git_dir, "cat-file", "blob", sha], capture_output=True, check=True).stdout
    return result


def main() -> None:
    source, images_git, masks_git = sys.argv[1:4]
    entry_path = DOWNLOADS / f"{source}.json"
    entry = json.loads(entry_path.read_text())
    images, masks = entry["archives"]
    files = blobs(images_git, images["commit"], images["folder"])
    images["files"] = {path[len(images["folder"]) + 1 :]: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())
                       if path.lower().endswith((".jpg", ".jpeg", ".tif", ".png", ".bmp"))}
    zipped = blobs(masks_git, masks["commit"], masks["member"])[masks["member"]]
    masks["archive_sha256"] = hashlib.sha256(zipped).hexdigest()
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        masks["files"] = {name[len(masks["strip"]) :]: hashlib.sha256(archive.read(name)).hexdigest() for name in sorted(archive.namelist())
                          if name.startswith(masks["strip"]) and not name.endswith("/")}
    write_text_atomic(entry_path, json.dumps(entry, indent=1) + "\n")
    print(f"{entry_path}: {len(images['files'])} image files, {len(masks['files'])} files in the masks' archive")


if __name__ == "__main__":
    main()
